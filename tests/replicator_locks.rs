//! The replicator's batched locks against another replicator's: an item whose lock node
//! another process holds (as an old Node.js replicator holds it: an ephemeral
//! `<root>/<key><md5>` holding `hostname:pid`) is never copied by us while it is held,
//! and the rest of the batch goes on without it. Also: replicators sharing one log file
//! write whole lines.

#[path = "common/cluster.rs"]
mod cluster;

use backpack::replication_queue::{lock_path, Item};
use backpack::zk::{NodeKind, ZkSession};
use backpack_testkit::QUEUE_KEY;
use cluster::*;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

#[test]
fn items_another_replicator_holds_are_left_to_it_and_the_rest_of_the_batch_is_copied() {
    let cluster = example_cluster("replicate-foreign-locks");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .unwrap();
    let agent = client();
    for i in 0..60 {
        let path = format!("/held/{i}.bin");
        let (status, answer) = put(&agent, &coordinator.url(&path), &body_for(&path));
        assert_eq!(status, 200, "{answer}");
    }
    let queued = queue_items(&cluster.redis[0].address());
    assert_eq!(queued.len(), 60);

    // Another process takes the locks of six items, as an old replicator would.
    let other = ZkSession::connect(&cluster.zk(), Duration::from_secs(5)).unwrap();
    let held: Vec<String> = queued.iter().step_by(10).cloned().collect();
    let locks: Vec<String> = held
        .iter()
        .map(|item| lock_path(&cluster.root, QUEUE_KEY, item))
        .collect();
    for lock in &locks {
        assert!(other
            .create(lock, b"old-host:4242".to_vec(), NodeKind::Ephemeral)
            .unwrap());
    }

    let replicator = replicator(&cluster, "replicator", &[]);
    let started = Instant::now();
    while queue_items(&cluster.redis[0].address()).len() > held.len() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the unlocked items were not copied: {}",
            std::fs::read_to_string(replicator.log()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Rounds go on meeting the held items for a while: they stay ours to leave alone.
    std::thread::sleep(Duration::from_secs(2));
    let mut left = queue_items(&cluster.redis[0].address());
    left.sort();
    let mut expected = held.clone();
    expected.sort();
    assert_eq!(left, expected, "exactly the held items are left");
    for (item, lock) in held.iter().zip(&locks) {
        let item = Item::parse(item).unwrap();
        let target: usize = item.to.parse().unwrap();
        assert_eq!(
            cluster.node(target).file(&item.path),
            None,
            "{} was copied while another replicator held it",
            item.path
        );
        assert_eq!(
            other.get(lock).unwrap().map(|(data, _)| data),
            Some(b"old-host:4242".to_vec()),
            "the other replicator's lock is untouched"
        );
    }

    // Released: the replicator copies them too.
    for lock in &locks {
        other.delete(lock).unwrap();
    }
    let released = Instant::now();
    while !queue_empty_everywhere(&cluster) {
        assert!(
            released.elapsed() < Duration::from_secs(15),
            "released items not copied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for item in &held {
        let item = Item::parse(item).unwrap();
        let target: usize = item.to.parse().unwrap();
        assert_eq!(
            cluster.node(target).file(&item.path),
            Some(body_for(&item.path))
        );
    }
}

/// Two replicators (sixteen workers) logging every copy into one file opened for
/// appending, as `>> replicator.log` in a shell does: every line is whole.
#[test]
fn replicators_sharing_one_log_file_write_whole_lines() {
    let cluster = backpack_testkit::LocalCluster::start(bin(), "replicate-shared-log", 2, 2)
        .expect("start the cluster");
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    let agent = client();
    let mut items = Vec::new();
    for i in 0..1500 {
        let path = format!("/log/{i}");
        let answer = agent
            .put(&format!("{}{path}", cluster.node(1).url()))
            .send(&b"some bytes"[..])
            .unwrap();
        assert_eq!(answer.status().as_u16(), 201);
        items.push(format!(r#"{{"from":["1"],"to":"2","path":"{path}"}}"#));
    }
    push_items(&cluster, &items);
    let log_path = cluster.sandbox.path().join("shared.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let mut replicators: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new(bin())
                .arg0("backpack-replicator")
                .args([cluster.zk().as_str(), cluster.root.as_str(), "--once"])
                .stderr(log.try_clone().unwrap())
                .spawn()
                .unwrap()
        })
        .collect();
    for replicator in &mut replicators {
        assert!(replicator.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(&log_path).unwrap();
    let stamp = |line: &str| {
        let b = line.as_bytes();
        b.len() > 25
            && b[4] == b'-'
            && b[10] == b'T'
            && b[23] == b'Z'
            && b[24] == b' '
            && line[..4].chars().all(|c| c.is_ascii_digit())
    };
    let broken: Vec<&str> = text.lines().filter(|line| !stamp(line)).collect();
    assert!(
        broken.is_empty(),
        "lines not whole: {:?}",
        &broken[..broken.len().min(5)]
    );
    let copies = text.lines().filter(|l| l.contains(" copy /log/")).count();
    assert!(copies >= 1500, "{copies} copy lines");
}
