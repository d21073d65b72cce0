//! Failing items: they wait longer after each failed attempt, go dead only past their
//! bounds, and can be listed, retried and dropped; the replicator's metrics count it all.
//!
//! A real Backpack 0.5.5 node's `GET /stats` is its statistics, answered without a
//! `Content-Length`, so the item `{"from":["1"],"to":"2","path":"/stats"}` can never be
//! copied: it must reach the dead set and leave the queue empty. A wiped source's items
//! fail with 404s, which count toward their own, longer bound. A node that answers 500
//! for a few seconds costs its items a few attempts, not their lives.

mod common;

use backpack_testkit::scenario::PHOTOS;
use backpack_testkit::{free_port, ClusterNode, FailingNode, LocalCluster, NodeKind, QUEUE_KEY};
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

/// Node 2 answers 500 for 4 s while other items keep the replicator busy: the items to
/// it wait out their pauses (1 s, then 2 s, ...) instead of spending an attempt every
/// round, none reaches the dead set with the default 20 attempts, and all are copied
/// once node 2 answers again.
#[test]
fn a_node_answering_500_for_seconds_sends_nothing_to_the_dead_set() {
    let cluster = LocalCluster::start(bin(), "dead-500", 2, 4).unwrap();
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    cluster.add_enabled_shard("2", &[3, 4], "10gb").unwrap();
    let agent = client();
    // A file on `node` and its item to `to`, as a coordinator leaves them.
    let stored = |node: usize, to: usize, path: &str| {
        let (status, _) = put(
            &agent,
            &format!("{}{path}", cluster.node(node).url()),
            b"data",
        );
        assert_eq!(status, 201, "{path}");
        format!(r#"{{"from":["{node}"],"to":"{to}","path":"{path}"}}"#)
    };
    let failing = FailingNode::start(500).unwrap();
    let add_server = "backpack-coordinator-add-server";
    cluster.admin(add_server, &["2", &failing.url()]).unwrap();
    let to_failing: Vec<String> = (0..15)
        .map(|i| stored(1, 2, &format!("/to-2/{i}")))
        .collect();
    cluster.push_items(&to_failing);
    let replicator = replicator(&cluster, "replicator", &[]);
    // Other items keep flowing meanwhile: ten new ones every 100 ms.
    let failing_until = std::time::Instant::now() + Duration::from_secs(4);
    let mut flowing = 0;
    while std::time::Instant::now() < failing_until {
        let items: Vec<String> = (flowing..flowing + 10)
            .map(|i| stored(3, 4, &format!("/to-4/{i}")))
            .collect();
        cluster.push_items(&items);
        flowing += 10;
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster
        .admin(add_server, &["2", &cluster.node(2).url()])
        .unwrap();
    wait_for("the queue drains", Duration::from_secs(30), || {
        cluster.queue_is_empty()
    });
    let log = log_of(&replicator);
    for server in 0..2 {
        assert_eq!(cluster.dead_items(server), Vec::<String>::new(), "{log}");
    }
    for i in 0..15 {
        let path = format!("/to-2/{i}");
        assert_eq!(cluster.node(2).file(&path).as_deref(), Some(&b"data"[..]));
        let attempts = log
            .lines()
            .filter(|l| l.contains(&format!("copy {path} ")) && l.contains("failed"))
            .count();
        assert!(
            (1..=4).contains(&attempts),
            "{path} was tried {attempts} times in the 4 s node 2 answered 500"
        );
    }
    for i in 0..flowing {
        assert!(cluster.node(4).file(&format!("/to-4/{i}")).is_some());
    }
}
