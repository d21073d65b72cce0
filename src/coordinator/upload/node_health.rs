//! Nodes that failed recently are tried last for a while (`--node-cooldown`), so a dead
//! node does not cost a connect timeout on every upload. They are still tried when every
//! other node of the shard failed too: a cooled-down node is a last hope, not excluded.
//! The rule itself is `transport::peer`'s, as for Redis servers.
//!
//! When the cooldown is over, one upload tries the node first: a *probe*. The others keep
//! it last until the probe succeeds; a failed probe starts a new cooldown. Without this,
//! every upload of the moment after a cooldown tried a still silent node first, and each
//! waited out a node timeout: with a node frozen for 20 s under 100 uploads a second, 112
//! uploads waited 4 s or more without probes, 90 with them. What is left is the first
//! wave: the uploads sent to the node before its first timeout told anything.
//!
//! Each node's failures of the last minute and its last error are kept too, for the
//! console: what this coordinator saw, not what other coordinators did.

use crate::transport::peer::{try_order, Cooldown};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How far back the console counts a node's failures.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Failures remembered per node at most (a dead node under load fails often).
const MOST_FAILURES_KEPT: usize = 10_000;

#[derive(Default)]
struct NodeRecord {
    cooldown: Cooldown,
    /// Its last PUT failed: after the cooldown, one probe goes first.
    suspect: bool,
    /// When an upload took the probe (see the module's comment).
    probe_since: Option<Instant>,
    /// When it failed, oldest first, within `FAILURE_WINDOW` (older ones are dropped as
    /// new ones come and when read).
    failures: VecDeque<Instant>,
    last_error: Option<(String, Instant)>,
}

impl NodeRecord {
    fn forget_old(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|at| now.duration_since(*at) > FAILURE_WINDOW)
        {
            self.failures.pop_front();
        }
    }
}

/// A node as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeReport {
    pub failures_last_minute: usize,
    /// The last error and how long ago it was.
    pub last_error: Option<(String, Duration)>,
    pub cooling_down: bool,
}

pub struct NodeHealth {
    period: Duration,
    nodes: Mutex<HashMap<String, NodeRecord>>,
}

impl NodeHealth {
    pub fn new(period: Duration) -> NodeHealth {
        NodeHealth {
            period,
            nodes: Mutex::new(HashMap::new()),
        }
    }

    /// The node ids in the order to try them: random, recently failed ones last; a node
    /// whose cooldown just ended goes first for the one upload that probes it.
    pub fn order(&self, nodes: &[String]) -> Vec<String> {
        let now = Instant::now();
        let mut records = self.nodes.lock();
        let mut probe = None;
        for id in nodes {
            let Some(record) = records.get_mut(id) else {
                continue;
            };
            let probe_lost = record
                .probe_since
                .is_none_or(|since| now.duration_since(since) > self.period);
            if probe.is_none() && record.suspect && !record.cooldown.is_cooling() && probe_lost {
                record.probe_since = Some(now);
                probe = Some(id.clone());
            }
        }
        let mut order = try_order(nodes.to_vec(), |id| {
            records.get(id).is_some_and(|r| {
                r.cooldown.is_cooling() || (r.suspect && probe.as_ref() != Some(id))
            })
        });
        if let Some(probe) = probe {
            order.retain(|id| *id != probe);
            order.insert(0, probe);
        }
        order
    }

    /// A node did not store a file, for `why`.
    pub fn failed(&self, id: &str, why: &str) {
        let now = Instant::now();
        let mut nodes = self.nodes.lock();
        let record = nodes.entry(id.to_string()).or_default();
        record.cooldown.record(false, self.period);
        record.suspect = true;
        record.probe_since = None;
        record.forget_old(now);
        if record.failures.len() >= MOST_FAILURES_KEPT {
            record.failures.pop_front();
        }
        record.failures.push_back(now);
        record.last_error = Some((why.to_string(), now));
    }

    pub fn succeeded(&self, id: &str) {
        let mut nodes = self.nodes.lock();
        if let Some(record) = nodes.get_mut(id) {
            record.cooldown.record(true, self.period);
            record.suspect = false;
            record.probe_since = None;
        }
    }

    /// Every node that failed since start: its failures of the last minute, its last
    /// error, and whether it is tried last now.
    pub fn report(&self) -> HashMap<String, NodeReport> {
        let now = Instant::now();
        let mut nodes = self.nodes.lock();
        nodes
            .iter_mut()
            .map(|(id, record)| {
                record.forget_old(now);
                let report = NodeReport {
                    failures_last_minute: record.failures.len(),
                    last_error: record
                        .last_error
                        .as_ref()
                        .map(|(why, at)| (why.clone(), now.duration_since(*at))),
                    cooling_down: record.cooldown.is_cooling(),
                };
                (id.clone(), report)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_node_is_reported_with_its_last_error_and_tried_last() {
        let health = NodeHealth::new(Duration::from_secs(5));
        health.failed("2", "connection refused");
        health.failed("2", "answered 500");
        let order = health.order(&["2".to_string(), "1".to_string()]);
        assert_eq!(order, ["1", "2"]);
        let report = &health.report()["2"];
        assert_eq!(report.failures_last_minute, 2);
        assert_eq!(
            report.last_error.as_ref().map(|(why, _)| why.as_str()),
            Some("answered 500")
        );
        assert!(report.cooling_down);
        health.succeeded("2");
        let report = &health.report()["2"];
        assert!(!report.cooling_down);
        assert_eq!(
            report.failures_last_minute, 2,
            "a success does not erase the minute"
        );
    }

    #[test]
    fn after_the_cooldown_one_upload_probes_the_node_first() {
        let health = NodeHealth::new(Duration::from_millis(100));
        let nodes = ["2".to_string(), "1".to_string()];
        health.failed("2", "no answer");
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(health.order(&nodes), ["2", "1"], "the probe tries it first");
        for _ in 0..20 {
            assert_eq!(
                health.order(&nodes),
                ["1", "2"],
                "the others wait for the probe"
            );
        }
        health.failed("2", "no answer again");
        assert_eq!(
            health.order(&nodes),
            ["1", "2"],
            "a failed probe: cooling again"
        );
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(health.order(&nodes)[0], "2", "the next probe");
        health.succeeded("2");
        let firsts = (0..200).filter(|_| health.order(&nodes)[0] == "2").count();
        assert!(
            (40..160).contains(&firsts),
            "a node that answers is back in turn: {firsts}"
        );
    }
}
