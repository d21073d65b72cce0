//! The replicators copy every upload to every node of its shard: on the stand-in nodes of
//! the seed example, through a node that is down for a while (whose items do not hold up
//! the others), through a paused Redis, and at the pace of thousands of small items.

mod common;

use backpack_testkit::scenario::{Ack, BodySizes};
use backpack_testkit::{free_port, CoordinatorProcess, DelayProxy, LocalCluster, QUEUE_KEY};
use common::cluster::*;
use std::time::{Duration, Instant};

/// The bodies these tests upload: small, so that a test is about copying, not bytes.
const SMALL: BodySizes = BodySizes::LogUniform(500, 4500);

#[test]
fn one_replicator_copies_every_upload_to_both_nodes() {
    let cluster = example_cluster("replicate-one");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let files = upload_n(&coordinator.url(""), 200, "one", SMALL);
    assert_eq!(cluster.queue_items(0).len(), 200);
    let replicator = replicator(&cluster, "replicator", &["2"]);
    let took = wait_until_drained(&cluster, Duration::from_secs(30), &[&replicator]);
    eprintln!("one replicator drained 200 items in {took:?}");
    assert_replicated(&cluster, &files);
    assert!(log_of(&replicator).contains(": ok"), "one line per copy");
}

/// The example cluster with node 4 stopped, and `n` files uploaded to its shard (1: nodes
/// 1 and 4), so that every item waits for node 4.
fn uploads_for_a_dead_node(label: &str, n: usize) -> (LocalCluster, CoordinatorProcess, Vec<Ack>) {
    let mut cluster = example_cluster(label);
    let coordinator = coordinator(&cluster, &["--quiet"]);
    cluster.set_writable(&["2", "3"], false).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    cluster.node_mut(4).stop();
    let files = upload_n(&coordinator.url(""), n, label, SMALL);
    (cluster, coordinator, files)
}

#[test]
fn items_for_a_dead_node_wait_and_drain_when_it_returns() {
    let (mut cluster, _coordinator, files) = uploads_for_a_dead_node("replicate-dead", 20);
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
    assert_eq!(cluster.queue_items(0).len(), 20, "items wait for node 4");
    assert!(log_of(&replicator).contains("failed, left queued"));
    cluster.node_mut(4).restart().unwrap();
    wait_until_drained(&cluster, Duration::from_secs(15), &[&replicator]);
    assert_replicated(&cluster, &files);
}

/// A dead node's items, the oldest in the queue, wait out their retry pause without
/// holding up the items queued after them: the oldest-first picks pass over them until
/// they may be tried again.
#[test]
fn items_for_a_dead_node_do_not_hold_up_younger_ones() {
    let (cluster, coordinator, _) = uploads_for_a_dead_node("replicate-dead-first", 120);
    let flags = [
        "1",
        "--batch",
        "4",
        "--retry-pause",
        "60s",
        "--max-error-backoff",
        "200ms",
        "--quiet",
    ];
    let replicator = replicator(&cluster, "replicator", &flags);
    wait_for(
        "every item for the dead node failed once",
        Duration::from_secs(30),
        || log_of(&replicator).matches("failed, left queued").count() >= 120,
    );
    // Past the marks of their first picks: only their retry pause keeps them waiting now.
    std::thread::sleep(Duration::from_secs(11));
    cluster.set_writable(&["2", "3"], true).unwrap();
    cluster.set_writable(&["1"], false).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let files = upload_n(&coordinator.url(""), 20, "alive", SMALL);
    wait_for(
        "the items queued after the dead node's are copied",
        Duration::from_secs(4),
        || cluster.queue_items(0).len() == 120,
    );
    assert_replicated(&cluster, &files);
    // What lets them pass: each dead-node item is marked taken until its pause is over
    // (about a minute after its failure), not only for the 10 s of a pick's mark.
    let held_long = || {
        let mut held = std::collections::HashSet::new();
        for server in 0..2 {
            let from = cluster.redis_clock_ms(server) + 30_000;
            let items = cluster.redis_command(
                server,
                redis::cmd("ZRANGEBYSCORE")
                    .arg(format!("{QUEUE_KEY}-taken"))
                    .arg(from)
                    .arg("+inf"),
            );
            held.extend(redis::from_redis_value::<Vec<String>>(items).unwrap_or_default());
        }
        held.len()
    };
    wait_for(
        "every dead-node item held until its retry pause ends",
        Duration::from_secs(10),
        || held_long() == 120,
    );
}

#[test]
fn a_paused_redis_is_worked_around_and_its_stale_items_are_harmless() {
    let cluster = example_cluster("replicate-redis-pause");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let files = upload_n(&coordinator.url(""), 40, "pause", SMALL);
    let mut conn = cluster.redis[0].connection().unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(4000)
        .arg("ALL")
        .query(&mut conn)
        .unwrap();
    let replicator = replicator(&cluster, "replicator", &["4", "--redis-timeout", "300ms"]);
    // Through the other Redis, replication goes on while the first is paused.
    std::thread::sleep(Duration::from_secs(3));
    let left = cluster.queue_items(1).len();
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
    cluster.push_items(&items);
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
    assert!(cluster.queue_is_empty());
    assert!(took < Duration::from_secs(60), "took {took:?}");
    for i in (0..5000).step_by(97) {
        assert_eq!(
            cluster.node(2).file(&format!("/many/{i}")).map(|f| f.len()),
            Some(4096)
        );
    }
}

/// The replicator's `concurrency` is how many copies it makes at once: reached, never
/// passed. Node 1 answers 600 ms late, so each copy from it lasts that long and copies
/// overlap only when they run side by side.
#[test]
fn a_replicator_makes_as_many_copies_at_once_as_its_concurrency() {
    let cluster = example_cluster("replicate-at-once");
    let agent = client();
    let items: Vec<String> = (0..12)
        .map(|i| {
            let path = format!("/at-once/{i}.txt");
            let (status, _) = put(&agent, &format!("{}{path}", cluster.node(1).url()), b"x");
            assert_eq!(status, 201);
            backpack::replication_queue::item(&["1".into()], "4", &path)
        })
        .collect();
    let slow = DelayProxy::start(cluster.node(1).port, Duration::from_millis(600)).unwrap();
    cluster
        .admin("backpack-coordinator-add-server", &["1", &slow.url()])
        .unwrap();
    cluster.push_items(&items);
    let listen = format!("127.0.0.1:{}", free_port().unwrap());
    let started = Instant::now();
    let replicator = replicator(&cluster, "replicator", &["3", "--listen", &listen]);
    let metrics = format!("http://{listen}/metrics");
    let mut most = 0;
    while !cluster.queue_is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not drained: {}",
            log_of(&replicator)
        );
        most = most.max(in_flight(&agent, &metrics).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    assert_eq!(most, 3, "copies in flight at most: {}", log_of(&replicator));
    // Twelve copies of 600 ms: four turns of three at once, not twelve in a row.
    assert!(
        took < Duration::from_millis(12 * 600),
        "drained in {took:?}"
    );
    assert_eq!(log_of(&replicator).matches(": ok").count(), 12);
}

/// `backpack_replicator_in_flight` from a replicator's `/metrics`, once it serves.
fn in_flight(agent: &ureq::Agent, url: &str) -> Option<u64> {
    let text = agent
        .get(url)
        .call()
        .ok()?
        .into_body()
        .read_to_string()
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("backpack_replicator_in_flight "))
        .and_then(|value| value.trim().parse().ok())
}
