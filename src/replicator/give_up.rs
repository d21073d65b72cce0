//! When the replicator gives up on an item: each failed attempt is recorded beside the
//! queue (`replication_queue::DeadSet`), and an item past its bounds moves to the dead
//! set, where an operator retries or drops it (`backpack-replicator-dead`).
//!
//! Failures are told apart by what they say about the item. A node that answered wrongly
//! is an attempt, bounded by count and by time. Every source answering 404 has its own,
//! longer bound: the copy is gone (a source is only named after it stored the file), but
//! a node that is being refilled may bring it back. A node that did not answer at all
//! says nothing about the item and counts toward the time bound only.

use crate::replication_queue::{FailureRecord, ReplicationQueue};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When an item is given up on.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Failures other than "every source answered 404".
    pub attempts: u64,
    /// Since the first such failure.
    pub after: Duration,
    /// Since every source first answered 404.
    pub missing: Duration,
}

/// What a failed attempt says about its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Every source answered 404 (its own bound, `Bounds::missing`).
    Missing,
    /// No node answered at all (refused, reset, timed out): a node is down or restarting,
    /// which says nothing about the item. It counts toward `Bounds::after` only: a node
    /// down for three seconds made twenty quick attempts, and items were given up on
    /// that the node took minutes later.
    NodeDown,
    /// A node answered, but not with the file or a 201: an attempt.
    Attempt,
}

impl FailureKind {
    /// Adds a failure of this kind at `now` to `record`.
    pub fn note(self, record: &mut FailureRecord, reason: &str, now: u64) {
        match self {
            FailureKind::Missing => {
                record.missing_since.get_or_insert(now);
            }
            FailureKind::NodeDown => {
                record.first_failure.get_or_insert(now);
            }
            FailureKind::Attempt => {
                record.attempts += 1;
                record.first_failure.get_or_insert(now);
            }
        }
        record.last_failure = now;
        record.last_reason = reason.to_string();
    }
}

impl Bounds {
    /// Why the item of `record` is given up on at `now`, if it is.
    pub fn why_dead(&self, record: &FailureRecord, now: u64) -> Option<String> {
        let since = |at: Option<u64>| at.map(|at| Duration::from_millis(now.saturating_sub(at)));
        if record.attempts >= self.attempts {
            return Some(format!("{} failed attempts", record.attempts));
        }
        if let Some(failing) = since(record.first_failure).filter(|d| *d >= self.after) {
            return Some(format!("failing for {}s", failing.as_secs()));
        }
        if let Some(missing) = since(record.missing_since).filter(|d| *d >= self.missing) {
            return Some(format!(
                "every source answered 404 for {}s",
                missing.as_secs()
            ));
        }
        None
    }
}

/// A failed attempt at an item, to record.
pub struct Failed<'a> {
    pub item: &'a str,
    pub kind: FailureKind,
    pub reason: String,
}

/// An item given up on: its record, and why.
pub struct GivenUp {
    pub item: String,
    pub record: FailureRecord,
    pub why: String,
}

/// Records `failed` attempts, and moves the items past `bounds` to the dead set; returns
/// those. Called under the items' locks, so no other replicator writes their records.
pub fn record_failures(
    queue: &ReplicationQueue,
    failed: &[Failed<'_>],
    bounds: &Bounds,
) -> crate::Result<Vec<GivenUp>> {
    if failed.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    let dead_set = queue.dead();
    let items: Vec<&str> = failed.iter().map(|f| f.item).collect();
    let mut records = Vec::with_capacity(failed.len());
    let mut given_up = Vec::new();
    for (failure, mut record) in failed.iter().zip(dead_set.records(&items)) {
        failure.kind.note(&mut record, &failure.reason, now);
        if let Some(why) = bounds.why_dead(&record, now) {
            given_up.push(GivenUp {
                item: failure.item.to_string(),
                record: record.clone(),
                why,
            });
        }
        records.push((failure.item, record));
    }
    let dead: Vec<&str> = given_up.iter().map(|g| g.item.as_str()).collect();
    dead_set.write(&records, &dead)?;
    Ok(given_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        attempts: 3,
        after: Duration::from_secs(60),
        missing: Duration::from_secs(600),
    };

    #[test]
    fn attempts_and_404s_have_their_own_bounds() {
        let mut record = FailureRecord::default();
        for i in 0..10 {
            FailureKind::Missing.note(&mut record, "404", 1_000 + i);
        }
        assert_eq!(record.attempts, 0, "404s are not attempts");
        assert_eq!(BOUNDS.why_dead(&record, 2_000), None);
        assert!(BOUNDS.why_dead(&record, 1_000 + 600_000).is_some());
        FailureKind::Attempt.note(&mut record, "source: answered 500", 3_000);
        FailureKind::Attempt.note(&mut record, "source: answered 500", 4_000);
        assert_eq!(BOUNDS.why_dead(&record, 4_000), None);
        FailureKind::Attempt.note(&mut record, "target: answered 500", 5_000);
        assert_eq!(
            BOUNDS.why_dead(&record, 5_000).as_deref(),
            Some("3 failed attempts")
        );
        assert_eq!(record.last_reason, "target: answered 500");
    }

    #[test]
    fn failing_long_enough_is_dead_with_few_attempts() {
        let mut record = FailureRecord::default();
        FailureKind::Attempt.note(&mut record, "x", 10_000);
        assert_eq!(BOUNDS.why_dead(&record, 69_999), None);
        assert!(BOUNDS.why_dead(&record, 70_000).is_some());
    }

    #[test]
    fn a_node_down_is_not_the_items_fault_until_the_time_bound() {
        let mut record = FailureRecord::default();
        for i in 0..50 {
            FailureKind::NodeDown.note(&mut record, "target: io: Connection refused", 10_000 + i);
        }
        assert_eq!(record.attempts, 0);
        assert_eq!(
            BOUNDS.why_dead(&record, 20_000),
            None,
            "50 refusals in 50 ms"
        );
        assert!(
            BOUNDS.why_dead(&record, 70_000).is_some(),
            "down for the whole bound"
        );
    }
}
