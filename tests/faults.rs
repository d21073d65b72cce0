//! Faults under load: nothing acknowledged is ever lost.
//!
//! Each scenario runs the seed example (ZooKeeper, two Redis, six nginx WebDAV nodes, or
//! six real Backpack nodes for `real-node-killed`; two coordinators, two replicators, the
//! generated front) under the test kit's scenario runner: 8 clients uploading 1 KiB to
//! 2 MiB to alternating coordinators, a fault 3 s in, its heal, the drain, and the checks
//! (every acknowledged upload byte-identical on both nodes of its shard and through the
//! front, nothing queued or dead, no daemon down, the queue drained within 15 s of the
//! heal). Here also: the shard sizes cover the acknowledged bytes (after a coordinator
//! SIGKILL, short by at most what it acknowledged in its last flush interval).
//!
//! `BACKPACK_FAULT_SECONDS` sets the load's length (default 12); `BACKPACK_FAULT_ONLY`
//! runs only the scenario of that name.

mod common;

use backpack_testkit::scenario::{self, checks, Plan, Report, Rig};
use backpack_testkit::{DelayProxy, NodeKind};
use common::cluster::bin;
use std::collections::HashMap;
use std::time::Duration;

const FLUSH: Duration = Duration::from_millis(1000);

fn load_for() -> Duration {
    let seconds = std::env::var("BACKPACK_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    Duration::from_secs(seconds)
}

/// Runs one scenario on a fresh rig; None when `BACKPACK_FAULT_ONLY` names another.
fn scenario(
    name: &str,
    kind: NodeKind,
    fault_for: Duration,
    fault: impl FnOnce(&mut Rig),
    heal: impl FnOnce(&mut Rig),
) -> Option<Report> {
    if std::env::var("BACKPACK_FAULT_ONLY").is_ok_and(|only| only != name) {
        return None;
    }
    let coordinator_flags = [
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
    // Default concurrency and batches: the suite's drain times are theirs.
    let replicator_flags = ["--quiet", "--zk-session-timeout", "3s"];
    let mut rig = Rig::seed_example(bin(), name, kind, &coordinator_flags, &replicator_flags)
        .expect("start the scenario's cluster");
    let plan = Plan::closed_loop(name, fault_for, load_for());
    let mut report = scenario::run(&mut rig, &plan, fault, heal);
    // Sizes: at least the acknowledged bytes, once every coordinator has flushed; after
    // a coordinator SIGKILL, less by at most what it acknowledged in its last interval.
    std::thread::sleep(FLUSH * 2);
    let killed = report.fault_at;
    let slack = match name {
        "coordinator-sigkill" => report
            .outcome
            .acks
            .iter()
            .filter(|a| {
                a.target == 0
                    && a.answered_at() <= killed
                    && killed - a.answered_at() <= FLUSH + Duration::from_millis(200)
            })
            .fold(HashMap::new(), |mut m, a| {
                *m.entry(a.shard.clone()).or_insert(0) += a.bytes;
                m
            }),
        _ => HashMap::new(),
    };
    match checks::short_sizes(&rig.cluster, &report.outcome.acks, &slack) {
        Ok(short) => report.problems.extend(short),
        Err(err) => report.problems.push(err),
    }
    eprintln!("{}", report.row());
    Some(report)
}

#[test]
fn nothing_acknowledged_is_lost() {
    let kill_node_2 = |rig: &mut Rig| rig.cluster.node_mut(2).process().kill();
    // Restarted with its data.
    let restart_node_2 = |rig: &mut Rig| rig.cluster.node_mut(2).restart().unwrap();
    let three = Duration::from_secs(3);
    let reports = [
        scenario(
            "node-killed",
            NodeKind::WebDav,
            three,
            kill_node_2,
            restart_node_2,
        ),
        scenario(
            "real-node-killed",
            NodeKind::Backpack,
            three,
            kill_node_2,
            restart_node_2,
        ),
        scenario(
            "redis-killed",
            NodeKind::WebDav,
            three,
            |rig| rig.cluster.redis[0].process().kill(),
            |rig| rig.cluster.redis[0].restart().unwrap(), // back empty
        ),
        scenario(
            "zookeeper-and-expiry",
            NodeKind::WebDav,
            three,
            |rig| rig.cluster.zookeeper.stop(),
            |rig| {
                rig.cluster.zookeeper.restart().unwrap();
                std::thread::sleep(Duration::from_secs(1));
                // Past the 3 s session timeout.
                rig.coordinators[0].process.signal(libc::SIGSTOP);
                std::thread::sleep(Duration::from_secs(5));
                rig.coordinators[0].process.signal(libc::SIGCONT);
            },
        ),
        scenario(
            "replicator-sigkill",
            NodeKind::WebDav,
            Duration::from_secs(2),
            |rig| rig.replicators[0].kill(),
            |rig| rig.replicators[0].restart().unwrap(),
        ),
        scenario(
            "coordinator-sigkill",
            NodeKind::WebDav,
            Duration::from_secs(2),
            |rig| rig.coordinators[0].process.kill(),
            |rig| rig.coordinators[0].restart().unwrap(),
        ),
        slow_node(),
    ];
    let reports: Vec<Report> = reports.into_iter().flatten().collect();
    println!("\n{}", scenario::TABLE_HEADER);
    for report in &reports {
        println!("{}", report.row());
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| format!("{}:\n  {}", r.name, r.problems.join("\n  ")))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Node 3 answers 2 s late for 5 s: servers-map points at a delaying proxy, then back.
fn slow_node() -> Option<Report> {
    let proxy = std::sync::Mutex::new(None);
    scenario(
        "slow-node",
        NodeKind::WebDav,
        Duration::from_secs(5),
        |rig| {
            let slow = DelayProxy::start(rig.cluster.node(3).port, Duration::from_secs(2)).unwrap();
            rig.cluster
                .admin("backpack-coordinator-add-server", &["3", &slow.url()])
                .unwrap();
            *proxy.lock().unwrap() = Some(slow);
        },
        |rig| {
            let node = rig.cluster.node(3).url();
            rig.cluster
                .admin("backpack-coordinator-add-server", &["3", &node])
                .unwrap();
            std::thread::sleep(Duration::from_secs(3)); // copies in flight through the proxy end
        },
    )
}
