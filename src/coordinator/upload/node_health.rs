//! Nodes that failed recently are tried last for a while (`--node-cooldown`), so a dead
//! node does not cost a connect timeout on every upload. They are still tried when every
//! other node of the shard failed too: a cooled-down node is a last hope, not excluded.
//! The rule itself is `transport::peer`'s, as for Redis servers.
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

    /// The node ids in the order to try them: random, recently failed ones last.
    pub fn order(&self, nodes: &[String]) -> Vec<String> {
        let records = self.nodes.lock();
        try_order(nodes.to_vec(), |id| {
            records.get(id).is_some_and(|r| r.cooldown.is_cooling())
        })
    }

    /// A node did not store a file, for `why`.
    pub fn failed(&self, id: &str, why: &str) {
        let now = Instant::now();
        let mut nodes = self.nodes.lock();
        let record = nodes.entry(id.to_string()).or_default();
        record.cooldown.record(false, self.period);
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
}
