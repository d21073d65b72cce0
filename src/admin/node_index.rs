//! set-node-index: where a node's index (its own Redis server) is, for check-shard.

use crate::command::args::cluster_command;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::state::endpoint::parse_endpoint_list;
use crate::state::node_index;

cluster_command! {
    /// Record the Redis server that holds a Backpack node's index (one key per stored file),
    /// which check-shard reads. Kept in <root>/node-index-map, which the old tools never read.
    pub struct SetNodeIndex {
        /// the node's id, as in servers-map
        #[argh(positional)]
        id: String,
        /// the node's Redis server, host:port
        #[argh(positional)]
        redis: String,
    }
}

impl Command for SetNodeIndex {
    fn run(self) -> Result<()> {
        let endpoint = match parse_endpoint_list(&self.redis) {
            Ok(list) if list.len() == 1 => list.into_iter().next(),
            _ => None,
        }
        .ok_or_else(|| {
            Error::usage(format!(
                "invalid Redis server {:?}: expected one host:port",
                self.redis
            ))
        })?;
        let store = self.open_cluster()?;
        if !store.servers()?.contains_key(&self.id) {
            return Err(Error::invalid(format!(
                "no node {} in servers-map (add it with backpack-coordinator-add-server)",
                self.id
            )));
        }
        // Replicators take `<root>/<queue key><md5>` as lock nodes: this node must not
        // look like one.
        let key = store.queue()?.key;
        if node_index::NAME.starts_with(&key) {
            return Err(Error::invalid(format!(
                "the queue key {key:?} is a prefix of {:?}: the replicators would take the index map for a lock",
                node_index::NAME
            )));
        }
        let path = store.paths().node_index_map();
        store.create(&path, &serde_json::json!({}))?;
        let changed = store.update(&path, |doc| {
            node_index::set(doc, &self.id, &endpoint.host, endpoint.port)
        })?;
        println!(
            "node {} index {}: {endpoint}",
            self.id,
            if changed { "set" } else { "unchanged" }
        );
        Ok(())
    }
}
