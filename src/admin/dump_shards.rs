//! dump-shards: every shard with its state and its nodes' addresses, as JSON.

use super::open;
use crate::command::Command;
use crate::error::Result;
use crate::js_json;
use argh::FromArgs;
use serde_json::{Map, Value};

#[derive(FromArgs)]
/// Print every shard as JSON: shard id -> {"enabled": bool, "nodes": {id: {"host", "port"}}}.
/// A node missing from servers-map is shown as null; a node whose index address is set
/// (set-node-index) has it as "index".
pub struct DumpShards {
    /// the ZooKeeper servers, host:port[,host:port...]
    #[argh(positional)]
    zk_servers: String,
    /// the cluster's root path in ZooKeeper, e.g. /backpack
    #[argh(positional)]
    root: String,
    /// seconds to wait for ZooKeeper (default 5)
    #[argh(option, default = "5")]
    zk_timeout: u64,
}

impl Command for DumpShards {
    fn run(self) -> Result<()> {
        let store = open(&self.zk_servers, &self.root, self.zk_timeout)?;
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
