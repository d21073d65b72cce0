//! Replicators share one queue: two never copy an item at the same time; an item whose
//! lock node another process holds (as an old Node.js replicator holds it: an ephemeral
//! `<root>/<key><md5>` holding `hostname:pid`) is never copied by us while it is held,
//! and the rest of the batch goes on without it; an old-style item is consumed under its
//! md5 lock, and a killed replicator's lock expires; replicators sharing one log file
//! write whole lines.

mod common;

use backpack::replication_queue::{lock_path, Item};
use backpack::zk::{NodeKind, ZkSession};
use backpack_testkit::scenario::{BodySizes, PHOTOS};
use backpack_testkit::{DelayProxy, QUEUE_KEY};
use common::cluster::*;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

#[test]
fn items_another_replicator_holds_are_left_to_it_and_the_rest_of_the_batch_is_copied() {
    let cluster = example_cluster("replicate-foreign-locks");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    upload_n(&coordinator.url(""), 60, "held", PHOTOS);
    let queued = cluster.queue_items(0);
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
    while cluster.queue_items(0).len() > held.len() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the unlocked items were not copied: {}",
            std::fs::read_to_string(replicator.log()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Rounds go on meeting the held items for a while: they stay ours to leave alone.
    std::thread::sleep(Duration::from_secs(2));
    let mut left = cluster.queue_items(0);
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
    wait_for(
        "the released items are copied",
        Duration::from_secs(15),
        || cluster.queue_is_empty(),
    );
    for item in &held {
        let item = Item::parse(item).unwrap();
        let target: usize = item.to.parse().unwrap();
        assert_eq!(
            cluster.node(target).file(&item.path),
            Some(body_for(&item.path))
        );
    }
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
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let files = upload_n(
        &coordinator.url(""),
        200,
        "two",
        BodySizes::LogUniform(500, 4500),
    );
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
        .arg0("backpack-replicator-push")
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
    assert_eq!(cluster.queue_items(0), vec![item.to_string()]);
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
    cluster.push_items(&items);
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
