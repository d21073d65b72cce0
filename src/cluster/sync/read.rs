//! Reading the cluster's nodes from ZooKeeper: configuration nodes each with a watch that
//! re-arms when it is read again, size nodes polled many at a time in one pipelined batch.

use super::plan::{Reads, SIZE_CHUNK};
use super::SnapshotKeeper;
use crate::error::Result;
use crate::zk_state::ZkState;
use serde_json::Value;
use std::collections::HashSet;

impl SnapshotKeeper {
    /// Reads what `reads` names; false when it was a size poll that found nothing changed
    /// (no new snapshot is needed then).
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
            self.raw.servers = node;
            self.resolved.clear();
            self.parsed.nodes = None;
        } else if path == self.paths.queue() {
            self.raw.queue = node;
        } else if path == self.paths.shards_map() {
            self.raw.shards = node;
            self.parsed.shards = None;
            if self.settings.sizes.is_none() {
                return Ok(());
            }
            // Follow the size node of every shard; forget those of removed shards.
            let ids: HashSet<String> = match &self.raw.shards {
                Some(Value::Object(map)) => map.keys().cloned().collect(),
                _ => HashSet::new(),
            };
            self.raw.sizes.retain(|id, _| ids.contains(id));
            let new: Vec<String> = ids
                .into_iter()
                .filter(|id| !self.raw.sizes.contains_key(id))
                .collect();
            self.read_sizes(store, new)?;
        }
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
