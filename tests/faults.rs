//! Faults under load: nothing acknowledged is ever lost.
//!
//! Each scenario runs the example cluster (ZooKeeper, two Redis, six nginx WebDAV nodes,
//! or six real Backpack nodes for `real-node-killed`, two coordinators, two replicators)
//! under upload load: 8 clients, random sizes from
//! 1 KiB to 2 MiB, unique paths, alternating coordinators. A fault strikes in the middle.
//! The replicators must drain the queue within 15 s of the end of the faults (the table
//! prints the time from the end of the faults and from the end of the load).
//! Afterwards, once the replicators have drained the queue, every acknowledged file must
//! be byte-identical on every node of its shard, the queue empty, nothing crashed, and the
//! shard sizes at least the acknowledged bytes (after a coordinator SIGKILL, at most one
//! flush interval of its increments may be missing).
//!
//! `BACKPACK_FAULT_SECONDS` sets the load's length (default 12); `BACKPACK_FAULT_ONLY`
//! runs only the scenario of that name.

#[path = "common/cluster.rs"]
mod cluster;

use backpack_testkit::{CoordinatorProcess, DelayProxy, LocalCluster, NodeKind, ServerProcess};
use cluster::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FLUSH: Duration = Duration::from_millis(1000);

/// Every scenario's queue is empty at most this long after its faults end.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);

#[derive(Clone)]
struct Ack {
    path: String,
    shard: String,
    bytes: u64,
    coordinator: usize,
    at: Instant,
}

#[derive(Default)]
struct Outcome {
    attempted: u64,
    acks: Vec<Ack>,
    failed_5xx: u64,
    failed_other: u64,
}

struct Load {
    stop: Arc<AtomicBool>,
    outcome: Arc<Mutex<Outcome>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(urls: [String; 2], clients: usize, label: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let threads = (0..clients)
            .map(|client| {
                let (stop, outcome, urls, label) = (
                    Arc::clone(&stop),
                    Arc::clone(&outcome),
                    urls.clone(),
                    label.to_string(),
                );
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(30)))
                        .build()
                        .into();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let which = (client + i) % 2;
                        let path = format!("/{label}/{client}/{i}.bin");
                        let body = body_for(&path);
                        let answer = agent.put(&format!("{}{path}", urls[which])).send(&body[..]);
                        let mut o = outcome.lock().unwrap();
                        o.attempted += 1;
                        match answer {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                let text =
                                    response.into_body().read_to_string().unwrap_or_default();
                                if status == 200 {
                                    o.acks.push(Ack {
                                        path,
                                        shard: shard_of(&text),
                                        bytes: body.len() as u64,
                                        coordinator: which,
                                        at: Instant::now(),
                                    });
                                } else if status >= 500 {
                                    o.failed_5xx += 1;
                                } else {
                                    panic!("unexpected answer {status}: {text}");
                                }
                            }
                            Err(_) => {
                                o.failed_other += 1;
                                drop(o);
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcome,
            threads,
        }
    }

    fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().expect("a client thread failed");
        }
        Arc::try_unwrap(self.outcome)
            .ok()
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

struct Scenario {
    cluster: LocalCluster,
    coordinators: Vec<CoordinatorProcess>,
    replicators: Vec<ServerProcess>,
}

impl Scenario {
    fn start(label: &str, kind: NodeKind) -> Scenario {
        let cluster = example_cluster_of(label, kind);
        let flags = [
            "--size-flush",
            "1s",
            "--quiet",
            "--zk-session-timeout",
            "3s",
            "--zk-timeout",
            "2s",
            "--node-connect-timeout",
            "500ms",
        ];
        let coordinators = ["coordinator-a", "coordinator-b"]
            .iter()
            .map(|name| cluster.start_coordinator(name, &flags).unwrap())
            .collect();
        let replicators = ["replicator-a", "replicator-b"]
            .iter()
            .map(|name| {
                // Default concurrency and batches: the suite's drain times are theirs.
                replicator(&cluster, name, &["--quiet", "--zk-session-timeout", "3s"])
            })
            .collect();
        Scenario {
            cluster,
            coordinators,
            replicators,
        }
    }

    fn urls(&self) -> [String; 2] {
        [self.coordinators[0].url(""), self.coordinators[1].url("")]
    }
}

fn seconds() -> u64 {
    std::env::var("BACKPACK_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

/// Runs one scenario: load, `fault` in the middle, drain, verify. Returns the report line.
fn scenario(label: &str, kind: NodeKind, fault: impl FnOnce(&mut Scenario)) -> Option<String> {
    if std::env::var("BACKPACK_FAULT_ONLY").is_ok_and(|only| only != label) {
        return None;
    }
    let mut s = Scenario::start(label, kind);
    let load = Load::start(s.urls(), 8, label);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let killed_coordinator_at = Instant::now();
    fault(&mut s);
    let faults_ended = Instant::now();
    let rest = Duration::from_secs(seconds()).saturating_sub(started.elapsed());
    std::thread::sleep(rest);
    let outcome = load.finish();

    // Whatever the fault left stopped is running again by now; nothing else crashed.
    for (i, c) in s.coordinators.iter_mut().enumerate() {
        assert!(
            c.process.is_running(),
            "{label}: coordinator {i} is not running:\n{}",
            c.log()
        );
    }
    for (i, r) in s.replicators.iter_mut().enumerate() {
        assert!(
            r.is_running(),
            "{label}: replicator {i} is not running:\n{}",
            std::fs::read_to_string(r.log()).unwrap_or_default()
        );
    }
    // Drain time counts from the end of the faults (the load may still be running then)
    // and from the end of the load.
    let load_ended = Instant::now();
    let drained = loop {
        if s.cluster
            .redis
            .iter()
            .all(|r| queue_items(&r.address()).is_empty())
        {
            break Instant::now();
        }
        assert!(
            load_ended.elapsed() < Duration::from_secs(90),
            "{label}: the queue did not drain"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let after_faults = drained - faults_ended;
    let after_load = drained - load_ended;
    let mut lost = Vec::new();
    let mut acked_bytes: HashMap<String, u64> = HashMap::new();
    for ack in &outcome.acks {
        *acked_bytes.entry(ack.shard.clone()).or_insert(0) += ack.bytes;
        let shard: usize = ack.shard.parse().unwrap();
        let expected = body_for(&ack.path);
        for node in [shard, shard + 3] {
            if s.cluster.node(node).file(&ack.path).as_ref() != Some(&expected) {
                lost.push(format!("{} on node {node}", ack.path));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{label}: {} acknowledged copies missing or different: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // Sizes: at least the acknowledged bytes; after a coordinator SIGKILL, less by at most
    // what it acknowledged in its last flush interval.
    std::thread::sleep(FLUSH * 2);
    let allowance: HashMap<String, u64> = if label == "coordinator-sigkill" {
        outcome
            .acks
            .iter()
            .filter(|a| {
                a.coordinator == 0
                    && a.at <= killed_coordinator_at
                    && killed_coordinator_at - a.at <= FLUSH + Duration::from_millis(200)
            })
            .fold(HashMap::new(), |mut m, a| {
                *m.entry(a.shard.clone()).or_insert(0) += a.bytes;
                m
            })
    } else {
        HashMap::new()
    };
    for (shard, bytes) in &acked_bytes {
        let current = shard_current(&s.cluster, shard);
        let slack = allowance.get(shard).copied().unwrap_or(0);
        assert!(
            current + slack >= *bytes,
            "{label}: shard {shard} size {current} < acknowledged {bytes} (allowed {slack})"
        );
    }
    let line = format!(
        "| {label} | {} | {} | {} | {} | 0 | {:.1}s | {:.1}s |",
        outcome.attempted,
        outcome.acks.len(),
        outcome.failed_5xx,
        outcome.failed_other,
        after_faults.as_secs_f64(),
        after_load.as_secs_f64()
    );
    eprintln!("{line}");
    assert!(
        after_faults <= DRAIN_LIMIT,
        "{label}: the queue drained {after_faults:?} after the faults ended, over {DRAIN_LIMIT:?}"
    );
    Some(line)
}

#[test]
fn nothing_acknowledged_is_lost() {
    let mut lines = vec![
        "| scenario | attempted | acknowledged | failed 5xx | failed (connection) | lost | drained after the faults | after the load |"
            .to_string(),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |".to_string(),
    ];
    let kill_node_2 = |s: &mut Scenario| {
        s.cluster.node_mut(2).process().kill();
        std::thread::sleep(Duration::from_secs(3));
        s.cluster.node_mut(2).restart().unwrap(); // with its data
    };
    lines.extend(scenario("node-killed", NodeKind::WebDav, kill_node_2));
    lines.extend(scenario(
        "real-node-killed",
        NodeKind::Backpack,
        kill_node_2,
    ));
    lines.extend(scenario("redis-killed", NodeKind::WebDav, |s| {
        s.cluster.redis[0].process().kill();
        std::thread::sleep(Duration::from_secs(3));
        s.cluster.redis[0].restart().unwrap(); // back empty
    }));
    lines.extend(scenario("zookeeper-and-expiry", NodeKind::WebDav, |s| {
        s.cluster.zookeeper.stop();
        std::thread::sleep(Duration::from_secs(3));
        s.cluster.zookeeper.restart().unwrap();
        std::thread::sleep(Duration::from_secs(1));
        // Past the 3 s session timeout.
        s.coordinators[0].process.signal(libc::SIGSTOP);
        std::thread::sleep(Duration::from_secs(5));
        s.coordinators[0].process.signal(libc::SIGCONT);
    }));
    lines.extend(scenario("replicator-sigkill", NodeKind::WebDav, |s| {
        s.replicators[0].kill();
        std::thread::sleep(Duration::from_secs(2));
        s.replicators[0].restart().unwrap();
    }));
    lines.extend(scenario("coordinator-sigkill", NodeKind::WebDav, |s| {
        s.coordinators[0].process.kill();
        std::thread::sleep(Duration::from_secs(2));
        s.coordinators[0].restart().unwrap();
    }));
    lines.extend(scenario("slow-node", NodeKind::WebDav, |s| {
        let slow = DelayProxy::start(s.cluster.node(3).port, Duration::from_secs(2)).unwrap();
        s.cluster
            .admin("backpack-coordinator-add-server", &["3", &slow.url()])
            .unwrap();
        std::thread::sleep(Duration::from_secs(5));
        s.cluster
            .admin(
                "backpack-coordinator-add-server",
                &["3", &s.cluster.node(3).url()],
            )
            .unwrap();
        std::thread::sleep(Duration::from_secs(3)); // copies in flight through the proxy end
    }));
    println!("\n{}", lines.join("\n"));
}
