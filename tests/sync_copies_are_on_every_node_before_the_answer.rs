//! `--sync-copies 2` on the seed example's real Backpack nodes: a 200 means both nodes
//! of the shard hold the file (no replicator runs, nothing is queued for it), a node
//! killed right after the answer loses nothing, and with one node of every shard down
//! uploads are refused with a message that says why.

mod common;

use backpack_testkit::{LocalCluster, NodeKind};
use common::cluster::*;
use common::front::{generated_front, read};
use std::process::Command;

/// The queue items (from every Redis) that name `path`.
fn queued_for(cluster: &LocalCluster, path: &str) -> Vec<String> {
    let needle = format!("\"path\":\"{path}\"");
    (0..cluster.redis.len())
        .flat_map(|server| cluster.queue_items(server))
        .filter(|item| item.contains(&needle))
        .collect()
}

#[test]
fn two_nodes_hold_every_acknowledged_upload_and_a_node_killed_after_the_answer_loses_nothing() {
    let mut cluster = example_cluster_of("sync-copies", NodeKind::Backpack);
    let coordinator = coordinator(&cluster, &["--sync-copies", "2"]);
    let agent = client();
    // Small bodies go from memory; 3 MiB is past --memory-body (1 MiB), so it is spooled
    // whole and then read by both node requests at once.
    let mut paths: Vec<String> = (0..30).map(|i| format!("/sync/{i}.jpg")).collect();
    paths.push("/sync/big.bin".into());
    for path in &paths {
        let body = if path.ends_with(".bin") {
            vec![7u8; 3 << 20]
        } else {
            body_for(path)
        };
        let (status, answer) = put(&agent, &coordinator.url(path), &body);
        assert_eq!(status, 200, "{path}: {answer}");
        let shard: usize = shard_of(&answer).parse().unwrap();
        for node in [shard, shard + 3] {
            assert!(
                cluster.node(node).file(path).as_ref() == Some(&body),
                "{path}: node {node} of shard {shard} does not hold it right after the 200"
            );
        }
        assert_eq!(queued_for(&cluster, path), Vec::<String>::new(), "{path}");
    }
    let metrics = scrape_metrics(&coordinator.url(""));
    assert_eq!(
        metrics.get("backpack_coordinator_uploads_with_sync_copies_total"),
        Some(&(paths.len() as f64))
    );

    // SIGKILL the shard's first node right after a 200: the front still reads the file.
    let front = generated_front(&cluster);
    let path = "/sync/kill-after-ack.jpg";
    let (status, answer) = put(&agent, &coordinator.url(path), &body_for(path));
    assert_eq!(status, 200, "{answer}");
    let shard = shard_of(&answer);
    let first: usize = shard.parse().unwrap();
    cluster.node_mut(first).process().kill();
    let (status, _, got) = read(&front.url(&format!("/{shard}:{}", &path[1..])), false);
    assert_eq!(
        status, 200,
        "read through the front with node {first} killed"
    );
    assert_eq!(got, body_for(path));

    // One node of every shard down (the first nodes, 1 to 3; one of them already is):
    // no shard can take 2 copies.
    for node in (1..=3).filter(|node| *node != first) {
        cluster.node_mut(node).process().kill();
    }
    let path = "/sync/refused.jpg";
    let (status, answer) = put(&agent, &coordinator.url(path), &body_for(path));
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer.contains("no shard could store 2 copies (--sync-copies 2)"),
        "{answer}"
    );
    assert_eq!(
        queued_for(&cluster, path),
        Vec::<String>::new(),
        "a partial write is not queued"
    );
    let metrics = scrape_metrics(&coordinator.url(""));
    assert_eq!(
        metrics.get("backpack_coordinator_uploads_refused_too_few_nodes_total"),
        Some(&1.0)
    );
}

#[test]
fn a_shard_with_fewer_nodes_than_the_copies_is_never_chosen() {
    let cluster = example_cluster_of("sync-copies-small", NodeKind::WebDav);
    // Shard 4 has one node: with --sync-copies 2 it never gets an upload.
    cluster.add_enabled_shard("4", &[1], "100tb").unwrap();
    let coordinator = coordinator(&cluster, &["--sync-copies", "2"]);
    let agent = client();
    for i in 0..40 {
        let path = format!("/small/{i}.jpg");
        let (status, answer) = put(&agent, &coordinator.url(&path), &body_for(&path));
        assert_eq!(status, 200, "{answer}");
        assert_ne!(shard_of(&answer), "4", "{path} went to the one-node shard");
        // The other node of the shard is queued nothing: both stored it.
        assert_eq!(queued_for(&cluster, &path), Vec::<String>::new());
    }
    let log = coordinator.log();
    assert_eq!(
        log.matches("shard 4 has 1 node(s), fewer than --sync-copies 2")
            .count(),
        1,
        "logged once:\n{log}"
    );

    // Three copies: no shard has three nodes.
    let three = cluster
        .start_coordinator("coordinator-3", &["--sync-copies", "3"])
        .unwrap();
    let (status, answer) = put(&agent, &three.url("/three.jpg"), b"x");
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer.contains("no writable shard has 3 nodes to store 3 copies (--sync-copies 3)"),
        "{answer}"
    );

    // A K of 0 is a usage error, before anything starts.
    let output = Command::new(bin())
        .args([
            "backpack-coordinator",
            "--sync-copies",
            "0",
            &cluster.zk(),
            &cluster.root,
            "127.0.0.1",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("--sync-copies must be at least 1"), "{said}");
}

/// With 3 nodes in a shard and K=2: a copy that one node refuses goes to the third, and
/// the item that is queued names both storing nodes in `from`.
#[test]
fn a_failed_node_is_replaced_by_the_shard_s_third_and_the_queue_item_names_both() {
    let mut cluster = LocalCluster::start_with(bin(), "sync-copies-three", 1, 3, NodeKind::WebDav)
        .expect("three nodes");
    cluster.add_enabled_shard("1", &[1, 2, 3], "100tb").unwrap();
    cluster.node_mut(2).process().kill();
    // No cooldown: the dead node stays in the first round of two out of three uploads.
    let flags = ["--sync-copies", "2", "--node-cooldown", "0s", "--quiet"];
    let coordinator = coordinator(&cluster, &flags);
    let agent = client();
    for i in 0..10 {
        let path = format!("/three/{i}.jpg");
        let (status, answer) = put(&agent, &coordinator.url(&path), &body_for(&path));
        assert_eq!(status, 200, "{answer}");
        for node in [1, 3] {
            assert_eq!(
                cluster.node(node).file(&path),
                Some(body_for(&path)),
                "node {node}"
            );
        }
        let items = queued_for(&cluster, &path);
        let item = |from: &str| format!(r#"{{"from":[{from}],"to":"2","path":"{path}"}}"#);
        let expected = [item(r#""1","3""#), item(r#""3","1""#)];
        assert!(
            !items.is_empty() && items.iter().all(|i| expected.contains(i)),
            "{items:?}"
        );
    }
    let failures = node_failures(&coordinator.url("/metrics"));
    assert!(failures >= 1.0, "node 2 was never tried: {failures}");
}
