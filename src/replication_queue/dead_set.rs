//! The dead set: failure records, and the items given up on, beside the queue.
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
//! what the servers that answer say. When an item is given up on is the replicator's
//! policy (`replicator::give_up`); this module only keeps what it decided.

use super::{first_value, ReplicationQueue};
use crate::affinity::Home;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(super) fn failures_key(key: &str) -> String {
    format!("{key}-failures")
}

/// The dead set's key beside queue `key`.
pub fn dead_key(key: &str) -> String {
    format!("{key}-dead")
}

/// What one item's failures add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Failures where a node answered wrongly.
    pub attempts: u64,
    /// Milliseconds since the epoch of the first failure that was not a 404.
    pub first_failure: Option<u64>,
    /// Milliseconds since the epoch when every source first answered 404.
    pub missing_since: Option<u64>,
    /// Milliseconds since the epoch of the last failure of either kind.
    pub last_failure: u64,
    pub last_reason: String,
}

impl FailureRecord {
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

/// The dead set of one queue (`ReplicationQueue::dead`).
pub struct DeadSet<'q> {
    queue: &'q ReplicationQueue,
}

impl<'q> DeadSet<'q> {
    pub(super) fn of(queue: &'q ReplicationQueue) -> DeadSet<'q> {
        DeadSet { queue }
    }

    /// `<queue key>-dead`.
    pub fn key(&self) -> String {
        dead_key(&self.queue.key)
    }

    /// The records of `items`, merged over the servers that answer (a missing record is
    /// the default, empty one).
    pub fn records(&self, items: &[&str]) -> Vec<FailureRecord> {
        let mut merged = vec![FailureRecord::default(); items.len()];
        if items.is_empty() {
            return merged;
        }
        let packed = redis::cmd("HMGET")
            .arg(failures_key(&self.queue.key))
            .arg(items)
            .get_packed_command();
        let answers = self.queue.to_every(&packed, 1).unwrap_or_default();
        for texts in answers
            .into_iter()
            .filter_map(first_value::<Vec<Option<String>>>)
        {
            for (slot, text) in merged.iter_mut().zip(texts) {
                if let Some(record) = text.and_then(|t| serde_json::from_str(&t).ok()) {
                    *slot = std::mem::take(slot).merge(record);
                }
            }
        }
        merged
    }

    /// Writes the records of failed items, and moves those given up on (`dead`) from the
    /// queue to the dead set: added there before they leave the queue. On every server,
    /// in one round trip each; fails when no server answered. Called under the items'
    /// locks.
    pub fn write(&self, records: &[(&str, FailureRecord)], dead: &[&str]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let mut update = redis::cmd("HMSET");
        update.arg(failures_key(&self.queue.key));
        for (item, record) in records {
            update
                .arg(*item)
                .arg(serde_json::to_string(record).unwrap_or_default());
        }
        pipe.add_command(update);
        if !dead.is_empty() {
            pipe.cmd("SADD").arg(self.key()).arg(dead);
            pipe.cmd("SREM").arg(&self.queue.key).arg(dead);
            // Out of the queue uncopied: no lag to measure.
            pipe.cmd("ZREM")
                .arg(super::records_key(&self.queue.key))
                .arg(dead);
        }
        let commands = if dead.is_empty() { 1 } else { 4 };
        self.queue
            .to_every(&pipe.get_packed_pipeline(), commands)
            .map(|_| ())
    }

    /// The dead items (the union over the servers that answer) with their records. An
    /// error when no server answers.
    pub fn list(&self) -> Result<BTreeMap<String, FailureRecord>> {
        let items = self.queue.set_members(&self.key())?;
        let names: Vec<&str> = items.iter().map(String::as_str).collect();
        let records = self.records(&names);
        Ok(items.into_iter().zip(records).collect())
    }

    /// The dead set's length on each server (None for one that does not answer).
    pub fn counts(&self) -> Vec<Option<u64>> {
        self.queue.count_on_every(&self.key()).per_server()
    }

    /// Puts dead items back into the queue with no failures counted, on every server.
    /// Fails when no server answered.
    pub fn retry(&self, items: &[&str]) -> Result<()> {
        self.leave(items, true)
    }

    /// Forgets dead items and their records, on every server. Fails when no server
    /// answered.
    pub fn drop_items(&self, items: &[&str]) -> Result<()> {
        self.leave(items, false)
    }

    /// Takes items out of the dead set with their records; back into the queue first
    /// with `requeue` (queued as any push, with lag records), so that an item is never in
    /// neither set.
    fn leave(&self, items: &[&str], requeue: bool) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        if requeue {
            let items: Vec<String> = items.iter().map(|item| item.to_string()).collect();
            self.queue.push(&items, Home::default())?;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SREM").arg(self.key()).arg(items);
        pipe.cmd("HDEL")
            .arg(failures_key(&self.queue.key))
            .arg(items);
        self.queue
            .to_every(&pipe.get_packed_pipeline(), 2)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::FailureRecord;

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
