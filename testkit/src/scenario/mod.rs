//! Scenarios: a cluster under upload load, a fault, a heal, the drain, and the checks that
//! nothing acknowledged was lost. One scenario gives one row of the suite's table.
//!
//! A scenario runs in this order, each step timed from the start of the load:
//! 1. the load starts (closed or open loop, `load`);
//! 2. at `fault_at`, the fault strikes; `fault_for` later, the heal undoes it;
//! 3. the load runs until `load_for` has passed, then stops;
//! 4. every daemon must still be running;
//! 5. the replicators drain the queue: timed from the heal and from the end of the load,
//!    and a problem when it ends later than `drain_limit` after the heal;
//! 6. the checks (`checks`): every acknowledged upload on every node of its shard and
//!    through the front, byte for byte; nothing queued; no dead item the plan does not
//!    explain; no answer a valid upload should not get.

mod body;
pub mod checks;
pub mod levels;
mod load;
mod rig;
pub mod writes;

pub use body::{body, BodySizes, PHOTOS};
pub use load::{agent, shard_of, upload_n, Ack, Load, LoadShape, Outcome};
pub use rig::Rig;

use std::time::{Duration, Instant};

/// How long the queue may take to drain after the load before the scenario gives up.
const DRAIN_GIVE_UP: Duration = Duration::from_secs(90);

pub struct Plan {
    pub name: String,
    pub load: LoadShape,
    pub fault_at: Duration,
    pub fault_for: Duration,
    pub load_for: Duration,
    pub drain_limit: Duration,
    /// Dead items that are expected (an item that can never be copied, say).
    pub explained_dead: fn(&str) -> bool,
}

impl Plan {
    /// A plan with the fault suites' defaults: 8 clients uploading 1 KiB-2 MiB bodies for
    /// `load_for`, the fault 3 s in, the queue drained within 15 s of the heal, no dead
    /// item expected.
    pub fn closed_loop(name: &str, fault_for: Duration, load_for: Duration) -> Plan {
        Plan {
            name: name.to_string(),
            load: LoadShape::Closed {
                clients: 8,
                sizes: PHOTOS,
            },
            fault_at: Duration::from_secs(3),
            fault_for,
            load_for,
            drain_limit: Duration::from_secs(15),
            explained_dead: |_| false,
        }
    }
}

/// What one scenario did, and what its checks found wrong (nothing, when it passed).
pub struct Report {
    pub name: String,
    pub outcome: Outcome,
    /// When the fault struck and when the heal was done.
    pub fault_at: Instant,
    pub healed_at: Instant,
    /// The acknowledged uploads with a copy missing or different anywhere.
    pub lost: usize,
    pub drained_after_heal: Option<Duration>,
    pub drained_after_load: Option<Duration>,
    pub problems: Vec<String>,
}

/// The header of the table `Report::row` writes a row of.
pub const TABLE_HEADER: &str = "| scenario | attempted | acknowledged | failed 5xx | failed (connection) | lost | drained after the heal | after the load |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";

impl Report {
    pub fn row(&self) -> String {
        let seconds = |d: Option<Duration>| match d {
            Some(d) => format!("{:.1}s", d.as_secs_f64()),
            None => "never".to_string(),
        };
        let o = &self.outcome;
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            self.name,
            o.attempted,
            o.acks.len(),
            o.failed_5xx,
            o.failed_connection,
            self.lost,
            seconds(self.drained_after_heal),
            seconds(self.drained_after_load)
        )
    }
}

/// Runs `plan` on `rig`: `fault` at its time, `heal` after `fault_for`, then the drain
/// and the checks.
pub fn run(
    rig: &mut Rig,
    plan: &Plan,
    fault: impl FnOnce(&mut Rig),
    heal: impl FnOnce(&mut Rig),
) -> Report {
    let load = Load::start(rig.targets(), plan.load, &plan.name);
    let started = Instant::now();
    std::thread::sleep(plan.fault_at);
    let fault_at = Instant::now();
    fault(rig);
    std::thread::sleep(plan.fault_for.saturating_sub(fault_at.elapsed()));
    heal(rig);
    let healed_at = Instant::now();
    std::thread::sleep(plan.load_for.saturating_sub(started.elapsed()));
    let outcome = load.finish();
    let load_ended = Instant::now();

    let mut problems = rig.not_running();
    let drained = checks::wait_drained(&rig.cluster, DRAIN_GIVE_UP);
    let (drained_after_heal, drained_after_load) = match &drained {
        Ok(at) => (Some(*at - healed_at), Some(*at - load_ended)),
        Err(err) => {
            problems.push(err.clone());
            // What the replicators were doing says why.
            for (i, replicator) in rig.replicators.iter().enumerate() {
                problems.push(format!("replicator {i} log:\n{}", replicator.log_tail(15)));
            }
            (None, None)
        }
    };
    if let Some(after) = drained_after_heal.filter(|after| *after > plan.drain_limit) {
        problems.push(format!(
            "the queue drained {after:?} after the heal, over {:?}",
            plan.drain_limit
        ));
    }
    let mut lost = 0;
    match checks::missing_copies(&rig.cluster, &outcome.acks) {
        Ok(missing) => {
            let paths: std::collections::BTreeSet<&str> = missing
                .iter()
                .map(|m| m.split(' ').next().unwrap_or(""))
                .collect();
            lost = paths.len();
            problems.extend(summarise("copies missing or different", missing));
        }
        Err(err) => problems.push(err),
    }
    let unreadable = checks::unreadable_through_front(&rig.front, &outcome.acks);
    problems.extend(summarise("not served by the front", unreadable));
    let left = checks::unexplained_items(&rig.cluster, &plan.explained_dead);
    problems.extend(summarise("items left", left));
    problems.extend(summarise("unexpected answers", outcome.unexpected.clone()));
    Report {
        name: plan.name.clone(),
        outcome,
        fault_at,
        healed_at,
        lost,
        drained_after_heal,
        drained_after_load,
        problems,
    }
}

/// `what: N (first, second, ...)`, or nothing when `found` is empty.
fn summarise(what: &str, found: Vec<String>) -> Option<String> {
    (!found.is_empty()).then(|| {
        format!(
            "{what}: {} ({:?})",
            found.len(),
            &found[..found.len().min(5)]
        )
    })
}
