//! remove-shard and remove-server: the way out of a shard or a server added by mistake.
//!
//! Both only delete what add-shard and add-server made (an entry of shards-map or
//! servers-map, and the shard's size node); the old tools see an entry disappear, as if
//! it had never been added. Files stay on the nodes: a removed shard's files can no longer
//! be read through the front (`/<shard>:<path>` names the shard), so a shard that is
//! writable or holds bytes is only removed with `--force`.

use crate::command::args::cluster_command;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::size::format_size;
use serde_json::Value;

cluster_command! {
    /// Remove a shard: its entry in shards-map, then its size node. Refused for a shard
    /// that is writable or holds bytes, unless --force (its files stay on its nodes, but
    /// the front no longer serves them).
    pub struct RemoveShard {
        /// the shard's id
        #[argh(positional)]
        id: String,
        /// remove it even if it is writable or holds bytes
        #[argh(switch)]
        force: bool,
    }
}

cluster_command! {
    /// Remove a server from servers-map (and its index address, if set). Refused while a
    /// shard names it: change that shard's nodes (add-shard) or remove the shard first.
    pub struct RemoveServer {
        /// the server's id
        #[argh(positional)]
        id: String,
    }
}

/// Removes `id` from the JSON object `doc`; false when it was not there.
fn remove_key(path: &str, doc: &mut Value, id: &str) -> Result<bool> {
    let map = doc
        .as_object_mut()
        .ok_or_else(|| Error::bad_state(path, "not a JSON object"))?;
    Ok(map.remove(id).is_some())
}

impl Command for RemoveShard {
    fn run(self) -> Result<()> {
        let store = self.open_cluster()?;
        let shards = store.shards()?;
        let shard = shards
            .get(&self.id)
            .ok_or_else(|| Error::invalid(format!("shard {} does not exist", self.id)))?;
        let size = store.shard_size(&self.id)?;
        let holds = size.map_or(0, |size| size.current);
        if !self.force && !shard.read_only {
            return Err(Error::invalid(format!(
                "shard {} is writable: disable it first (backpack-coordinator-disable-shard), or use --force",
                self.id
            )));
        }
        if !self.force && holds > 0 {
            return Err(Error::invalid(format!(
                "shard {} holds {}: its files would no longer be served through the front; use --force to remove it anyway",
                self.id,
                format_size(holds)
            )));
        }
        let path = store.paths().shards_map();
        // Checked again inside the compare-and-set: enabled in the meantime, it stays.
        let force = self.force;
        let removed = store.update(&path, |doc| {
            let read_only = doc
                .get(&self.id)
                .and_then(|shard| shard.get("read_only"))
                .is_some_and(|flag| !matches!(flag, Value::Null | Value::Bool(false)));
            if !force && !read_only {
                return Err(Error::invalid(format!(
                    "shard {} was enabled meanwhile; nothing removed",
                    self.id
                )));
            }
            remove_key(&path, doc, &self.id)
        })?;
        if !removed {
            return Err(Error::invalid(format!("shard {} does not exist", self.id)));
        }
        let size_path = store.paths().shard_size(&self.id);
        store.session().delete(&size_path)?;
        println!(
            "shard {} removed (nodes {}; it held {})",
            self.id,
            shard.nodes.join(", "),
            format_size(holds)
        );
        Ok(())
    }
}

impl Command for RemoveServer {
    fn run(self) -> Result<()> {
        let store = self.open_cluster()?;
        let naming: Vec<String> = store
            .shards()?
            .into_iter()
            .filter(|(_, shard)| shard.nodes.contains(&self.id))
            .map(|(id, _)| id)
            .collect();
        if !naming.is_empty() {
            return Err(Error::invalid(format!(
                "server {} is a node of shard {}: change their nodes or remove them first",
                self.id,
                naming.join(", ")
            )));
        }
        let path = store.paths().servers_map();
        if !store.update(&path, |doc| remove_key(&path, doc, &self.id))? {
            return Err(Error::invalid(format!("server {} does not exist", self.id)));
        }
        let index_path = store.paths().node_index_map();
        if let Some((doc, _)) = store.read(&index_path)? {
            if doc.get(&self.id).is_some() {
                store.update(&index_path, |doc| remove_key(&index_path, doc, &self.id))?;
            }
        }
        println!("server {} removed", self.id);
        Ok(())
    }
}
