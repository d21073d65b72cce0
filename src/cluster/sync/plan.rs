//! What the ZooKeeper thread must read, and when.
//!
//! Configuration nodes (servers-map, shards-map, queue) are watched. A watch that fires is
//! used up; reading the node again re-arms it. A change is read at once when the last
//! configuration read is at least `CONFIG_GAP` old, else when it becomes so: the first
//! change of a burst reaches uploads at once, the rest of the burst costs one rebuild per
//! gap, not one per change.
//!
//! Size nodes are polled instead: all of them every `size_refresh`, in pipelined batches
//! of at most `SIZE_CHUNK` spread evenly over the interval. Small batches keep ZooKeeper's
//! load smooth, and a configuration change never waits behind thousands of size reads.
//! Measured with `bp-bench scale` (README, "Scale"): with a thousand shards whose sizes
//! many coordinators rewrite, a watch event costs a coordinator about 95 µs (the client
//! hands each one across two threads), a polled read about 20 µs; and ZooKeeper's reads
//! from polling are fixed by shards and coordinators, not by how busy the cluster is.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The shortest time between two reads of changed configuration nodes.
pub(super) const CONFIG_GAP: Duration = Duration::from_millis(200);

/// Size nodes read in one batch at most.
pub(super) const SIZE_CHUNK: usize = 250;

/// Nodes to read: configuration nodes whose change was heard, and the size poll.
pub(super) struct ReadPlan {
    everything: bool,
    config: BTreeSet<String>,
    last_config_read: Option<Instant>,
    /// None: sizes are not followed (the replicator, bp-nginx-gen).
    size_refresh: Option<Duration>,
    last_size_read: Instant,
    /// Batches a full poll takes (the interval between batches is `size_refresh / this`).
    size_batches: u32,
    /// How much earlier than a full read the poll's clock starts (see `new`).
    size_phase: Duration,
}

/// What to read now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Reads {
    /// Every node, as after a (re)connection.
    pub(super) everything: bool,
    pub(super) config: Vec<String>,
    /// The next batch of size nodes.
    pub(super) sizes: bool,
}

impl ReadPlan {
    /// `size_phase` (less than `size_refresh`) moves the polls off the moment of the full
    /// read: coordinators started together (a deploy, a ZooKeeper that came back) would
    /// otherwise poll in step, and thousands of reads from each would reach ZooKeeper in
    /// one burst, delaying every other request behind them.
    pub(super) fn new(size_refresh: Option<Duration>, size_phase: Duration) -> ReadPlan {
        ReadPlan {
            everything: true,
            config: BTreeSet::new(),
            last_config_read: None,
            size_refresh,
            last_size_read: Instant::now(),
            size_batches: 1,
            size_phase,
        }
    }

    /// How many size nodes there are to poll (after each read of the shards-map).
    pub(super) fn size_nodes(&mut self, count: usize) {
        self.size_batches = count.div_ceil(SIZE_CHUNK).max(1) as u32;
    }

    /// The time between two size batches.
    fn size_gap(&self) -> Option<Duration> {
        self.size_refresh.map(|every| every / self.size_batches)
    }

    /// Everything must be read again (a new session, or one that came back).
    pub(super) fn everything(&mut self) {
        self.everything = true;
    }

    /// A watch fired on this configuration node.
    pub(super) fn changed(&mut self, path: String) {
        self.config.insert(path);
    }

    /// When the next read is due (`now` if it is already).
    pub(super) fn due_at(&self, now: Instant) -> Option<Instant> {
        if self.everything {
            return Some(now);
        }
        let config = (!self.config.is_empty()).then(|| match self.last_config_read {
            Some(at) => (at + CONFIG_GAP).max(now),
            None => now,
        });
        let sizes = self
            .size_gap()
            .map(|gap| (self.last_size_read + gap).max(now));
        match (config, sizes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes what is due at `now` (None: nothing is); give it back with `failed` if the
    /// reads fail.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<Reads> {
        if self.due_at(now).is_none_or(|at| at > now) {
            return None;
        }
        let mut reads = Reads::default();
        if std::mem::take(&mut self.everything) {
            // A full read after a (re)connection is no change of a burst: the next
            // change is read at once.
            reads.everything = true;
            self.config.clear();
            self.last_size_read = now.checked_sub(self.size_phase).unwrap_or(now);
            return Some(reads);
        }
        let config_due = !self.config.is_empty()
            && self
                .last_config_read
                .is_none_or(|at| now >= at + CONFIG_GAP);
        if config_due {
            reads.config = std::mem::take(&mut self.config).into_iter().collect();
            self.last_config_read = Some(now);
        }
        if self
            .size_gap()
            .is_some_and(|gap| now >= self.last_size_read + gap)
        {
            reads.sizes = true;
            self.last_size_read = now;
        }
        Some(reads)
    }

    /// The reads failed: they are pending again (the caller's back-off decides when).
    pub(super) fn failed(&mut self, reads: Reads) {
        self.everything |= reads.everything || reads.sizes;
        self.config.extend(reads.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_configuration_changes_is_read_once_per_gap() {
        let mut plan = ReadPlan::new(None, Duration::ZERO);
        let start = Instant::now();
        assert!(plan.take_due(start).is_some_and(|r| r.everything));
        assert_eq!(plan.due_at(start), None);
        // The first change after a quiet spell is read at once...
        plan.changed("/b/shards-map".into());
        let reads = plan.take_due(start).expect("due at once");
        assert_eq!(reads.config, ["/b/shards-map"]);
        // ...the next ones wait for the gap, and go together.
        for _ in 0..100 {
            plan.changed("/b/shards-map".into());
            plan.changed("/b/servers-map".into());
        }
        assert_eq!(plan.take_due(start + CONFIG_GAP / 2), None);
        let reads = plan
            .take_due(start + CONFIG_GAP)
            .expect("due after the gap");
        assert_eq!(reads.config, ["/b/servers-map", "/b/shards-map"]);
        assert_eq!(plan.due_at(start), None);
        // A failure puts them back.
        plan.failed(reads);
        assert!(plan
            .take_due(start + CONFIG_GAP * 2)
            .is_some_and(|r| r.config.len() == 2));
    }

    #[test]
    fn sizes_are_polled_every_refresh() {
        let refresh = Duration::from_secs(3);
        let mut plan = ReadPlan::new(Some(refresh), Duration::ZERO);
        let start = Instant::now();
        assert!(plan.take_due(start).is_some_and(|r| r.everything));
        assert_eq!(plan.due_at(start), Some(start + refresh));
        assert_eq!(plan.take_due(start + refresh / 2), None);
        let reads = plan.take_due(start + refresh).expect("due");
        assert!(reads.sizes && reads.config.is_empty());
        // A configuration change does not wait for the poll.
        plan.changed("/b/shards-map".into());
        let reads = plan.take_due(start + refresh).expect("due");
        assert!(!reads.sizes && reads.config.len() == 1);
        // 1000 size nodes: four batches, one every 750 ms.
        plan.size_nodes(1000);
        assert_eq!(
            plan.due_at(start + refresh),
            Some(start + refresh + refresh / 4)
        );
    }
}
