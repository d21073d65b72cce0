//! When the replicator tries a failing item again, and when it gives up on it: each
//! failed attempt is recorded beside the queue (`replication_queue::DeadSet`); an item is
//! not tried again before its pause is over (`RetryPace`); an item past its bounds moves
//! to the dead set, where an operator retries or drops it (`backpack-replicator-dead`).
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

/// How long a failed item waits before it is tried again: `first` after a failure,
/// doubling with each failed attempt, at most `most`. The wait is counted from the last
/// failure in the item's shared record, so every replicator keeps the same pace.
///
/// Without it a failing item was tried again at every round while other items kept the
/// workers busy: twenty attempts, and the dead set, in under a second, for a node that
/// answered 500 for three seconds.
#[derive(Debug, Clone, Copy)]
pub struct RetryPace {
    pub first: Duration,
    pub most: Duration,
}

impl RetryPace {
    /// The pause after the failures of `record`. A failure that is not an attempt (a node
    /// down, every source 404) leaves the count alone: those items wait `first`.
    pub fn wait(&self, record: &FailureRecord) -> Duration {
        let doublings = record.attempts.saturating_sub(1).min(32) as u32;
        self.first
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.most)
    }

    /// True when the item of `record` may be tried at `now` (milliseconds since the
    /// epoch): it never failed, or its pause is over.
    #[cfg(test)]
    pub fn due(&self, record: &FailureRecord, now: u64) -> bool {
        self.due_in(record, now).is_none()
    }

    /// How long until the item of `record` may be tried, from `now`; None when it may be
    /// tried now.
    pub fn due_in(&self, record: &FailureRecord, now: u64) -> Option<Duration> {
        if record.last_failure == 0 {
            return None;
        }
        let due = record
            .last_failure
            .saturating_add(self.wait(record).as_millis() as u64);
        (now < due).then(|| Duration::from_millis(due - now))
    }
}

/// For each of `items` (by their shared records), how long until it may be tried: None
/// for one that may be tried now.
pub fn due_in(queue: &ReplicationQueue, items: &[&str], pace: &RetryPace) -> Vec<Option<Duration>> {
    let now = now_ms();
    queue
        .dead()
        .records(items)
        .iter()
        .map(|record| pace.due_in(record, now))
        .collect()
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
    fn a_failing_item_waits_longer_after_each_attempt() {
        let pace = RetryPace {
            first: Duration::from_secs(1),
            most: Duration::from_secs(300),
        };
        let mut record = FailureRecord::default();
        assert!(pace.due(&record, 5), "never failed: due at once");
        FailureKind::NodeDown.note(&mut record, "refused", 10_000);
        assert_eq!(pace.wait(&record), Duration::from_secs(1));
        assert!(!pace.due(&record, 10_999) && pace.due(&record, 11_000));
        let waits: Vec<u64> = (0..12)
            .map(|_| {
                FailureKind::Attempt.note(&mut record, "answered 500", 20_000);
                pace.wait(&record).as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert!(!pace.due(&record, 20_000 + 299_999));
        assert!(pace.due(&record, 20_000 + 300_000));
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
