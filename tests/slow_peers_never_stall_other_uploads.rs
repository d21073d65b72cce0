//! Green threads stay green: a node or a Redis server that answers slowly delays only
//! the uploads that wait on it, never the others on the same worker.

mod common;

use common::cluster::*;
use std::time::{Duration, Instant};

#[test]
fn a_slow_node_does_not_stall_other_uploads_on_one_worker() {
    let (cluster, _proxy) = cluster_with_a_slow_node("slow-node", Duration::from_secs(2));
    let coordinator = coordinator(&cluster, &["--workers", "1", "--quiet"]);
    let results = concurrent_uploads(&coordinator.url(""), 30, "g");
    let slow: Vec<f64> = results
        .iter()
        .filter(|(s, _)| s == "1")
        .map(|(_, t)| *t)
        .collect();
    let fast: Vec<f64> = results
        .iter()
        .filter(|(s, _)| s != "1")
        .map(|(_, t)| *t)
        .collect();
    eprintln!("one worker: shard 1 (slow node) uploads {slow:.2?} s; others {fast:.3?} s");
    assert!(!slow.is_empty() && !fast.is_empty(), "{results:?}");
    assert!(slow.iter().all(|t| *t >= 1.9), "{slow:?}");
    let worst_fast = fast.iter().cloned().fold(0.0, f64::max);
    assert!(
        worst_fast < 0.5,
        "uploads to healthy shards waited {worst_fast:.2} s behind the slow node"
    );
}

#[test]
fn a_slow_redis_costs_at_most_the_redis_timeout() {
    let cluster = example_cluster("slow-redis");
    let coordinator = coordinator(&cluster, &["--redis-timeout", "500ms"]);
    let agent = client();
    assert_eq!(put(&agent, &coordinator.url("/warm"), b"w").0, 200);
    let mut conn = cluster.redis[0].connection().unwrap();
    let sleeper = std::thread::spawn(move || {
        let started = Instant::now();
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query(&mut conn)
            .unwrap();
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        let started = Instant::now();
        let (status, answer) = put(
            &agent,
            &coordinator.url(&format!("/while-redis-sleeps/{i}")),
            b"s",
        );
        let took = started.elapsed();
        eprintln!("upload while one Redis sleeps: {status} in {took:?}");
        if took > Duration::from_millis(1500) {
            eprintln!("{}", coordinator.log());
        }
        assert_eq!(status, 200, "{answer}");
        assert!(
            took < Duration::from_millis(1000),
            "upload took {took:?}, the Redis timeout is 500 ms"
        );
    }
    assert!(
        sleeper.join().unwrap() >= Duration::from_millis(2900),
        "Redis really slept"
    );
}
