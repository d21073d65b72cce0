//! Reading the configuration's nodes from ZooKeeper, each with a watch that re-arms when
//! it is read again. Size nodes are read many at a time in one pipelined batch.

use super::plan::Reads;
use super::SnapshotKeeper;
use crate::error::Result;
use crate::zk_state::ZkState;
use serde_json::Value;
use std::collections::HashSet;

impl SnapshotKeeper {
    /// Reads what `reads` names (everything, or the changed nodes).
    pub(super) fn read(&mut self, store: &ZkState, reads: &Reads) -> Result<()> {
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
            return self.read_sizes(store, still);
        }
        for path in &reads.config {
            self.read_config(store, path)?;
        }
        let prefix = self.paths.shard_size("");
        let ids = reads
            .sizes
            .iter()
            .filter_map(|path| path.strip_prefix(&prefix))
            .filter(|id| self.raw.sizes.contains_key(*id))
            .map(str::to_string)
            .collect();
        self.read_sizes(store, ids)
    }

    /// Re-reads one configuration node (and re-arms its watch).
    fn read_config(&mut self, store: &ZkState, path: &str) -> Result<()> {
        let node = Self::parsed(path, store.session().get_watched(path)?)?;
        if path == self.paths.servers_map() {
            self.raw.servers = node;
            self.resolved.clear();
        } else if path == self.paths.queue() {
            self.raw.queue = node;
        } else if path == self.paths.shards_map() {
            self.raw.shards = node;
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

    /// Reads the size nodes of these shards in one pipelined batch.
    fn read_sizes(&mut self, store: &ZkState, ids: Vec<String>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = ids.iter().map(|id| self.paths.shard_size(id)).collect();
        let nodes = store.session().get_many_watched(&paths)?;
        for ((id, path), node) in ids.into_iter().zip(&paths).zip(nodes) {
            let value = Self::parsed(path, node)?;
            self.raw.sizes.insert(id, value);
        }
        Ok(())
    }

    fn parsed(path: &str, node: Option<(Vec<u8>, i32)>) -> Result<Option<Value>> {
        match node {
            Some((bytes, _)) => crate::state::parse_object(path, &bytes).map(Some),
            None => Ok(None),
        }
    }
}
