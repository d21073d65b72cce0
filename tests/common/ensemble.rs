//! The ZooKeeper ensemble's fault scenarios: the seed example on hosts (three ZooKeeper
//! servers) on WebDAV nodes, whose logs of PUTs are the observer of every write, and the
//! checks every scenario makes beyond the network suites' own: no file written by two
//! PUTs at once, and the size nodes exactly what the coordinators acknowledged.

use super::cluster::bin;
use super::network::{self, Row};
use backpack_testkit::scenario::{checks, writes, Rig};
use backpack_testkit::{LocalCluster, NodeKind};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

/// The replicators' session timeout: short, so that a partition outlives it in seconds.
pub const REPLICATOR_SESSION: Duration = Duration::from_secs(4);

/// The replicators' flags.
pub const REPLICATOR_FLAGS: [&str; 3] = ["--quiet", "--zk-session-timeout", "4s"];

/// The build the replicators run: this one, or the one `BACKPACK_REPLICATOR_BIN` names
/// (a build with the `unfenced-test-build` feature, to see the fence test fail).
pub fn replicator_bin() -> PathBuf {
    std::env::var_os("BACKPACK_REPLICATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin().to_path_buf())
}

/// The seed example on hosts with two coordinators, the front, and two replicators of
/// `replicator_bin()` with `REPLICATOR_FLAGS`.
pub fn rig(name: &str) -> Rig {
    let cluster = LocalCluster::seed_example_on_hosts(bin(), name, NodeKind::WebDav)
        .expect("start the seed example on hosts");
    let coordinators = ["coordinator-a", "coordinator-b"]
        .iter()
        .map(|name| cluster.start_coordinator(name, &["--quiet"]))
        .collect::<std::io::Result<Vec<_>>>()
        .expect("start the coordinators");
    let replicators = ["replicator-a", "replicator-b"]
        .iter()
        .map(|name| {
            cluster.start_replicator_from(&replicator_bin(), &cluster.zk(), name, &REPLICATOR_FLAGS)
        })
        .collect::<std::io::Result<Vec<_>>>()
        .expect("start the replicators");
    let front = cluster.start_front("front").expect("start the front");
    Rig {
        coordinators,
        replicators,
        front,
        cluster,
    }
}

/// Starts replicator `name` with `zk` as its connect string.
pub fn start_replicator(rig: &Rig, name: &str, zk: &str) -> backpack_testkit::ServerProcess {
    rig.cluster
        .start_replicator_from(&replicator_bin(), zk, name, &REPLICATOR_FLAGS)
        .expect("start a replicator")
}

/// What an ensemble scenario showed: the network suites' row, and what the nodes' logs
/// and the size nodes say.
pub struct Outcome {
    pub row: Row,
    pub writes: writes::Writes,
    pub sizes_differ: Vec<String>,
}

pub const TABLE_HEADER: &str = "| scenario | attempted | acknowledged | failed | lost | p99 / max before | during the fault | drained after the heal | files written twice | at once |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";

impl Outcome {
    pub fn text(&self) -> String {
        let r = &self.row.report;
        let o = &r.outcome;
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            o.attempted,
            o.acks.len(),
            o.failed_5xx + o.failed_connection,
            r.lost,
            self.row.before.text(),
            self.row.others.text(),
            r.drained_after_heal
                .map_or("never".to_string(), |d| format!("{:.1}s", d.as_secs_f64())),
            self.writes.written_twice,
            self.writes.at_once.len()
        )
    }

    /// Prints the row, and fails the test with every check that failed.
    pub fn print_and_check(&self) {
        println!("{TABLE_HEADER}\n{}", self.text());
        let mut problems = self.row.problems();
        if !self.writes.at_once.is_empty() {
            problems.push(format!(
                "{} file(s) written by two PUTs at once: {:?}",
                self.writes.at_once.len(),
                &self.writes.at_once[..self.writes.at_once.len().min(5)]
            ));
        }
        problems.extend(self.sizes_differ.iter().cloned());
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

/// Runs a scenario on `rig` (see `network::run_on`; no shard is singled out), then reads
/// the nodes' logs and waits for the size nodes to add up.
pub fn run(
    rig: &mut Rig,
    name: &str,
    fault_for: Duration,
    fault: impl FnOnce(&mut Rig),
    heal: impl FnOnce(&mut Rig),
) -> Outcome {
    let before: BTreeMap<String, u64> = checks::sizes(&rig.cluster).expect("sizes before");
    let row = network::run_on(rig, name, &[], fault_for, fault, heal);
    let o = &row.report.outcome;
    if o.failed_5xx + o.failed_connection > 0 {
        println!(
            "{} 5xx, {} without an answer; coordinator logs:\n{}\n{}",
            o.failed_5xx,
            o.failed_connection,
            rig.coordinators[0].process.log_tail(10),
            rig.coordinators[1].process.log_tail(10)
        );
    }
    let writes = writes::observe(&rig.cluster).expect("the nodes' logs");
    let acks = &row.report.outcome.acks;
    let sizes_differ = checks::sizes_differ(&rig.cluster, &before, acks, Duration::from_secs(15));
    Outcome {
        row,
        writes,
        sizes_differ,
    }
}

/// Runs admin command `command` from the lab with `--zk-timeout timeout`; its output and
/// how long it took.
pub fn admin(rig: &Rig, command: &str, args: &[&str], timeout: &str) -> (Output, Duration) {
    let cluster = &rig.cluster;
    let started = Instant::now();
    let output = cluster
        .sandbox
        .lab()
        .command(&cluster.bin)
        .expect("a command in the lab")
        .arg0(command)
        .arg(cluster.zk())
        .arg(&cluster.root)
        .args(args)
        .args(["--zk-timeout", timeout])
        .output()
        .expect("run an admin command");
    (output, started.elapsed())
}
