//! What the cluster's nodes held when last read, and reading them: configuration nodes
//! each with a watch that re-arms when it is read again, size nodes polled many at a time
//! in one pipelined batch.

use super::plan::{Reads, SIZE_CHUNK};
use crate::error::Result;
use crate::state::Paths;
use crate::zk_state::ZkState;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// A configuration node's JSON as last read (None: the node does not exist), and how
/// many times it was read: a build re-parses it only when the count moved.
#[derive(Default)]
pub(super) struct ConfigNode {
    pub(super) doc: Option<Value>,
    pub(super) reads: u64,
}

impl ConfigNode {
    /// The node's JSON, or what to wait for when it does not exist.
    pub(super) fn required(&self, path: &str) -> Result<&Value, String> {
        self.doc
            .as_ref()
            .ok_or_else(|| format!("{path}: not initialized? (run backpack-coordinator-init)"))
    }

    fn set(&mut self, doc: Option<Value>) {
        self.doc = doc;
        self.reads += 1;
    }
}

/// The nodes' JSON as last read.
#[derive(Default)]
pub(super) struct Raw {
    pub(super) servers: ConfigNode,
    pub(super) shards: ConfigNode,
    pub(super) queue: ConfigNode,
    /// Shard id -> its size node and version (None: missing).
    pub(super) sizes: HashMap<String, Option<(Value, i32)>>,
}

/// The ZooKeeper thread's copy of the cluster's nodes.
pub(super) struct Mirror {
    paths: Paths,
    /// Whether size nodes are followed (a coordinator); the replicator and bp-nginx-gen
    /// neither read nor watch them.
    follows_sizes: bool,
    raw: Raw,
    /// A size batch found a change not in the last snapshot yet.
    sizes_unpublished: bool,
    /// Where the size poll goes on (see `next_size_batch`).
    size_cursor: usize,
}

impl Mirror {
    pub(super) fn new(paths: Paths, follows_sizes: bool) -> Mirror {
        Mirror {
            paths,
            follows_sizes,
            raw: Raw::default(),
            sizes_unpublished: false,
            size_cursor: 0,
        }
    }

    pub(super) fn raw(&self) -> &Raw {
        &self.raw
    }

    /// How many size nodes the poll covers.
    pub(super) fn size_nodes(&self) -> usize {
        self.raw.sizes.len()
    }

    /// Reads what `reads` names; true when a new snapshot is due (a size poll that found
    /// nothing changed needs none).
    pub(super) fn read(&mut self, store: &ZkState, reads: &Reads) -> Result<bool> {
        if reads.everything {
            // Size nodes of new shards are read with the shards-map; the others after.
            let known: Vec<String> = self.raw.sizes.keys().cloned().collect();
            for path in [
                self.paths.servers_map(),
                self.paths.queue(),
                self.paths.shards_map(),
            ] {
                self.read_config(store, &path)?;
            }
            let still: Vec<String> = known
                .into_iter()
                .filter(|id| self.raw.sizes.contains_key(id))
                .collect();
            self.read_sizes(store, still)?;
            self.sizes_unpublished = false;
            return Ok(true);
        }
        for path in &reads.config {
            self.read_config(store, path)?;
        }
        let mut changed = !reads.config.is_empty();
        if reads.sizes {
            // Changes found by a batch wait for the end of its round: one snapshot per
            // `--size-refresh`, not one per batch.
            let (batch, round_done) = self.next_size_batch();
            self.sizes_unpublished |= self.read_sizes(store, batch)?;
            changed |= round_done && self.sizes_unpublished;
        }
        if changed {
            self.sizes_unpublished = false;
        }
        Ok(changed)
    }

    /// The next `SIZE_CHUNK` shards of the poll, round-robin over the shards by id, and
    /// whether this batch ends a round (every shard read once).
    fn next_size_batch(&mut self) -> (Vec<String>, bool) {
        let mut ids: Vec<&String> = self.raw.sizes.keys().collect();
        if ids.is_empty() {
            return (Vec::new(), true);
        }
        ids.sort_unstable();
        let start = self.size_cursor % ids.len();
        let batch: Vec<String> = ids
            .iter()
            .cycle()
            .skip(start)
            .take(SIZE_CHUNK.min(ids.len()))
            .map(|id| id.to_string())
            .collect();
        self.size_cursor = start + batch.len();
        (batch, self.size_cursor >= ids.len())
    }

    /// Re-reads one configuration node (and re-arms its watch).
    fn read_config(&mut self, store: &ZkState, path: &str) -> Result<()> {
        let node = match store.session().get_watched(path)? {
            Some((bytes, _)) => Some(crate::state::parse_object(path, &bytes)?),
            None => None,
        };
        if path == self.paths.servers_map() {
            self.raw.servers.set(node);
        } else if path == self.paths.queue() {
            self.raw.queue.set(node);
        } else if path == self.paths.shards_map() {
            self.raw.shards.set(node);
            if self.follows_sizes {
                self.follow_sizes_of_shards(store)?;
            }
        }
        Ok(())
    }

    /// Follows the size node of every shard in the shards-map (reading those of new
    /// shards now), and forgets those of removed shards.
    fn follow_sizes_of_shards(&mut self, store: &ZkState) -> Result<()> {
        let ids: HashSet<String> = match &self.raw.shards.doc {
            Some(Value::Object(map)) => map.keys().cloned().collect(),
            _ => HashSet::new(),
        };
        self.raw.sizes.retain(|id, _| ids.contains(id));
        let new: Vec<String> = ids
            .into_iter()
            .filter(|id| !self.raw.sizes.contains_key(id))
            .collect();
        self.read_sizes(store, new)?;
        Ok(())
    }

    /// Reads the size nodes of these shards in one pipelined batch (no watches); true when
    /// one of them changed since it was last read.
    fn read_sizes(&mut self, store: &ZkState, ids: Vec<String>) -> Result<bool> {
        if ids.is_empty() {
            return Ok(false);
        }
        let paths: Vec<String> = ids.iter().map(|id| self.paths.shard_size(id)).collect();
        let nodes = store.session().get_many(&paths)?;
        let mut changed = false;
        for ((id, path), node) in ids.into_iter().zip(&paths).zip(nodes) {
            let version = node.as_ref().map(|(_, version)| *version);
            let known = self.raw.sizes.get(&id);
            if known.is_some_and(|was| was.as_ref().map(|(_, v)| *v) == version) {
                continue;
            }
            let value = match node {
                Some((bytes, version)) => {
                    Some((crate::state::parse_object(path, &bytes)?, version))
                }
                None => None,
            };
            self.raw.sizes.insert(id, value);
            changed = true;
        }
        Ok(changed)
    }
}
