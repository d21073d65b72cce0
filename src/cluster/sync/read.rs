//! Reading the configuration's nodes from ZooKeeper, each with a watch that re-arms when
//! it is read again.

use super::SnapshotKeeper;
use crate::error::Result;
use crate::zk_state::ZkState;
use serde_json::Value;

impl SnapshotKeeper {
    pub(super) fn reload_everything(&mut self, store: &ZkState) -> Result<()> {
        for path in [
            self.paths.servers_map(),
            self.paths.shards_map(),
            self.paths.queue(),
        ] {
            self.reload(store, &path)?;
        }
        let ids: Vec<String> = self.raw.sizes.keys().cloned().collect();
        for id in ids {
            self.reload(store, &self.paths.shard_size(&id))?;
        }
        Ok(())
    }

    /// Re-reads one node (and re-arms its watch).
    pub(super) fn reload(&mut self, store: &ZkState, path: &str) -> Result<()> {
        let read = |path: &str| -> Result<Option<Value>> {
            match store.session().get_watched(path)? {
                Some((bytes, _)) => crate::state::parse_object(path, &bytes).map(Some),
                None => Ok(None),
            }
        };
        if path == self.paths.servers_map() {
            self.raw.servers = read(path)?;
            self.resolved.clear();
        } else if path == self.paths.shards_map() {
            self.raw.shards = read(path)?;
            // Watch the size node of every shard; forget those of removed shards.
            let ids: Vec<String> = match &self.raw.shards {
                Some(Value::Object(map)) => map.keys().cloned().collect(),
                _ => Vec::new(),
            };
            self.raw.sizes.retain(|id, _| ids.contains(id));
            for id in ids {
                if !self.raw.sizes.contains_key(&id) {
                    let value = read(&self.paths.shard_size(&id))?;
                    self.raw.sizes.insert(id, value);
                }
            }
        } else if path == self.paths.queue() {
            self.raw.queue = read(path)?;
        } else if let Some(id) = path.strip_prefix(&self.paths.shard_size("")) {
            if self.raw.sizes.contains_key(id) {
                let value = read(path)?;
                self.raw.sizes.insert(id.to_string(), value);
            }
        }
        Ok(())
    }
}
