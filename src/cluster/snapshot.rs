//! The configuration an upload works with: an immutable snapshot of the cluster.
//!
//! Snapshots are built on the ZooKeeper thread (`cluster_sync`) from the nodes' JSON,
//! with host names already resolved and Redis connection pools attached, and published by
//! swapping an `Arc`. An upload takes the current `Arc` once and never calls ZooKeeper or
//! DNS.

use crate::replication_queue::ReplicationQueue;
use crate::state::endpoint::Endpoint;
use crate::state::shard_size::ShardSize;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A Backpack node (the snapshot keys them by id): its address as configured, and the
/// address to connect to (None when the host name does not resolve).
#[derive(Debug, Clone)]
pub struct Node {
    pub endpoint: Endpoint,
    pub addr: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct Shard {
    pub id: String,
    pub nodes: Vec<String>,
    pub read_only: bool,
    /// None when the shard's size node is missing or unreadable.
    pub size: Option<ShardSize>,
}

impl Shard {
    /// Takes new files: enabled, with a size node, and not full.
    pub fn is_writable(&self) -> bool {
        !self.read_only && self.size.is_some_and(|size| !size.is_full())
    }

    /// The placement weight: the free share of the capacity, 0 to 1.
    pub fn free_ratio(&self) -> f64 {
        match self.size {
            Some(size) if size.capacity > 0 => size.free() as f64 / size.capacity as f64,
            _ => 0.0,
        }
    }
}

pub struct Snapshot {
    /// Shared by the snapshots built while the servers-map stays the same.
    pub nodes: Arc<HashMap<String, Node>>,
    /// Sorted by id.
    pub shards: Vec<Shard>,
    /// Where replication items go.
    pub queue: Option<ReplicationQueue>,
}

/// The cluster's sizes, added up over its shards (what `/stats`, statsd and print-stats
/// report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Capacity of every shard with a size node, read-only ones included.
    pub capacity: u64,
    pub used: u64,
    /// Free bytes on writable shards only.
    pub available: u64,
    pub writable_shards: u64,
}

impl Totals {
    /// Counts one shard's size; `writable`: it takes uploads.
    pub fn add(&mut self, size: ShardSize, writable: bool) {
        self.capacity += size.capacity;
        self.used += size.current;
        if writable {
            self.writable_shards += 1;
            self.available += size.free();
        }
    }
}

impl Snapshot {
    pub fn writable_shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter().filter(|shard| shard.is_writable())
    }

    /// The shard with this id (shards are sorted by id).
    pub fn shard(&self, id: &str) -> Option<&Shard> {
        self.shards
            .binary_search_by(|shard| crate::js_json::compare_ids(&shard.id, id))
            .ok()
            .map(|at| &self.shards[at])
    }

    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for shard in &self.shards {
            if let Some(size) = shard.size {
                totals.add(size, shard.is_writable());
            }
        }
        totals
    }
}

/// The current snapshot, shared by every upload, and a way for readers that act on changes
/// (the front's config writer, a daemon waiting for its first configuration) to sleep until
/// one is published instead of polling.
pub struct SnapshotCell {
    current: RwLock<Option<Arc<Snapshot>>>,
    /// How many snapshots were published so far.
    published: Mutex<u64>,
    changed: Condvar,
}

impl Default for SnapshotCell {
    fn default() -> SnapshotCell {
        SnapshotCell {
            current: RwLock::new(None),
            published: Mutex::new(0),
            changed: Condvar::new(),
        }
    }
}

impl SnapshotCell {
    /// The snapshot in force; the lock is held only to clone the `Arc`.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().clone()
    }

    /// How many snapshots were published so far (each one a rebuild).
    pub fn published(&self) -> u64 {
        *self.published.lock()
    }

    pub fn publish(&self, snapshot: Snapshot) {
        *self.current.write() = Some(Arc::new(snapshot));
        *self.published.lock() += 1;
        self.changed.notify_all();
    }

    /// Blocks the calling OS thread (never call it in a coroutine) until a snapshot newer
    /// than the `seen`-th is published; that snapshot and its number. `seen` 0 waits for
    /// the first one.
    pub fn wait_newer(&self, seen: u64) -> (Arc<Snapshot>, u64) {
        let mut published = self.published.lock();
        loop {
            if *published > seen {
                if let Some(snapshot) = self.current() {
                    return (snapshot, *published);
                }
            }
            self.changed.wait(&mut published);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn empty() -> Snapshot {
        Snapshot {
            nodes: Arc::default(),
            shards: Vec::new(),
            queue: None,
        }
    }

    #[test]
    fn a_waiting_reader_wakes_on_publish() {
        let cell = Arc::new(SnapshotCell::default());
        let (saw_first, first_seen) = std::sync::mpsc::channel();
        let waiter = {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || {
                let (_, first) = cell.wait_newer(0);
                let _ = saw_first.send(first);
                cell.wait_newer(first).1
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        cell.publish(empty());
        assert_eq!(first_seen.recv_timeout(Duration::from_secs(5)), Ok(1));
        let started = Instant::now();
        cell.publish(empty());
        assert_eq!(waiter.join().unwrap(), 2);
        assert!(started.elapsed() < Duration::from_secs(1));
        // Nothing newer than what was seen: it would wait; something newer: at once.
        assert_eq!(cell.wait_newer(1).1, 2);
    }
}
