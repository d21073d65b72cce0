//! SIGTERM drains: a coordinator finishes the uploads in flight and writes its pending
//! size increments before it exits; a replicator finishes the copy it is in. A second
//! signal ends either at once.

mod common;

use backpack_testkit::{DelayProxy, QUEUE_KEY};
use common::cluster::*;
use std::time::{Duration, Instant};

#[test]
fn sigterm_finishes_uploads_in_flight_and_flushes_sizes() {
    let (cluster, _proxy) = cluster_with_a_slow_node("sigterm", Duration::from_millis(1500));
    for id in ["2", "3"] {
        cluster
            .admin("backpack-coordinator-disable-shard", &[id])
            .unwrap();
    }
    let mut coordinator = coordinator(&cluster, &["--size-flush", "60s", "--quiet"]);
    let url = coordinator.url("");
    let uploads = std::thread::spawn(move || concurrent_uploads(&url, 20, "t"));
    std::thread::sleep(Duration::from_millis(500));
    coordinator.process.signal(libc::SIGTERM);
    let results = uploads.join().unwrap();
    assert_eq!(results.len(), 20);
    assert!(results.iter().all(|(shard, _)| shard == "1"));
    let status = coordinator
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("the coordinator exits");
    assert_eq!(status.code(), Some(0), "{}", coordinator.log());
    // The size flush interval is a minute: only the shutdown flush can have written this.
    assert_eq!(shard_current(&cluster, "1"), 20 * 5);
    assert!(!backpack_testkit::is_listening(coordinator.port));
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
    cluster.push_items(std::slice::from_ref(&item));
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
