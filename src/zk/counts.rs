//! How much work this process gives ZooKeeper: requests by kind and watch events, counted
//! for the whole process (every session adds to the same counts). `/metrics` shows them,
//! and `bp-bench scale` reads them to say what a coordinator costs ZooKeeper.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counts so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZkCounts {
    /// Node reads (`get`, existence checks), one per node even when pipelined.
    pub reads: u64,
    /// Node writes (create, set, delete), one per node even inside a transaction, failed
    /// compare-and-sets included: ZooKeeper did the work.
    pub writes: u64,
    /// Watches that fired on a node (session events aside).
    pub watch_events: u64,
}

static READS: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);
static WATCH_EVENTS: AtomicU64 = AtomicU64::new(0);

pub fn counts() -> ZkCounts {
    ZkCounts {
        reads: READS.load(Ordering::Relaxed),
        writes: WRITES.load(Ordering::Relaxed),
        watch_events: WATCH_EVENTS.load(Ordering::Relaxed),
    }
}

impl ZkCounts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &ZkCounts) -> ZkCounts {
        ZkCounts {
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
            watch_events: self.watch_events.saturating_sub(earlier.watch_events),
        }
    }
}

pub(super) fn read(nodes: usize) {
    READS.fetch_add(nodes as u64, Ordering::Relaxed);
}

pub(super) fn written(nodes: usize) {
    WRITES.fetch_add(nodes as u64, Ordering::Relaxed);
}

pub(super) fn watch_fired() {
    WATCH_EVENTS.fetch_add(1, Ordering::Relaxed);
}
