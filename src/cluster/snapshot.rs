//! The configuration an upload works with: an immutable snapshot of the cluster.
//!
//! Snapshots are built on the ZooKeeper thread (`cluster_sync`) from the nodes' JSON,
//! with host names already resolved and Redis connection pools attached, and published by
//! swapping an `Arc`. An upload takes the current `Arc` once and never calls ZooKeeper or
//! DNS.

use crate::replication_queue::ReplicationQueue;
use crate::state::endpoint::Endpoint;
use crate::state::shard_size::ShardSize;
use parking_lot::RwLock;
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
    pub nodes: HashMap<String, Node>,
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

/// The current snapshot, shared by every upload.
pub struct SnapshotCell {
    current: RwLock<Option<Arc<Snapshot>>>,
}

impl Default for SnapshotCell {
    fn default() -> SnapshotCell {
        SnapshotCell {
            current: RwLock::new(None),
        }
    }
}

impl SnapshotCell {
    /// The snapshot in force; the lock is held only to clone the `Arc`.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().clone()
    }

    pub fn publish(&self, snapshot: Snapshot) {
        *self.current.write() = Some(Arc::new(snapshot));
    }
}
