//! Network fault scenarios: the seed example on hosts under an open-loop upload load, a
//! network fault, its heal, the drain, the checks, and one table row with what clients
//! saw during the fault on the shards it touched and on the others.

use super::cluster::bin;
use backpack_testkit::scenario::levels::{self, Holdings, Latency};
use backpack_testkit::scenario::{self, BodySizes, LoadShape, Plan, Report, Rig};
use backpack_testkit::NodeKind;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Held by a scenario while it runs: one at a time, since they measure latency and share
/// two cores.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The heal of every network scenario: every fault ended.
pub fn heal(rig: &mut Rig) {
    rig.cluster.network().expect("network").heal();
}

/// The suites' load: 100 uploads a second, one in ten 1 MiB, the rest 64 KiB, to the two
/// coordinators in turn.
pub const LOAD: LoadShape = LoadShape::Open {
    per_second: 100.0,
    sizes: BodySizes::TwoOf {
        small: 64 << 10,
        large: 1 << 20,
        large_percent: 10,
    },
};

/// The node timeouts in force (the daemons' defaults): a silent node costs an upload at
/// most one of them before it is retried elsewhere.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one network scenario showed.
pub struct Row {
    pub report: Report,
    /// All uploads before the fault; during it, on the touched shards and the others.
    pub before: Latency,
    pub touched: Latency,
    pub others: Latency,
    /// Each coordinator's holdings before the fault, and whether they came back.
    pub holdings_before: Vec<Holdings>,
    pub holdings_after: Vec<Result<Holdings, Holdings>>,
}

pub const TABLE_HEADER: &str = "| scenario | attempted | acknowledged | failed | lost | p99 / max before | during the fault, shards it touches | other shards | drained after the heal |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";

impl Row {
    pub fn text(&self) -> String {
        let r = &self.report;
        let o = &r.outcome;
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            o.attempted,
            o.acks.len(),
            o.failed_5xx + o.failed_connection,
            r.lost,
            self.before.text(),
            self.touched.text(),
            self.others.text(),
            r.drained_after_heal
                .map_or("never".to_string(), |d| format!("{:.1}s", d.as_secs_f64()))
        )
    }

    /// Prints the row under the table's header, and fails the test with every check that
    /// failed.
    pub fn print_and_check(&self) {
        println!("{TABLE_HEADER}\n{}", self.text());
        let problems = self.problems();
        assert!(problems.is_empty(), "{problems:?}");
    }

    /// Every check of the scenario that failed, in words (none: it passed).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.report.problems.clone();
        if self.report.lost > 0 {
            problems.push(format!("{} acknowledged uploads lost", self.report.lost));
        }
        for (i, after) in self.holdings_after.iter().enumerate() {
            if let Err(reading) = after {
                problems.push(format!(
                    "coordinator {i} holds {reading:?}, more than before the fault ({:?})",
                    self.holdings_before[i]
                ));
            }
        }
        problems
    }
}

/// Runs a scenario named `name` on a fresh seed example on hosts (nodes of `kind`): the
/// fault 5 s into a 30 s load, healed after `fault_for`; `touched` are the shards the
/// fault concerns. `fault` and `heal` get the rig.
pub fn run(
    name: &str,
    kind: NodeKind,
    touched: &[&str],
    fault_for: Duration,
    fault: impl FnOnce(&mut Rig),
    heal: impl FnOnce(&mut Rig),
) -> Row {
    let flags = ["--quiet"];
    let mut rig = Rig::seed_example_on_hosts(bin(), name, kind, &flags, &flags)
        .expect("start the seed example on hosts");
    run_on(&mut rig, name, touched, fault_for, fault, heal)
}

/// `run` on a rig the caller made (and may look at afterwards).
pub fn run_on(
    rig: &mut Rig,
    name: &str,
    touched: &[&str],
    fault_for: Duration,
    fault: impl FnOnce(&mut Rig),
    heal: impl FnOnce(&mut Rig),
) -> Row {
    let nodes: Vec<Ipv4Addr> = rig.cluster.nodes.iter().map(|n| n.host.ip).collect();
    let plan = Plan {
        name: name.to_string(),
        load: LOAD,
        fault_at: Duration::from_secs(5),
        fault_for,
        load_for: fault_for + Duration::from_secs(10),
        drain_limit: Duration::from_secs(15),
        explained_dead: |_| false,
    };
    let before = Arc::new(Mutex::new(Vec::new()));
    let taken = Arc::clone(&before);
    let nodes_at_fault = nodes.clone();
    let report = scenario::run(
        rig,
        &plan,
        move |rig| {
            let readings = rig
                .coordinators
                .iter()
                .map(|c| levels::holdings(c, &nodes_at_fault))
                .collect();
            *taken.lock().unwrap_or_else(|e| e.into_inner()) = readings;
            fault(rig)
        },
        heal,
    );
    let holdings_before = before.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let holdings_after = rig
        .coordinators
        .iter()
        .zip(&holdings_before)
        .map(|(c, level)| {
            // Pools may keep more idle connections after the load than before the fault
            // (the heal brings a burst): the level to return to is the larger of the two
            // node connection counts before the fault and a small pool.
            let level = Holdings {
                node_connections: level.node_connections.max(16),
                ..*level
            };
            levels::back_to(level, Duration::from_secs(10), || {
                levels::holdings(c, &nodes)
            })
        })
        .collect();
    let acks = &report.outcome.acks;
    let start = report.fault_at - plan.fault_at;
    let on = |ack: &backpack_testkit::scenario::Ack| touched.contains(&ack.shard.as_str());
    Row {
        before: levels::latency(acks, start, report.fault_at, |_| true),
        touched: levels::latency(acks, report.fault_at, report.healed_at, on),
        others: levels::latency(acks, report.fault_at, report.healed_at, |a| !on(a)),
        holdings_before,
        holdings_after,
        report,
    }
}
