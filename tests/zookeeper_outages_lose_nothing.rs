//! ZooKeeper going away and coming back, under upload load: uploads go on, nothing is
//! lost, changes made meanwhile are seen, and waiting costs no CPU.

mod common;

use backpack_testkit::CoordinatorProcess;
use common::cluster::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn cpu_seconds(pid: u32) -> f64 {
    backpack_testkit::measure::cpu_seconds(pid).expect("the coordinator's /proc/<pid>/stat")
}

/// Uploads in the background until stopped; records the bytes acknowledged per shard.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<HashMap<String, u64>>>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(coordinator: &CoordinatorProcess, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let url = coordinator.url("");
        let (s, a, f) = (
            Arc::clone(&stop),
            Arc::clone(&acknowledged),
            Arc::clone(&failures),
        );
        let thread = std::thread::spawn(move || {
            let agent = client();
            let mut i = 0u64;
            while !s.load(Ordering::SeqCst) {
                i += 1;
                let body = vec![b'o'; 1000 + (i as usize * 7919) % 5000];
                let (status, answer) = put(&agent, &format!("{url}/load/{i}"), &body);
                if status == 200 {
                    *a.lock().unwrap().entry(shard_of(&answer)).or_insert(0) += body.len() as u64;
                } else {
                    f.lock().unwrap().push(format!("{status} {answer}"));
                }
                std::thread::sleep(pause);
            }
        });
        Load {
            stop,
            acknowledged,
            failures,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (HashMap<String, u64>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        let failures = self.failures.lock().unwrap().clone();
        (acknowledged, failures)
    }

    fn count(&self) -> u64 {
        self.acknowledged.lock().unwrap().values().sum()
    }
}

/// Uploads until one lands on `shard`; panics after `within`. Returns how long it took
/// and the bytes its probes stored per shard.
fn lands_on(
    coordinator: &CoordinatorProcess,
    shard: &str,
    within: Duration,
    label: &str,
) -> (Duration, HashMap<String, u64>) {
    let agent = client();
    let started = Instant::now();
    let mut stored: HashMap<String, u64> = HashMap::new();
    let mut i = 0;
    loop {
        i += 1;
        let (status, answer) = put(&agent, &coordinator.url(&format!("/{label}/{i}")), b"probe");
        if status == 200 {
            *stored.entry(shard_of(&answer)).or_insert(0) += 5;
            if shard_of(&answer) == shard {
                return (started.elapsed(), stored);
            }
        }
        if started.elapsed() >= within {
            let log = coordinator.log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            panic!(
                "{label}: no upload on shard {shard} after {within:?}: {answer}\nlog: {tail:#?}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn zookeeper_outage_under_load() {
    let mut cluster = example_cluster("zk-outage");
    let coordinator = cluster
        .start_coordinator(
            "coordinator",
            &["--size-flush", "500ms", "--zk-timeout", "1s", "--quiet"],
        )
        .unwrap();
    let pid = coordinator.process.pid().unwrap();
    let load = Load::start(&coordinator, Duration::from_millis(50));
    std::thread::sleep(Duration::from_secs(1));

    cluster.zookeeper.stop();
    let before = (cpu_seconds(pid), load.count());
    std::thread::sleep(Duration::from_secs(10));
    let cpu = cpu_seconds(pid) - before.0;
    let during = load.count() - before.1;
    eprintln!(
        "ZooKeeper away 10 s: coordinator CPU {cpu:.2} s, {during} bytes acknowledged meanwhile"
    );
    assert!(
        cpu < 1.0,
        "coordinator used {cpu:.2} CPU seconds in 10 s without ZooKeeper"
    );
    assert!(during > 0, "uploads stopped while ZooKeeper was away");
    let stats = get_json(&client(), &coordinator.url("/stats"));
    assert_ne!(stats["zookeeper_state"], "connected", "{stats}");
    assert!(
        stats["zookeeper_last_read_ms"].as_u64().unwrap() >= 9000,
        "{stats}"
    );

    cluster.zookeeper.restart().unwrap();
    cluster
        .admin("backpack-coordinator-add-shard", &["4", "1,4", "10gb"])
        .unwrap();
    // Shard 4 is enabled before the others are disabled: the other order leaves a moment
    // with no writable shard, and an upload of the load landing in it gets a fair 503.
    cluster
        .admin("backpack-coordinator-enable-shard", &["4"])
        .unwrap();
    for shard in ["1", "2", "3"] {
        cluster
            .admin("backpack-coordinator-disable-shard", &[shard])
            .unwrap();
    }
    let (took, probes) = lands_on(&coordinator, "4", Duration::from_secs(2), "after-outage");
    eprintln!("shard enabled after ZooKeeper came back: first upload on it after {took:?}");

    let (mut acknowledged, failures) = load.finish();
    assert_eq!(failures, Vec::<String>::new(), "uploads failed");
    for (shard, bytes) in probes {
        *acknowledged.entry(shard).or_insert(0) += bytes;
    }
    // Every byte acknowledged, during the outage too, is in the size nodes: none lost,
    // none counted twice.
    wait_for_sizes(&cluster, &acknowledged);
    let stats = get_json(&client(), &coordinator.url("/stats"));
    assert_eq!(stats["zookeeper_state"], "connected", "{stats}");
}

#[test]
fn an_expired_session_is_replaced() {
    let cluster = example_cluster("zk-expiry");
    let coordinator = cluster
        .start_coordinator(
            "coordinator",
            &["--zk-session-timeout", "2s", "--zk-timeout", "1s"],
        )
        .unwrap();
    coordinator.process.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(5));
    coordinator.process.signal(libc::SIGCONT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !coordinator.log().contains("opening a new") {
        assert!(
            Instant::now() < deadline,
            "no new session: {}",
            coordinator.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for shard in ["1", "2"] {
        cluster
            .admin("backpack-coordinator-disable-shard", &[shard])
            .unwrap();
    }
    lands_on(&coordinator, "3", Duration::from_secs(3), "after-expiry");
    // Both changes reach the coordinator (the second may come one coalescing gap later).
    let deadline = Instant::now() + Duration::from_secs(3);
    while get_json(&client(), &coordinator.url("/stats"))["writable_shards"] != 1 {
        assert!(Instant::now() < deadline, "{}", coordinator.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second session was opened (the expiry shows as an event or as a failed call).
    let sessions = coordinator.log().matches("ZooKeeper session 0x").count();
    assert!(sessions >= 2, "{}", coordinator.log());
    // Only shard 3 now.
    for i in 0..10 {
        let (status, answer) = put(&client(), &coordinator.url(&format!("/only3/{i}")), b"x");
        assert_eq!(
            (status, shard_of(&answer)),
            (200, "3".to_string()),
            "{}",
            coordinator.log()
        );
    }
}

#[test]
fn a_change_made_as_zookeeper_returns_is_seen() {
    let mut cluster = example_cluster("zk-restart");
    let coordinator = coordinator(&cluster, &["--zk-timeout", "1s"]);
    // The change lands before the coordinator has reconnected, then after.
    for (round, (shard, settle)) in [("1", Duration::ZERO), ("2", Duration::from_secs(3))]
        .into_iter()
        .enumerate()
    {
        cluster.zookeeper.stop();
        std::thread::sleep(Duration::from_secs(2));
        cluster.zookeeper.restart().unwrap();
        std::thread::sleep(settle);
        for other in ["1", "2", "3"] {
            if other != shard {
                cluster
                    .admin("backpack-coordinator-disable-shard", &[other])
                    .unwrap();
            }
        }
        cluster
            .admin("backpack-coordinator-enable-shard", &[shard])
            .unwrap();
        let (took, _) = lands_on(
            &coordinator,
            shard,
            Duration::from_secs(2),
            &format!("round-{round}"),
        );
        eprintln!("round {round}: change seen after {took:?}");
    }
}
