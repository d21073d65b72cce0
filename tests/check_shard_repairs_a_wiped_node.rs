//! check-shard on real Backpack nodes: the node-replacement runbook end to end, a shard
//! with a file missing on each side and a length mismatch, and the one-line errors.

mod common;

use backpack_testkit::{free_port, ClusterNode, LocalCluster, NodeKind};
use common::cluster::*;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// Two real nodes in shard 1, each with its index address set.
fn real_shard(label: &str) -> LocalCluster {
    let cluster = LocalCluster::start_with(bin(), label, 1, 2, NodeKind::Backpack)
        .expect("start two real Backpack nodes");
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    for id in [1, 2] {
        let ClusterNode::Backpack(node) = cluster.node(id) else {
            unreachable!("real nodes")
        };
        let said = cluster
            .admin(
                "backpack-coordinator-set-node-index",
                &[&id.to_string(), &node.redis.address()],
            )
            .unwrap();
        assert!(said.contains("index set"), "{said}");
    }
    cluster
}

/// Runs an admin command: its exit code, stdout and stderr.
fn run(cluster: &LocalCluster, command: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(bin())
        .arg0(command)
        .arg(cluster.zk())
        .arg(&cluster.root)
        .args(args)
        .output()
        .expect("run the command");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn check(cluster: &LocalCluster, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["1", "--grace", "0s"];
    args.extend_from_slice(extra);
    run(cluster, "backpack-coordinator-check-shard", &args)
}

fn drain(cluster: &LocalCluster) {
    let mut replicator = replicator(cluster, "replicator", &[]);
    wait_for("the queue drains", Duration::from_secs(60), || {
        cluster.queue_is_empty()
    });
    replicator.stop();
}

#[test]
fn a_node_that_lost_its_disk_is_found_refilled_and_whole_again() {
    let mut cluster = real_shard("repair-runbook");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let agent = client();
    let paths: Vec<String> = (0..200).map(|i| format!("/runbook/{i}.jpg")).collect();
    for path in &paths {
        let (status, answer) = put(&agent, &coordinator.url(path), &body_for(path));
        assert_eq!(status, 200, "{answer}");
    }
    drain(&cluster);
    let (code, out, err) = check(&cluster, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("shard 1: 200 files") && out.contains("shard 1 is whole"),
        "{out}"
    );

    // The node loses its disk and comes back empty.
    match cluster.node_mut(2) {
        ClusterNode::Backpack(node) => node.wipe().unwrap(),
        _ => unreachable!("real nodes"),
    }
    let (code, out, err) = check(&cluster, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("node 2: 0 files present (0 bytes), 200 missing"),
        "{out}"
    );
    assert!(err.contains("shard 1 is not whole"), "{err}");

    let (code, out, err) = check(&cluster, &["--repair", "--rate", "5000"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("200 items queued"), "{out}");
    drain(&cluster);

    let (code, out, err) = check(&cluster, &[]);
    assert_eq!(code, 0, "{out}{err}");
    for path in &paths {
        let want = Some(body_for(path));
        assert_eq!(cluster.node(1).file(path), want, "{path} on node 1");
        assert_eq!(cluster.node(2).file(path), want, "{path} on node 2");
    }
}

#[test]
fn missing_copies_are_queued_and_a_mismatch_without_majority_is_reported() {
    let cluster = real_shard("repair-mismatch");
    let agent = client();
    let store = |node: usize, path: &str, body: &[u8]| {
        let (status, answer) = put(&agent, &format!("{}{path}", cluster.node(node).url()), body);
        assert_eq!(status, 201, "{answer}");
    };
    store(1, "/only-on-1", b"one");
    store(2, "/only-on-2", b"two");
    store(1, "/differs", b"short");
    store(2, "/differs", b"longer body");
    store(1, "/same", b"same");
    store(2, "/same", b"same");
    // A key in the index that is not a file record is left alone, and counted.
    let ClusterNode::Backpack(node) = cluster.node(1) else {
        unreachable!("real nodes")
    };
    let mut index = node.redis.connection().expect("connect to node 1's index");
    let _: () = redis::cmd("SET")
        .arg("junk")
        .arg("hello")
        .query(&mut index)
        .unwrap();
    // Waiting out the grace period of the keys whose copies differ, it says so every 5 s.
    let started = Instant::now();
    let (code, _, err) = run(
        &cluster,
        "backpack-coordinator-check-shard",
        &["1", "--grace", "7s"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(started.elapsed() >= Duration::from_secs(7), "{err}");
    assert!(
        err.contains(
            "shard 1: waiting out --grace for 3 key(s) whose copies differ; the next is judged in"
        ),
        "{err}"
    );
    let (code, out, err) = check(&cluster, &["--repair", "--fix-sizes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("shard 1: 4 files, 1 length mismatches (1 without a majority)"),
        "{out}"
    );
    assert!(
        out.contains("node 1: 3 files present") && out.contains("node 2: 3 files present"),
        "{out}"
    );
    assert!(out.contains("2 items queued"), "{out}");
    assert!(out.contains("1 records that are not files"), "{out}");
    // The fullest node holds 3 + 11 + 4 bytes: the shard's size becomes that.
    assert!(out.contains("current size 0 -> 18"), "{out}");
    assert_eq!(shard_current(&cluster, "1"), 18);
    let mut items = cluster.queue_items(0);
    items.sort();
    assert_eq!(
        items,
        [
            r#"{"from":["1"],"to":"2","path":"/only-on-1"}"#,
            r#"{"from":["2"],"to":"1","path":"/only-on-2"}"#,
        ]
    );
    // Queued copies are no findings: only the mismatch is left.
    let (code, out, _) = check(&cluster, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("2 copies skipped as queued"), "{out}");
    let (code, out, err) = run(
        &cluster,
        "backpack-coordinator-check-cluster",
        &["--grace", "0s"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("shard 1: 4 files") && err.contains("the cluster is not whole"),
        "{out}{err}"
    );
}

#[test]
fn unusable_input_is_one_line_and_exit_two() {
    let cluster = real_shard("repair-errors");
    let (code, _, err) = run(&cluster, "backpack-coordinator-check-shard", &["9"]);
    assert_eq!(
        (code, err.trim()),
        (
            2,
            "backpack-coordinator-check-shard: no shard 9 in shards-map"
        )
    );

    cluster.add_enabled_shard("2", &[1, 2], "1gb").unwrap();
    cluster
        .admin(
            "backpack-coordinator-add-server",
            &["3", "http://127.0.0.1:9"],
        )
        .unwrap();
    cluster
        .admin("backpack-coordinator-add-shard", &["3", "3", "1gb"])
        .unwrap();
    let (code, _, err) = run(&cluster, "backpack-coordinator-check-shard", &["3"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("node 3 of shard 3 has no index address"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let dead = free_port().unwrap().to_string();
    cluster
        .admin(
            "backpack-coordinator-set-node-index",
            &["3", &format!("127.0.0.1:{dead}")],
        )
        .unwrap();
    let (code, _, err) = run(
        &cluster,
        "backpack-coordinator-check-shard",
        &["3", "--timeout", "1"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("cannot read node 3's index at 127.0.0.1:{dead}")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // dump-shards shows the index addresses, nothing else changed.
    let dump: serde_json::Value = serde_json::from_str(
        &cluster
            .admin("backpack-coordinator-dump-shards", &[])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(dump["3"]["nodes"]["3"]["index"]["port"], dead.as_str());
    assert_eq!(dump["3"]["nodes"]["3"]["port"], "9");
}
