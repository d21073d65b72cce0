//! backpack-replicator against a real cluster: ZooKeeper, two Redis, nginx WebDAV nodes,
//! coordinators.

#[path = "common/cluster.rs"]
mod cluster;

use backpack_testkit::{DelayProxy, LocalCluster, ServerProcess, QUEUE_KEY};
use cluster::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn log_of(process: &ServerProcess) -> String {
    std::fs::read_to_string(process.log()).unwrap_or_default()
}

fn wait_until_drained(
    cluster: &LocalCluster,
    within: Duration,
    logs: &[&ServerProcess],
) -> Duration {
    let started = Instant::now();
    while !queue_empty_everywhere(cluster) {
        if started.elapsed() > within {
            let tails: Vec<String> = logs
                .iter()
                .map(|p| {
                    log_of(p)
                        .lines()
                        .rev()
                        .take(8)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect();
            panic!(
                "queue not drained after {within:?}: {} left\n{}",
                queue_items(&cluster.redis[1].address()).len(),
                tails.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

/// Uploads `n` files through the coordinator; path -> (shard, bytes).
fn upload_files(url: &str, n: usize, prefix: &str) -> HashMap<String, (String, Vec<u8>)> {
    let agent = client();
    (0..n)
        .map(|i| {
            let path = format!("/{prefix}/{i}.bin");
            let body: Vec<u8> = (0..(500 + i * 37 % 4000))
                .map(|b| (b * 31 + i) as u8)
                .collect();
            let (status, answer) = put(&agent, &format!("{url}{path}"), &body);
            assert_eq!(status, 200, "{answer}");
            (path, (shard_of(&answer), body))
        })
        .collect()
}

fn shard_nodes(shard: &str) -> [usize; 2] {
    match shard {
        "1" => [1, 4],
        "2" => [2, 5],
        _ => [3, 6],
    }
}

fn assert_replicated(cluster: &LocalCluster, files: &HashMap<String, (String, Vec<u8>)>) {
    for (path, (shard, body)) in files {
        for node in shard_nodes(shard) {
            assert_eq!(
                cluster.node(node).file(path).as_ref(),
                Some(body),
                "{path} on node {node}"
            );
        }
    }
}

#[test]
fn one_replicator_copies_every_upload_to_both_nodes() {
    let cluster = example_cluster("replicate-one");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .unwrap();
    let files = upload_files(&coordinator.url(""), 200, "one");
    assert_eq!(queue_items(&cluster.redis[0].address()).len(), 200);
    let replicator = replicator(&cluster, "replicator", &["2"]);
    let took = wait_until_drained(&cluster, Duration::from_secs(30), &[&replicator]);
    eprintln!("one replicator drained 200 items in {took:?}");
    assert_replicated(&cluster, &files);
    assert!(log_of(&replicator).contains(": ok"), "one line per copy");
}

/// (start ms, end ms) of each successful copy per item, from a replicator's log.
fn copy_intervals(log: &str) -> Vec<(String, f64, f64)> {
    log.lines()
        .filter(|line| line.contains(" copy ") && line.ends_with(": ok"))
        .filter_map(|line| {
            let (stamp, rest) = line.split_once(' ')?;
            let time = &stamp[11..23]; // HH:MM:SS.mmm
            let parts: Vec<f64> = time
                .split(|c| c == ':' || c == '.')
                .filter_map(|p| p.parse().ok())
                .collect();
            let end = ((parts[0] * 60.0 + parts[1]) * 60.0 + parts[2]) * 1000.0 + parts[3];
            let words: Vec<&str> = rest.split_whitespace().collect();
            let ms: f64 = words[words.iter().position(|w| *w == "in")? + 1]
                .parse()
                .ok()?;
            let key = format!("{} -> {}", words[1], words[4]);
            Some((key, end - ms - 1.0, end + 1.0))
        })
        .collect()
}

#[test]
fn two_replicators_share_the_queue_without_copying_an_item_twice_at_once() {
    let cluster = example_cluster("replicate-two");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .unwrap();
    let files = upload_files(&coordinator.url(""), 200, "two");
    let a = replicator(&cluster, "replicator-a", &["4"]);
    let b = replicator(&cluster, "replicator-b", &["4"]);
    wait_until_drained(&cluster, Duration::from_secs(30), &[&a, &b]);
    assert_replicated(&cluster, &files);
    let mut intervals = copy_intervals(&log_of(&a));
    intervals.extend(copy_intervals(&log_of(&b)));
    assert!(intervals.len() >= 200, "{} copies logged", intervals.len());
    let mut by_item: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    for (key, start, end) in intervals {
        by_item.entry(key).or_default().push((start, end));
    }
    for (key, mut spans) in by_item {
        spans.sort_by(|x, y| x.0.total_cmp(&y.0));
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1 - 2.0,
                "{key} copied twice at once: {spans:?}"
            );
        }
    }
}

#[test]
fn items_for_a_dead_node_wait_and_drain_when_it_returns() {
    let mut cluster = example_cluster("replicate-dead");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .unwrap();
    cluster
        .admin("backpack-coordinator-disable-shard", &["2"])
        .unwrap();
    cluster
        .admin("backpack-coordinator-disable-shard", &["3"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    cluster.node_mut(4).stop();
    let files = upload_files(&coordinator.url(""), 20, "dead");
    let replicator = replicator(
        &cluster,
        "replicator",
        &[
            "2",
            "--node-connect-timeout",
            "300ms",
            "--max-error-backoff",
            "500ms",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        queue_items(&cluster.redis[0].address()).len(),
        20,
        "items wait for node 4"
    );
    assert!(log_of(&replicator).contains("failed, left queued"));
    cluster.node_mut(4).restart().unwrap();
    wait_until_drained(&cluster, Duration::from_secs(15), &[&replicator]);
    assert_replicated(&cluster, &files);
}

#[test]
fn an_old_style_item_is_consumed_under_its_md5_lock_and_a_killed_replicators_lock_expires() {
    let cluster = example_cluster("replicate-lock");
    // Node 1 answers 3 s late, so a copy from it is in progress long enough to look at.
    let slow = DelayProxy::start(cluster.node(1).port, Duration::from_secs(3)).unwrap();
    let agent = client();
    assert_eq!(
        agent
            .put(&format!("{}/hi.txt", cluster.node(1).url()))
            .send(&b"hello"[..])
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    cluster
        .admin("backpack-coordinator-add-server", &["1", &slow.url()])
        .unwrap();
    // Pushed by hand, by the old command, in the old tools' exact JSON.
    let redis: Vec<String> = cluster.redis.iter().map(|r| r.address()).collect();
    let pushed = std::process::Command::new(bin())
        .arg0_compat("backpack-replicator-push")
        .args([
            &cluster.zk(),
            &cluster.root,
            &redis.join(","),
            QUEUE_KEY,
            "1",
            "4",
            "/hi.txt",
        ])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let item = r#"{"from":["1"],"to":"4","path":"/hi.txt"}"#;
    assert_eq!(queue_items(&redis[0]), vec![item.to_string()]);
    // md5 of the item's bytes, computed independently: faa482ea13a08f8a5740a7bbd2186a97.
    let lock = format!(
        "{}/{QUEUE_KEY}faa482ea13a08f8a5740a7bbd2186a97",
        cluster.root
    );

    let mut first = replicator(
        &cluster,
        "replicator-a",
        &["1", "--zk-session-timeout", "2s"],
    );
    let zk = backpack::zk::ZkSession::connect(&cluster.zk(), Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let holder = loop {
        if let Some((data, _)) = zk.get(&lock).unwrap() {
            break String::from_utf8(data).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no lock {lock}: {}",
            log_of(&first)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        holder.ends_with(&format!(":{}", first.pid().unwrap())),
        "lock data is hostname:pid, got {holder}"
    );
    first.kill(); // mid-copy: the source has not answered yet
    let killed = Instant::now();
    let second = replicator(&cluster, "replicator-b", &["1"]);
    while zk
        .get(&lock)
        .unwrap()
        .is_some_and(|(data, _)| data == holder.as_bytes())
    {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the killed replicator's lock never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("killed replicator's lock gone after {:?}", killed.elapsed());
    wait_until_drained(&cluster, Duration::from_secs(15), &[&second]);
    assert_eq!(
        cluster.node(4).file("/hi.txt").as_deref(),
        Some(&b"hello"[..])
    );
    // The item leaves the queue first, then its lock goes (one ZooKeeper round trip
    // later): the lock must be gone promptly after the queue is empty.
    let drained = Instant::now();
    while zk.get(&lock).unwrap().is_some() {
        assert!(
            drained.elapsed() < Duration::from_secs(5),
            "the lock is deleted after the copy"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

trait Arg0Compat {
    fn arg0_compat(&mut self, name: &str) -> &mut Self;
}

impl Arg0Compat for std::process::Command {
    fn arg0_compat(&mut self, name: &str) -> &mut Self {
        std::os::unix::process::CommandExt::arg0(self, name)
    }
}

#[test]
fn a_paused_redis_is_worked_around_and_its_stale_items_are_harmless() {
    let cluster = example_cluster("replicate-redis-pause");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .unwrap();
    let files = upload_files(&coordinator.url(""), 40, "pause");
    let paused = cluster.redis[0].address();
    let mut conn = redis::Client::open(format!("redis://{paused}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(4000)
        .arg("ALL")
        .query(&mut conn)
        .unwrap();
    let replicator = replicator(&cluster, "replicator", &["4", "--redis-timeout", "300ms"]);
    // Through the other Redis, replication goes on while the first is paused.
    std::thread::sleep(Duration::from_secs(3));
    let left = queue_items(&cluster.redis[1].address()).len();
    eprintln!(
        "during a 4 s pause of one Redis: {} of 40 items done through the other",
        40 - left
    );
    assert!(
        left <= 30,
        "little progress through the second Redis: {left} of 40 left\n{}",
        log_of(&replicator)
    );
    // After the pause the first Redis still lists every item: they are copied again,
    // harmlessly, and removed.
    wait_until_drained(&cluster, Duration::from_secs(20), &[&replicator]);
    assert_replicated(&cluster, &files);
}

#[test]
fn five_thousand_small_items_drain_within_a_minute() {
    let cluster = LocalCluster::start(bin(), "replicate-many", 2, 2).unwrap();
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    // 5 000 files of 4 KiB on node 1, and their items, as a coordinator would leave them.
    let agent = client();
    let body = vec![b'r'; 4096];
    let mut items = Vec::new();
    for i in 0..5000 {
        let path = format!("/many/{i}");
        assert_eq!(
            agent
                .put(&format!("{}{path}", cluster.node(1).url()))
                .send(&body[..])
                .unwrap()
                .status()
                .as_u16(),
            201
        );
        items.push(format!(r#"{{"from":["1"],"to":"2","path":"{path}"}}"#));
    }
    push_items(&cluster, &items);
    let started = Instant::now();
    let mut a = replicator(&cluster, "replicator-a", &["--once", "--quiet"]);
    let mut b = replicator(&cluster, "replicator-b", &["--once", "--quiet"]);
    let status_a = a
        .wait_exit(Duration::from_secs(90))
        .expect("replicator a exits");
    let status_b = b
        .wait_exit(Duration::from_secs(30))
        .expect("replicator b exits");
    let took = started.elapsed();
    eprintln!("two replicators (default settings) drained 5000 4 KiB items in {took:?}");
    assert!(
        status_a.success() && status_b.success(),
        "{}\n{}",
        log_of(&a),
        log_of(&b)
    );
    assert!(queue_empty_everywhere(&cluster));
    assert!(took < Duration::from_secs(60), "took {took:?}");
    for i in (0..5000).step_by(97) {
        assert_eq!(
            cluster.node(2).file(&format!("/many/{i}")).map(|f| f.len()),
            Some(4096)
        );
    }
}

/// The first SIGTERM lets a replicator finish the copy it is in (it keeps running); a
/// second one ends it at once, as the coordinator does.
#[test]
fn a_second_sigterm_stops_a_replicator_busy_with_a_slow_copy_at_once() {
    let cluster = example_cluster("replicate-sigterm");
    // Node 1 answers 8 s late: a copy from it is in flight long past both signals.
    let slow = DelayProxy::start(cluster.node(1).port, Duration::from_secs(8)).unwrap();
    let (status, _) = put(
        &client(),
        &format!("{}/slow.txt", cluster.node(1).url()),
        b"x",
    );
    assert_eq!(status, 201);
    cluster
        .admin("backpack-coordinator-add-server", &["1", &slow.url()])
        .unwrap();
    let item = backpack::replication_queue::item(&["1".into()], "4", "/slow.txt");
    push_items(&cluster, std::slice::from_ref(&item));
    let mut replicator = replicator(&cluster, "replicator", &["1"]);
    // The copy has begun once the item is locked.
    let lock = backpack::replication_queue::lock_path(&cluster.root, QUEUE_KEY, &item);
    let zk = backpack::zk::ZkSession::connect(&cluster.zk(), Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while zk.get(&lock).unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "no lock: {}",
            log_of(&replicator)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    replicator.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        replicator.is_running(),
        "the first signal drains: {}",
        log_of(&replicator)
    );
    assert!(log_of(&replicator).contains("finishing the copies in progress"));

    let second = Instant::now();
    replicator.signal(libc::SIGTERM);
    let exit = replicator.wait_exit(Duration::from_secs(5));
    let took = second.elapsed();
    assert_eq!(
        exit.and_then(|status| status.code()),
        Some(1),
        "{}",
        log_of(&replicator)
    );
    assert!(
        took < Duration::from_secs(2),
        "exited {took:?} after the second signal"
    );
    assert!(log_of(&replicator).contains("second signal: exiting now"));
}
