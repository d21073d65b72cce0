//! Dead letters and the replicator's metrics, on real Backpack 0.5.5 nodes.
//!
//! A real node's `GET /stats` is its statistics, answered without a `Content-Length`, so
//! the item `{"from":["1"],"to":"2","path":"/stats"}` can never be copied: it must reach
//! the dead set and leave the queue empty. A wiped source's items fail with 404s, which
//! count toward their own, longer bound.

mod common;

use backpack_testkit::scenario::PHOTOS;
use backpack_testkit::{free_port, ClusterNode, LocalCluster, NodeKind, QUEUE_KEY};
use common::cluster::*;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

const STATS_ITEM: &str = r#"{"from":["1"],"to":"2","path":"/stats"}"#;

fn real_cluster(label: &str) -> LocalCluster {
    let cluster = LocalCluster::start_with(bin(), label, 2, 2, NodeKind::Backpack)
        .expect("start two real Backpack nodes");
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    cluster
}

/// `backpack-replicator-dead <zk> <root> args...`: exit code and stdout.
fn dead(cluster: &LocalCluster, args: &[&str]) -> (i32, String) {
    let output = Command::new(bin())
        .arg0("backpack-replicator-dead")
        .args([cluster.zk().as_str(), cluster.root.as_str()])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn a_poison_item_goes_dead_the_queue_drains_and_retry_brings_it_back() {
    let cluster = real_cluster("dead-poison");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    upload_n(&coordinator.url(""), 20, "good", PHOTOS);
    cluster.push_items(&[STATS_ITEM.to_string()]);
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut replicator = replicator(
        &cluster,
        "replicator",
        &[
            "--dead-after-attempts",
            "3",
            "--max-error-backoff",
            "300ms",
            "--listen",
            &listen,
        ],
    );
    wait_for("the queue drains", Duration::from_secs(30), || {
        cluster.queue_is_empty()
    });
    for server in 0..2 {
        assert_eq!(
            cluster.dead_items(server),
            vec![STATS_ITEM.to_string()],
            "Redis {server}'s dead set"
        );
        let record = cluster
            .failure_record(server, STATS_ITEM)
            .expect("a failure record");
        assert_eq!(record["attempts"], 3, "{record}");
        assert!(
            record["last_reason"]
                .as_str()
                .unwrap()
                .contains("no Content-Length"),
            "{record}"
        );
    }
    let log = std::fs::read_to_string(replicator.log()).unwrap();
    assert!(
        log.contains(&format!(
            "item {STATS_ITEM} moved to {QUEUE_KEY}-dead (3 failed attempts"
        )),
        "{log}"
    );
    for i in 0..20 {
        let path = format!("/good/{i}.bin");
        for node in [1, 2] {
            assert_eq!(cluster.node(node).file(&path), Some(body_for(&path)));
        }
    }

    // The metrics parse, and move as copies happen.
    let before = scrape_metrics(&format!("http://127.0.0.1:{port}"));
    let server_labels: Vec<String> = cluster
        .redis
        .iter()
        .map(|r| format!("{{server={}}}", r.address()))
        .collect();
    for label in &server_labels {
        assert_eq!(
            before[&format!("backpack_replicator_queue_length{label}")],
            0.0
        );
        assert_eq!(
            before[&format!("backpack_replicator_dead_items{label}")],
            1.0
        );
    }
    assert_eq!(before["backpack_replicator_copies_total"], 20.0);
    assert_eq!(before["backpack_replicator_moved_to_dead_total"], 1.0);
    assert_eq!(
        before["backpack_replicator_failures_total{reason=source}"],
        3.0
    );
    assert_eq!(
        before["backpack_replicator_copy_duration_seconds_count"],
        20.0
    );
    assert_eq!(before["backpack_replicator_in_flight"], 0.0);
    upload_n(&coordinator.url(""), 5, "more", PHOTOS);
    wait_for("the new items are copied", Duration::from_secs(15), || {
        cluster.queue_is_empty()
    });
    let after = scrape_metrics(&format!("http://127.0.0.1:{port}"));
    assert_eq!(after["backpack_replicator_copies_total"], 25.0);
    assert!(
        after["backpack_replicator_copied_bytes_total"]
            > before["backpack_replicator_copied_bytes_total"]
    );

    // list, retry, drop.
    let (code, listed) = dead(&cluster, &["list"]);
    assert_eq!(code, 0, "{listed}");
    assert!(
        listed.contains(&format!("{STATS_ITEM}\tattempts 3, first failure 20")),
        "{listed}"
    );
    assert!(listed.contains("1 dead item(s)"), "{listed}");
    let (code, said) = dead(
        &cluster,
        &["retry", r#"{"from":["1"],"to":"2","path":"/nope"}"#],
    );
    assert_eq!(code, 1, "retrying an item that is not dead: {said}");
    let (code, said) = dead(&cluster, &["retry"]);
    assert_ne!(code, 0, "retry without an item or --all: {said}");
    replicator.stop(); // so that the item stays where retry puts it
    let (code, said) = dead(&cluster, &["retry", STATS_ITEM]);
    assert_eq!(code, 0, "{said}");
    for server in 0..2 {
        assert_eq!(cluster.queue_items(server), vec![STATS_ITEM.to_string()]);
        assert!(cluster.dead_items(server).is_empty());
        assert_eq!(
            cluster.failure_record(server, STATS_ITEM),
            None,
            "counts cleared"
        );
    }

    // --once: exits 0 once only dead items remain, and says how many.
    let mut once = replicator_once(&cluster);
    let status = once
        .wait_exit(Duration::from_secs(60))
        .expect("--once exits");
    let log = std::fs::read_to_string(once.log()).unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("the queue is empty; 1 dead item(s)"), "{log}");

    let (code, said) = dead(&cluster, &["drop", "--all"]);
    assert_eq!(code, 0, "{said}");
    for server in 0..2 {
        assert!(cluster.dead_items(server).is_empty());
        assert_eq!(cluster.failure_record(server, STATS_ITEM), None);
    }
}

fn replicator_once(cluster: &LocalCluster) -> backpack_testkit::ServerProcess {
    replicator(
        cluster,
        "replicator-once",
        &[
            "--once",
            "--dead-after-attempts",
            "2",
            "--max-error-backoff",
            "200ms",
        ],
    )
}

#[test]
fn a_wiped_sources_items_wait_dead_after_missing_not_the_attempt_bound() {
    let mut cluster = real_cluster("dead-missing");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    upload_n(&coordinator.url(""), 4, "lost", PHOTOS);
    let items = cluster.queue_items(0);
    assert_eq!(items.len(), 4);
    // Both nodes lose their disks: every source now answers 404.
    for node in [1, 2] {
        match cluster.node_mut(node) {
            ClusterNode::Backpack(node) => node.wipe().unwrap(),
            _ => unreachable!("real nodes"),
        }
    }
    let replicator = replicator(
        &cluster,
        "replicator",
        &[
            "--dead-after-attempts",
            "1",
            "--dead-after-missing",
            "6s",
            "--max-error-backoff",
            "300ms",
        ],
    );
    wait_for("failure records", Duration::from_secs(10), || {
        items
            .iter()
            .all(|item| cluster.failure_record(0, item).is_some())
    });
    let record = cluster.failure_record(0, &items[0]).unwrap();
    assert_eq!(record["attempts"], 0, "404s are not attempts: {record}");
    let missing_since = record["missing_since"].as_u64().expect("missing_since");
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    // Many rounds later, well inside the 6 s: still queued, though every round failed.
    std::thread::sleep(Duration::from_secs(2));
    let queued = cluster.queue_items(0);
    if now_ms() - missing_since < 5_000 {
        assert_eq!(
            queued, items,
            "404s do not count toward --dead-after-attempts 1"
        );
    }
    wait_for("the items die", Duration::from_secs(20), || {
        cluster.queue_is_empty()
    });
    assert!(
        now_ms() - missing_since >= 6_000,
        "not before --dead-after-missing"
    );
    assert_eq!(cluster.dead_items(1), items);
    let log = std::fs::read_to_string(replicator.log()).unwrap();
    assert!(log.contains("every source answered 404 for"), "{log}");
}
