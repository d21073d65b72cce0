//! dump-shards: every shard with its state and its nodes' addresses, as JSON.

use crate::command::args::cluster_command;
use crate::command::Command;
use crate::error::Result;
use crate::js_json;
use serde_json::{Map, Value};

cluster_command! {
    /// Print every shard as JSON: shard id -> {"enabled": bool, "nodes": {id: {"host", "port"}}}.
    /// A node missing from servers-map is shown as null; a node whose index address is set
    /// (set-node-index) has it as "index".
    pub struct DumpShards {

    }
}

impl Command for DumpShards {
    fn run(self) -> Result<()> {
        let store = self.open_cluster()?;
        let shards = store.shards()?;
        // The stored server entries, as they are (string ports, null ports, extra keys).
        let (servers_doc, _) = store.read_required(&store.paths().servers_map())?;
        // Index addresses (set-node-index), shown beside a node's address when set.
        let indexes = match store.read(&store.paths().node_index_map())? {
            Some((doc, _)) => doc,
            None => Value::Null,
        };
        let mut dump = Map::new();
        for (id, shard) in &shards {
            let nodes: Map<String, Value> = shard
                .nodes
                .iter()
                .map(|node| {
                    let mut entry = servers_doc.get(node).cloned().unwrap_or(Value::Null);
                    if let (Some(fields), Some(index)) = (entry.as_object_mut(), indexes.get(node))
                    {
                        fields.insert("index".into(), index.clone());
                    }
                    (node.clone(), entry)
                })
                .collect();
            let mut entry = Map::new();
            entry.insert("enabled".into(), Value::Bool(!shard.read_only));
            entry.insert("nodes".into(), Value::Object(nodes));
            dump.insert(id.clone(), Value::Object(entry));
        }
        println!("{}", js_json::to_pretty(&Value::Object(dump)));
        Ok(())
    }
}
