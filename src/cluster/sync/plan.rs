//! What the ZooKeeper thread must read again, and when.
//!
//! A watch that fires is used up; reading the node again re-arms it. Reading at once after
//! every event costs a read and a snapshot rebuild per change: with a thousand shards whose
//! size nodes many coordinators rewrite, that is hundreds of rebuilds a second for nothing.
//! So reads are coalesced, on two clocks:
//!
//! - a configuration change (servers-map, shards-map, queue) is read at once when the last
//!   configuration read is at least `CONFIG_GAP` old, else when it becomes so: the first
//!   change of a burst reaches uploads at once, the rest of the burst costs one rebuild per
//!   gap;
//! - a size node that changed is read at most every `size_refresh`. Until then its watch
//!   stays used up, so further writes to it cost this process nothing: each size node
//!   wakes us at most once per `size_refresh`, however often coordinators write it.
//!
//! A configuration read takes the changed size nodes along, so one rebuild covers both.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Size-node changes heard on the ZooKeeper client's thread, gathered here so that only
/// the first one after each collection wakes the sync thread: with a thousand size nodes
/// that many coordinators rewrite, a wakeup (two thread switches) per event would cost
/// more than the reads themselves.
#[derive(Default)]
pub(super) struct SizeChanges {
    paths: Mutex<Vec<String>>,
}

impl SizeChanges {
    /// Notes a changed size node; true when it is the first since the last `take`, and
    /// the sync thread must be woken to plan a read.
    pub(super) fn add(&self, path: String) -> bool {
        let mut paths = self.paths.lock();
        paths.push(path);
        paths.len() == 1
    }

    pub(super) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.paths.lock())
    }
}

/// The shortest time between two reads of changed configuration nodes.
pub(super) const CONFIG_GAP: Duration = Duration::from_millis(200);

/// Nodes whose change was heard and that are not yet read again.
pub(super) struct ReadPlan {
    everything: bool,
    config: BTreeSet<String>,
    sizes: BTreeSet<String>,
    last_config_read: Option<Instant>,
    last_size_read: Option<Instant>,
    size_refresh: Duration,
}

/// What to read now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Reads {
    /// Every node, as after a (re)connection; `paths` is empty then.
    pub(super) everything: bool,
    pub(super) config: Vec<String>,
    pub(super) sizes: Vec<String>,
}

impl ReadPlan {
    pub(super) fn new(size_refresh: Duration) -> ReadPlan {
        ReadPlan {
            everything: true,
            config: BTreeSet::new(),
            sizes: BTreeSet::new(),
            last_config_read: None,
            last_size_read: None,
            size_refresh,
        }
    }

    /// Everything must be read again (a new session, or one that came back).
    pub(super) fn everything(&mut self) {
        self.everything = true;
    }

    /// Size nodes that changed (gathered by `SizeChanges`).
    pub(super) fn sizes_changed(&mut self, paths: Vec<String>) {
        self.sizes.extend(paths);
    }

    /// A watch fired on `path`, a size node or not.
    pub(super) fn changed(&mut self, path: String, is_size: bool) {
        if is_size {
            self.sizes.insert(path);
        } else {
            self.config.insert(path);
        }
    }

    /// When the next read is due (`now` if it is already); None when nothing waits.
    pub(super) fn due_at(&self, now: Instant) -> Option<Instant> {
        let after = |last: Option<Instant>, gap: Duration| match last {
            Some(at) => (at + gap).max(now),
            None => now,
        };
        if self.everything {
            return Some(now);
        }
        let config = (!self.config.is_empty()).then(|| after(self.last_config_read, CONFIG_GAP));
        let sizes = (!self.sizes.is_empty()).then(|| after(self.last_size_read, self.size_refresh));
        match (config, sizes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes what is due at `now` (None: nothing is); give it back with `failed` if the
    /// reads fail.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<Reads> {
        if !self.due_at(now).is_some_and(|at| at <= now) {
            return None;
        }
        let mut reads = Reads::default();
        if std::mem::take(&mut self.everything) {
            reads.everything = true;
            // A full read after a (re)connection is no change of a burst: the next
            // change is read at once.
            self.config.clear();
            self.sizes.clear();
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
        let sizes_due = !self.sizes.is_empty()
            && self
                .last_size_read
                .is_none_or(|at| now >= at + self.size_refresh);
        // A configuration read rebuilds anyway: changed sizes come along for free.
        if config_due || sizes_due {
            reads.sizes = std::mem::take(&mut self.sizes).into_iter().collect();
            if sizes_due {
                self.last_size_read = Some(now);
            }
        }
        Some(reads)
    }

    /// The reads failed: they are pending again (the caller's back-off decides when).
    pub(super) fn failed(&mut self, reads: Reads) {
        self.everything |= reads.everything;
        self.config.extend(reads.config);
        self.sizes.extend(reads.sizes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_configuration_changes_is_read_once_per_gap() {
        let mut plan = ReadPlan::new(Duration::from_secs(1));
        let start = Instant::now();
        assert!(plan.take_due(start).is_some_and(|r| r.everything));
        assert_eq!(plan.due_at(start), None);
        // The first change after a quiet spell is read at once...
        let later = start + CONFIG_GAP;
        plan.changed("/b/shards-map".into(), false);
        let reads = plan.take_due(later).expect("due at once");
        assert_eq!(reads.config, ["/b/shards-map"]);
        // ...the next ones wait for the gap, and go together.
        for _ in 0..100 {
            plan.changed("/b/shards-map".into(), false);
            plan.changed("/b/servers-map".into(), false);
        }
        assert_eq!(plan.take_due(later + CONFIG_GAP / 2), None);
        let reads = plan
            .take_due(later + CONFIG_GAP)
            .expect("due after the gap");
        assert_eq!(reads.config, ["/b/servers-map", "/b/shards-map"]);
        assert_eq!(plan.due_at(start), None);
    }

    #[test]
    fn sizes_wait_for_their_refresh_unless_a_configuration_read_takes_them() {
        let refresh = Duration::from_secs(1);
        let mut plan = ReadPlan::new(refresh);
        let start = Instant::now();
        plan.take_due(start);
        // The first change is read at once, the next one a refresh later.
        plan.changed("/b/shard-size-1".into(), true);
        assert_eq!(plan.take_due(start).map(|r| r.sizes.len()), Some(1));
        plan.changed("/b/shard-size-1".into(), true);
        assert_eq!(plan.due_at(start), Some(start + refresh));
        assert_eq!(plan.take_due(start + refresh / 2), None);
        let reads = plan.take_due(start + refresh).expect("due");
        assert_eq!(reads.sizes, ["/b/shard-size-1"]);
        assert!(reads.config.is_empty());
        // A configuration change takes pending sizes along.
        plan.changed("/b/shard-size-2".into(), true);
        plan.changed("/b/shards-map".into(), false);
        let reads = plan.take_due(start + refresh + CONFIG_GAP).expect("due");
        assert_eq!(reads.sizes, ["/b/shard-size-2"]);
        // A failure puts everything back.
        plan.failed(reads);
        assert!(plan.due_at(start).is_some());
    }
}
