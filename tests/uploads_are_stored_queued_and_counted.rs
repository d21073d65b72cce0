//! The write path against a real cluster: ZooKeeper, two Redis, nginx WebDAV nodes.

mod common;

use backpack_testkit::LocalCluster;
use common::cluster::*;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

const FAST_FLUSH: [&str; 2] = ["--size-flush", "200ms"];

#[test]
fn seed_example_stores_queues_and_counts() {
    let cluster = example_cluster("seed");
    let coordinator = coordinator(&cluster, &FAST_FLUSH);
    let file = cluster.sandbox.path().join("hello.txt");
    std::fs::write(&file, b"hello, backpack\n").unwrap();
    let output = Command::new("curl")
        .args(["-s", "-X", "PUT", "-T"])
        .arg(&file)
        .arg(coordinator.url("/hi.txt"))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&output.stdout).into_owned();
    let shard = shard_of(&answer);
    assert_eq!(answer, format!("{{\"shard_id\":\"{shard}\"}}\n"));
    let shard_nodes: [usize; 2] = match shard.as_str() {
        "1" => [1, 4],
        "2" => [2, 5],
        _ => [3, 6],
    };
    let held = holders(&cluster, "/hi.txt");
    assert_eq!(held.len(), 1, "exactly one node has it: {held:?}");
    let (on, other) = if held[0] == shard_nodes[0] {
        (shard_nodes[0], shard_nodes[1])
    } else {
        (shard_nodes[1], shard_nodes[0])
    };
    assert_eq!(held[0], on);
    assert_eq!(
        cluster.node(on).file("/hi.txt").unwrap(),
        b"hello, backpack\n"
    );
    let item = format!(r#"{{"from":["{on}"],"to":"{other}","path":"/hi.txt"}}"#);
    for server in 0..cluster.redis.len() {
        assert_eq!(cluster.queue_items(server), vec![item.clone()]);
    }
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(shard_current(&cluster, &shard), 16);

    // The query string stays in the item's path.
    let (status, answer) = put(&client(), &coordinator.url("/q.txt?v=2&x=y"), b"q");
    assert_eq!(status, 200, "{answer}");
    let items = cluster.queue_items(0);
    assert!(
        items
            .iter()
            .any(|i| i.ends_with(r#""path":"/q.txt?v=2&x=y"}"#)),
        "{items:?}"
    );
    let stats = get_json(&client(), &coordinator.url("/stats"));
    assert_eq!(stats["processed_uploads"], 2);
    assert_eq!(stats["processed_bytes"], 17);
    assert_eq!(stats["total_shards"], 3);
    assert_eq!(stats["writable_shards"], 3);
    assert_eq!(stats["queue_length"], 2);
    assert_eq!(stats["total_size"], 3u64 * 100 * (1 << 30));
    for field in [
        "uptime",
        "failed_uploads",
        "used_size",
        "usage_ratio",
        "available_space",
    ] {
        assert!(stats[field].is_number(), "{field}: {stats}");
    }
}

#[test]
fn curl_gets_100_continue_before_sending_the_body() {
    let cluster = example_cluster("continue");
    let coordinator = coordinator(&cluster, &[]);
    let file = cluster.sandbox.path().join("big.bin");
    std::fs::write(&file, vec![7u8; 5 << 20]).unwrap();
    let output = Command::new("curl")
        .args(["-v", "-s", "-T"])
        .arg(&file)
        .arg(coordinator.url("/big.bin"))
        .output()
        .unwrap();
    let trace = String::from_utf8_lossy(&output.stderr);
    let continued = trace
        .find("< HTTP/1.1 100 Continue")
        .expect("curl got 100 Continue");
    let uploaded = trace
        .find("upload completely sent off")
        .or_else(|| trace.find("We are completely uploaded"));
    let uploaded = uploaded.unwrap_or_else(|| panic!("curl finished the upload: {trace}"));
    assert!(
        continued < uploaded,
        "100 Continue came before the body: {trace}"
    );
    assert!(
        !trace.contains("Done waiting for 100-continue"),
        "curl did not have to give up waiting: {trace}"
    );
    assert!(trace.contains("< HTTP/1.1 200 OK"), "{trace}");
    let shard = shard_of(&String::from_utf8_lossy(&output.stdout));
    assert!(["1", "2", "3"].contains(&shard.as_str()));
    assert_eq!(holders(&cluster, "/big.bin").len(), 1);
}

#[test]
fn placement_follows_free_space_and_skips_read_only_and_full_shards() {
    let cluster = LocalCluster::start(bin(), "weights", 1, 5).unwrap();
    let capacity = 1u64 << 30;
    for (id, used_percent) in [("1", 10), ("2", 50), ("3", 90), ("5", 100)] {
        let node: usize = id.parse().unwrap();
        cluster.add_enabled_shard(id, &[node], "1gb").unwrap();
        set_shard_size(&cluster, id, capacity, capacity / 100 * used_percent);
    }
    cluster
        .admin("backpack-coordinator-add-shard", &["4", "4", "1gb"])
        .unwrap(); // read-only
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let counts: HashMap<String, usize> = {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let url = coordinator.url("");
                std::thread::spawn(move || {
                    let agent = client();
                    let mut counts = HashMap::new();
                    for i in 0..750 {
                        let (status, answer) = put(&agent, &format!("{url}/w/{t}-{i}"), b"x");
                        assert_eq!(status, 200, "{answer}");
                        *counts.entry(shard_of(&answer)).or_insert(0) += 1;
                    }
                    counts
                })
            })
            .collect();
        let mut total = HashMap::new();
        for thread in threads {
            for (shard, n) in thread.join().unwrap() {
                *total.entry(shard).or_insert(0) += n;
            }
        }
        total
    };
    // Expected 0.9 : 0.5 : 0.1 of 3000 = 1800, 1000, 200; the standard deviations are
    // about 27, 26 and 13, so these bounds are more than 5 of them.
    eprintln!("3000 uploads over shards 10/50/90/100 % used and one read-only: {counts:?}");
    let n = |id: &str| counts.get(id).copied().unwrap_or(0) as i64;
    assert!((n("1") - 1800).abs() < 150, "{counts:?}");
    assert!((n("2") - 1000).abs() < 150, "{counts:?}");
    assert!((n("3") - 200).abs() < 80, "{counts:?}");
    assert_eq!(n("4"), 0, "read-only shard chosen: {counts:?}");
    assert_eq!(n("5"), 0, "full shard chosen: {counts:?}");
}

#[test]
fn dead_nodes_and_dead_redis() {
    let mut cluster = example_cluster("failover");
    cluster.set_writable(&["2", "3"], false).unwrap();
    let coordinator = coordinator(&cluster, &["--node-connect-timeout", "300ms"]);
    let agent = client();

    // Node 4 down: shard 1's uploads land on node 1, with an item for node 4.
    cluster.node_mut(4).stop();
    for i in 0..10 {
        let path = format!("/n4down-{i}");
        let (status, answer) = put(&agent, &coordinator.url(&path), b"data");
        assert_eq!((status, shard_of(&answer)), (200, "1".to_string()));
        assert_eq!(holders(&cluster, &path), vec![1]);
        let item = format!(r#"{{"from":["1"],"to":"4","path":"{path}"}}"#);
        assert!(cluster.queue_items(0).contains(&item));
    }

    // Both nodes of shard 1 down: uploads go to the other shards.
    cluster.set_writable(&["2", "3"], true).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    cluster.node_mut(1).stop();
    for i in 0..10 {
        let (status, answer) = put(&agent, &coordinator.url(&format!("/s1down-{i}")), b"data");
        assert_eq!(status, 200, "{answer}");
        assert_ne!(shard_of(&answer), "1");
    }

    // One Redis down: still 200. Both down: 503, the client must not believe it is safe.
    cluster.redis[0].stop();
    let (status, answer) = put(&agent, &coordinator.url("/one-redis"), b"data");
    assert_eq!(status, 200, "{answer}");
    cluster.redis[1].stop();
    let (status, answer) = put(&agent, &coordinator.url("/no-redis"), b"data");
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer.contains("replication could not be queued"),
        "{answer}"
    );

    // Every node down: 503, counted.
    for id in [2, 3, 5, 6] {
        cluster.node_mut(id).stop();
    }
    let before = get_json(&agent, &coordinator.url("/stats"))["failed_uploads"]
        .as_u64()
        .unwrap();
    let (status, answer) = put(&agent, &coordinator.url("/nowhere"), b"data");
    assert_eq!(status, 503, "{answer}");
    assert!(answer.contains("no node could store the file"), "{answer}");
    let after = get_json(&agent, &coordinator.url("/stats"))["failed_uploads"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);
}

#[test]
fn a_shard_enabled_while_serving_takes_uploads_within_a_second() {
    let cluster = LocalCluster::start(bin(), "live-config", 1, 2).unwrap();
    cluster.add_enabled_shard("1", &[1], "1gb").unwrap();
    let coordinator = coordinator(&cluster, &[]);
    let agent = client();
    assert_eq!(
        shard_of(&put(&agent, &coordinator.url("/before"), b"x").1),
        "1"
    );
    cluster.add_enabled_shard("2", &[2], "1gb").unwrap();
    cluster
        .admin("backpack-coordinator-disable-shard", &["1"])
        .unwrap();
    let changed = Instant::now();
    let mut i = 0;
    loop {
        i += 1;
        let (status, answer) = put(&agent, &coordinator.url(&format!("/after-{i}")), b"x");
        if status == 200 && shard_of(&answer) == "2" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "still not on shard 2: {status} {answer}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_coordinators_count_every_byte() {
    let cluster = example_cluster("two-coordinators");
    let a = cluster
        .start_coordinator("coordinator-a", &[FAST_FLUSH[0], FAST_FLUSH[1], "--quiet"])
        .unwrap();
    let b = cluster
        .start_coordinator("coordinator-b", &[FAST_FLUSH[0], FAST_FLUSH[1], "--quiet"])
        .unwrap();
    let threads: Vec<_> = [a.url(""), b.url(""), a.url(""), b.url("")]
        .into_iter()
        .enumerate()
        .map(|(t, url)| {
            std::thread::spawn(move || {
                let agent = client();
                let mut bytes: HashMap<String, u64> = HashMap::new();
                for i in 0..100 {
                    let body = vec![b'z'; 100 + (i * 37 + t * 11) % 3000];
                    let (status, answer) = put(&agent, &format!("{url}/two/{t}-{i}"), &body);
                    assert_eq!(status, 200, "{answer}");
                    *bytes.entry(shard_of(&answer)).or_insert(0) += body.len() as u64;
                }
                bytes
            })
        })
        .collect();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for thread in threads {
        for (shard, n) in thread.join().unwrap() {
            *expected.entry(shard).or_insert(0) += n;
        }
    }
    // Every byte counted exactly once, once both coordinators have flushed.
    wait_for_sizes(&cluster, &expected);
}

#[test]
fn does_not_serve_before_the_configuration_loads() {
    let mut cluster = LocalCluster::start(bin(), "late-config", 1, 1).unwrap();
    cluster.root = "/late".to_string();
    let port = backpack_testkit::free_port().unwrap();
    let dir = cluster.sandbox.subdir("late-coordinator").unwrap();
    let args = vec![
        cluster.zk(),
        "/late".into(),
        "127.0.0.1".into(),
        port.to_string(),
    ];
    let mut launch = cluster
        .sandbox
        .launch("late", &bin().display().to_string(), args, &dir);
    launch.arg0 = Some("backpack-coordinator".into());
    let process = backpack_testkit::ServerProcess::start(launch).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !backpack_testkit::is_listening(port),
        "it serves before loading"
    );
    let log = std::fs::read_to_string(process.log()).unwrap();
    assert!(
        log.contains("waiting for /late/servers-map: not initialized?"),
        "{log}"
    );
    cluster
        .admin(
            "backpack-coordinator-init",
            &["q", &cluster.redis[0].address()],
        )
        .unwrap();
    cluster
        .admin(
            "backpack-coordinator-add-server",
            &["1", &cluster.node(1).url()],
        )
        .unwrap();
    cluster.add_enabled_shard("1", &[1], "1gb").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !backpack_testkit::is_listening(port) {
        assert!(Instant::now() < deadline, "it never started serving");
        std::thread::sleep(Duration::from_millis(50));
    }
    // It may start with the servers map, before the shard is enabled: that reaches it
    // through a watch a moment later.
    let stats_url = format!("http://127.0.0.1:{port}/stats");
    while get_json(&client(), &stats_url)["writable_shards"] != 1 {
        assert!(Instant::now() < deadline, "the shard never became writable");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, answer) = put(
        &client(),
        &format!("http://127.0.0.1:{port}/late.txt"),
        b"late",
    );
    assert_eq!((status, shard_of(&answer)), (200, "1".to_string()));
}

#[test]
fn what_no_node_can_store_is_refused_up_front() {
    let cluster = example_cluster("refusals");
    let coordinator = coordinator(&cluster, &[]);
    refuses_what_no_node_can_store(&cluster, coordinator.port);
}
