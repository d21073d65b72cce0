//! Dead letters: items that keep failing leave the replication queue.
//!
//! Beside the queue's set `<key>`, every Redis server of the queue holds two keys of ours,
//! which the old tools never read:
//!
//! - `<key>-failures`, a hash: item -> its failure record (JSON: attempts, first failure,
//!   when every source last answered 404 for the first time, the last reason). Records add
//!   up across replicators and restarts. A record is only written under the item's lock,
//!   so two replicators never update one record at once.
//! - `<key>-dead`, a set: the items moved out of the queue, with their records kept until
//!   they are retried or dropped (`backpack-replicator-dead`).
//!
//! Each server holds its own copy, like the queue: writes go to every server, reads merge
//! what the servers that answer say.

use crate::error::{Error, Result};
use crate::replication_queue::{on_every_pipelined, ReplicationQueue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn failures_key(key: &str) -> String {
    format!("{key}-failures")
}

pub fn dead_key(key: &str) -> String {
    format!("{key}-dead")
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
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
    /// Since every source first answered 404: the copy is gone (a source is only named
    /// after it stored the file), but a node that is being refilled may bring it back.
    pub missing: Duration,
}

/// What one item's failures add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Failures where a node answered wrongly (`FailureKind::Attempt`).
    pub attempts: u64,
    /// Milliseconds since the epoch of the first failure that was not a 404.
    pub first_failure: Option<u64>,
    /// Milliseconds since the epoch when every source first answered 404.
    pub missing_since: Option<u64>,
    /// Milliseconds since the epoch of the last failure of either kind.
    pub last_failure: u64,
    pub last_reason: String,
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

impl FailureRecord {
    /// Adds a failure of `kind` at `now`.
    pub fn note(&mut self, kind: FailureKind, reason: &str, now: u64) {
        match kind {
            FailureKind::Missing => {
                self.missing_since.get_or_insert(now);
            }
            FailureKind::NodeDown => {
                self.first_failure.get_or_insert(now);
            }
            FailureKind::Attempt => {
                self.attempts += 1;
                self.first_failure.get_or_insert(now);
            }
        }
        self.last_failure = now;
        self.last_reason = reason.to_string();
    }

    /// Why the item is given up on at `now`, if it is.
    pub fn why_dead(&self, bounds: &Bounds, now: u64) -> Option<String> {
        let since = |at: Option<u64>| at.map(|at| Duration::from_millis(now.saturating_sub(at)));
        if self.attempts >= bounds.attempts {
            return Some(format!("{} failed attempts", self.attempts));
        }
        if let Some(failing) = since(self.first_failure).filter(|d| *d >= bounds.after) {
            return Some(format!("failing for {}s", failing.as_secs()));
        }
        if let Some(missing) = since(self.missing_since).filter(|d| *d >= bounds.missing) {
            return Some(format!(
                "every source answered 404 for {}s",
                missing.as_secs()
            ));
        }
        None
    }

    /// Two servers' records of one item as one: the larger count, the earlier clocks, the
    /// later last failure.
    fn merge(self, other: FailureRecord) -> FailureRecord {
        let earliest = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (last_failure, last_reason) = if other.last_failure > self.last_failure {
            (other.last_failure, other.last_reason)
        } else {
            (self.last_failure, self.last_reason)
        };
        FailureRecord {
            attempts: self.attempts.max(other.attempts),
            first_failure: earliest(self.first_failure, other.first_failure),
            missing_since: earliest(self.missing_since, other.missing_since),
            last_failure,
            last_reason,
        }
    }
}

/// A failed attempt at an item, to record.
pub struct Failed<'a> {
    pub item: &'a str,
    pub kind: FailureKind,
    pub reason: String,
}

/// The records of `items`, merged over the servers that answer (a missing record is the
/// default, empty one).
pub fn records(queue: &ReplicationQueue, items: &[&str]) -> Vec<FailureRecord> {
    let mut merged = vec![FailureRecord::default(); items.len()];
    if items.is_empty() {
        return merged;
    }
    let packed = redis::cmd("HMGET")
        .arg(failures_key(&queue.key))
        .arg(items)
        .get_packed_command();
    for reply in on_every_pipelined(&queue.pools, &packed, 1)
        .into_iter()
        .flatten()
    {
        let Some(values) = reply.into_iter().next() else {
            continue;
        };
        let texts: Vec<Option<String>> = redis::from_redis_value(values).unwrap_or_default();
        for (slot, text) in merged.iter_mut().zip(texts) {
            if let Some(record) = text.and_then(|t| serde_json::from_str(&t).ok()) {
                *slot = std::mem::take(slot).merge(record);
            }
        }
    }
    merged
}

/// Records `failed` attempts; the items past their bounds move from the queue to the dead
/// set on every server (added there before they leave the queue). Returns those items
/// with their records and why. Called under the items' locks.
pub fn record_failures(
    queue: &ReplicationQueue,
    failed: &[Failed<'_>],
    bounds: &Bounds,
) -> Vec<(String, FailureRecord, String)> {
    if failed.is_empty() {
        return Vec::new();
    }
    let now = now_ms();
    let items: Vec<&str> = failed.iter().map(|f| f.item).collect();
    let mut pipe = redis::pipe();
    let mut update = redis::cmd("HMSET");
    update.arg(failures_key(&queue.key));
    let mut dead = Vec::new();
    for (failure, mut record) in failed.iter().zip(records(queue, &items)) {
        record.note(failure.kind, &failure.reason, now);
        let text = serde_json::to_string(&record).unwrap_or_default();
        update.arg(failure.item).arg(text);
        if let Some(why) = record.why_dead(bounds, now) {
            dead.push((failure.item.to_string(), record, why));
        }
    }
    pipe.add_command(update);
    if !dead.is_empty() {
        let names: Vec<&str> = dead.iter().map(|(item, ..)| item.as_str()).collect();
        pipe.cmd("SADD").arg(dead_key(&queue.key)).arg(&names);
        pipe.cmd("SREM").arg(&queue.key).arg(&names);
    }
    let commands = if dead.is_empty() { 1 } else { 3 };
    on_every_pipelined(&queue.pools, &pipe.get_packed_pipeline(), commands);
    dead
}

/// After copies: `SREM` the items from the queue and their failure records, on every
/// server in one round trip each; the number of servers that answered.
pub fn copied(queue: &ReplicationQueue, items: &[&str]) -> usize {
    if items.is_empty() {
        return queue.pools.len();
    }
    let mut pipe = redis::pipe();
    pipe.cmd("SREM").arg(&queue.key).arg(items);
    pipe.cmd("HDEL").arg(failures_key(&queue.key)).arg(items);
    on_every_pipelined(&queue.pools, &pipe.get_packed_pipeline(), 2)
        .iter()
        .filter(|reply| reply.is_ok())
        .count()
}

/// The dead items (the union over the servers that answer) with their records. An error
/// when no server answers.
pub fn list(queue: &ReplicationQueue) -> Result<BTreeMap<String, FailureRecord>> {
    let packed = redis::cmd("SMEMBERS")
        .arg(dead_key(&queue.key))
        .get_packed_command();
    let mut items = std::collections::BTreeSet::new();
    let mut answered = 0;
    for reply in on_every_pipelined(&queue.pools, &packed, 1)
        .into_iter()
        .flatten()
    {
        answered += 1;
        if let Some(value) = reply.into_iter().next() {
            let members: Vec<String> = redis::from_redis_value(value).unwrap_or_default();
            items.extend(members);
        }
    }
    if answered == 0 {
        return Err(Error::Redis(
            "no Redis server of the queue answered".to_string(),
        ));
    }
    let names: Vec<&str> = items.iter().map(String::as_str).collect();
    let records = records(queue, &names);
    Ok(items.into_iter().zip(records).collect())
}

/// The dead set's length on each server (None for one that does not answer).
pub fn dead_counts(queue: &ReplicationQueue) -> Vec<Option<u64>> {
    let packed = redis::cmd("SCARD")
        .arg(dead_key(&queue.key))
        .get_packed_command();
    on_every_pipelined(&queue.pools, &packed, 1)
        .into_iter()
        .map(|reply| {
            let value = reply.ok()?.into_iter().next()?;
            redis::from_redis_value(value).ok()
        })
        .collect()
}

/// Puts dead items back into the queue with no failures counted (`retry`), or forgets
/// them (`drop`), on every server. Fails when no server answered.
pub fn revive_or_drop(queue: &ReplicationQueue, items: &[&str], retry: bool) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    if retry {
        pipe.cmd("SADD").arg(&queue.key).arg(items);
    }
    pipe.cmd("SREM").arg(dead_key(&queue.key)).arg(items);
    pipe.cmd("HDEL").arg(failures_key(&queue.key)).arg(items);
    let commands = if retry { 3 } else { 2 };
    let answered = on_every_pipelined(&queue.pools, &pipe.get_packed_pipeline(), commands)
        .iter()
        .filter(|reply| reply.is_ok())
        .count();
    if answered == 0 {
        return Err(Error::Redis(
            "no Redis server of the queue answered".to_string(),
        ));
    }
    Ok(())
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
            record.note(FailureKind::Missing, "404", 1_000 + i);
        }
        assert_eq!(record.attempts, 0, "404s are not attempts");
        assert_eq!(record.why_dead(&BOUNDS, 2_000), None);
        assert!(record.why_dead(&BOUNDS, 1_000 + 600_000).is_some());
        record.note(FailureKind::Attempt, "source: answered 500", 3_000);
        record.note(FailureKind::Attempt, "source: answered 500", 4_000);
        assert_eq!(record.why_dead(&BOUNDS, 4_000), None);
        record.note(FailureKind::Attempt, "target: answered 500", 5_000);
        assert_eq!(
            record.why_dead(&BOUNDS, 5_000).as_deref(),
            Some("3 failed attempts")
        );
        assert_eq!(record.last_reason, "target: answered 500");
    }

    #[test]
    fn failing_long_enough_is_dead_with_few_attempts() {
        let mut record = FailureRecord::default();
        record.note(FailureKind::Attempt, "x", 10_000);
        assert_eq!(record.why_dead(&BOUNDS, 69_999), None);
        assert!(record.why_dead(&BOUNDS, 70_000).is_some());
    }

    #[test]
    fn a_node_down_is_not_the_items_fault_until_the_time_bound() {
        let mut record = FailureRecord::default();
        for i in 0..50 {
            record.note(
                FailureKind::NodeDown,
                "target: io: Connection refused",
                10_000 + i,
            );
        }
        assert_eq!(record.attempts, 0);
        assert_eq!(
            record.why_dead(&BOUNDS, 20_000),
            None,
            "50 refusals in 50 ms"
        );
        assert!(
            record.why_dead(&BOUNDS, 70_000).is_some(),
            "down for the whole bound"
        );
    }

    #[test]
    fn records_from_two_servers_merge() {
        let a = FailureRecord {
            attempts: 2,
            first_failure: Some(500),
            missing_since: None,
            last_failure: 900,
            last_reason: "a".into(),
        };
        let b = FailureRecord {
            attempts: 5,
            first_failure: Some(700),
            missing_since: Some(800),
            last_failure: 1_000,
            last_reason: "b".into(),
        };
        let merged = a.merge(b);
        assert_eq!(merged.attempts, 5);
        assert_eq!(merged.first_failure, Some(500));
        assert_eq!(merged.missing_since, Some(800));
        assert_eq!(merged.last_reason, "b");
    }
}
