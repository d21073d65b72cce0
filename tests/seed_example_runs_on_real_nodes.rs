//! The seed example on the node users run: six real Backpack 0.5.5 nodes (each with its
//! own Redis), three shards, two coordinators, two replicators, and the front that
//! bp-nginx-gen writes, served by a real nginx.
//!
//! The node-SIGKILL fault scenario on real nodes is in `faults.rs` (`real-node-killed`).

mod common;

use backpack_testkit::{LocalCluster, NodeKind, QUEUE_KEY};
use common::cluster::*;
use common::front::{generated_front, read};
use std::time::{Duration, Instant};

#[test]
fn the_seed_example_runs_on_real_backpack_nodes() {
    let cluster = example_cluster_of("real-seed", NodeKind::Backpack);
    let coordinators: Vec<_> = ["coordinator-a", "coordinator-b"]
        .iter()
        .map(|name| cluster.start_coordinator(name, &[]).unwrap())
        .collect();
    let mut replicators: Vec<_> = ["replicator-a", "replicator-b"]
        .iter()
        .map(|name| replicator(&cluster, name, &["4"]))
        .collect();
    let front = generated_front(&cluster);

    // 100 uploads of 1 KiB to 2 MiB, and names the front must carry as the client sent
    // them: a query string, a percent-encoded space, a colon.
    let mut paths: Vec<String> = (0..100).map(|i| format!("/seed/{i}.jpg")).collect();
    paths.extend(["/photos/q.jpg?v=2&size=small", "/a%20b.txt", "/we:ird.txt"].map(String::from));
    let agent = client();
    let uploads: Vec<(String, String)> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let url = coordinators[i % 2].url(path);
            let (status, answer) = put(&agent, &url, &body_for(path));
            assert_eq!(status, 200, "{path}: {answer}");
            (path.clone(), shard_of(&answer))
        })
        .collect();

    let started = Instant::now();
    wait_for("the queue drains", Duration::from_secs(60), || {
        cluster.queue_is_empty()
    });
    eprintln!("replicated in {:.1}s", started.elapsed().as_secs_f64());

    for (path, shard) in &uploads {
        let body = body_for(path);
        let first: usize = shard.parse().unwrap();
        for node in [first, first + 3] {
            assert!(
                cluster.node(node).file(path).as_ref() == Some(&body),
                "{path} on node {node} is missing or different"
            );
        }
        let url = front.url(&format!("/{shard}:{}", &path[1..]));
        let (status, _, got) = read(&url, false);
        assert!(status == 200 && got == body, "{url}: {status}");
        let (status, length, got) = read(&url, true);
        assert_eq!(
            (status, length, got.len()),
            (200, Some(body.len().to_string()), 0),
            "HEAD {url}"
        );
    }
    // A shard the file is not on: 404 after both nodes said so.
    let (path, shard) = &uploads[0];
    let other = if shard == "1" { "2" } else { "1" };
    assert_eq!(
        read(&front.url(&format!("/{other}:{}", &path[1..])), false).0,
        404
    );

    refuses_what_no_node_can_store(&cluster, coordinators[0].port);
    for r in &mut replicators {
        assert!(r.is_running(), "a replicator exited");
    }
}

/// The replicator copies onto a real node that already holds the file (an item that
/// comes back after a Redis outage): the node answers 201 again, the item is done, and
/// no HEAD is needed.
#[test]
fn the_replicator_copies_between_real_nodes_without_head() {
    let cluster = LocalCluster::start_with(bin(), "real-copy", 1, 2, NodeKind::Backpack).unwrap();
    cluster.add_enabled_shard("1", &[1, 2], "1gb").unwrap();
    let agent = client();
    for (node, path) in [
        (1, "/copy/new.bin"),
        (1, "/copy/both.bin"),
        (2, "/copy/both.bin"),
    ] {
        let url = format!("{}{path}", cluster.node(node).url());
        let answer = agent.put(&url).send(&body_for(path)[..]).unwrap();
        assert_eq!(answer.status().as_u16(), 201, "{url}");
    }
    for path in ["/copy/new.bin", "/copy/both.bin"] {
        let item = format!(r#"{{"from":["1"],"to":"2","path":"{path}"}}"#);
        cluster.redis[0].add(QUEUE_KEY, &[item]);
    }
    let mut once = replicator(&cluster, "replicator", &["--once"]);
    let status = once
        .wait_exit(Duration::from_secs(30))
        .expect("--once exits");
    let log = std::fs::read_to_string(once.log()).unwrap_or_default();
    assert!(status.success(), "{log}");
    assert!(cluster.queue_is_empty(), "{log}");
    for path in ["/copy/new.bin", "/copy/both.bin"] {
        assert_eq!(cluster.node(2).file(path), Some(body_for(path)), "{path}");
    }
}

/// A real node restarted between uploads closes the coordinator's pooled connections to
/// it. The coordinator must notice before it sends on one: the next uploads still land
/// on that node (the only one of its shard), and no failure is counted against it.
#[test]
fn a_restarted_node_takes_the_next_uploads_with_no_failure_counted() {
    let mut cluster =
        LocalCluster::start_with(bin(), "real-restart", 1, 1, NodeKind::Backpack).unwrap();
    cluster.add_enabled_shard("1", &[1], "1gb").unwrap();
    let coordinator = coordinator(&cluster, &[]);
    let agent = client();
    let upload_all = |round: &str, agent: &ureq::Agent| {
        // Enough uploads that every pool of the node holds a connection.
        for i in 0..8 {
            let path = format!("/restart/{round}-{i}.bin");
            let (status, answer) = put(agent, &coordinator.url(&path), &body_for(&path));
            assert_eq!(
                (status, shard_of(&answer)),
                (200, "1".to_string()),
                "{path}: {answer}"
            );
        }
    };
    upload_all("before", &agent);
    cluster.node_mut(1).restart().unwrap();
    // Give the node's closing of the old connections time to reach the coordinator.
    std::thread::sleep(Duration::from_millis(200));
    upload_all("after", &agent);
    for round in ["before", "after"] {
        let path = format!("/restart/{round}-7.bin");
        assert_eq!(cluster.node(1).file(&path), Some(body_for(&path)), "{path}");
    }
    assert_eq!(
        node_failures(&coordinator.url("/metrics")),
        0.0,
        "a failure was counted against the restarted node"
    );
}
