//! ZooKeeper maps of a made-up cluster of any size (every node on one port, two nodes a
//! shard), for the benchmarks that need thousands of shards without their nodes.

use backpack::zk::NodeKind;
use backpack::zk_state::ZkState;
use serde_json::{json, Map, Value};

pub fn servers_map(nodes: usize, port: u16) -> Value {
    let mut map = Map::new();
    for id in 1..=nodes {
        map.insert(
            id.to_string(),
            json!({"host": "127.0.0.1", "port": port.to_string()}),
        );
    }
    Value::Object(map)
}

pub fn shards_map(shards: usize) -> Value {
    let mut map = Map::new();
    for id in 1..=shards {
        let nodes = [(2 * id - 1).to_string(), (2 * id).to_string()];
        map.insert(id.to_string(), json!({ "nodes": nodes }));
    }
    Value::Object(map)
}

/// Creates the size nodes, a few hundred per transaction.
pub fn create_size_nodes(
    store: &ZkState,
    shards: usize,
    capacity: u64,
    current: u64,
) -> Result<(), String> {
    let doc = json!({"capacity": capacity, "current": current}).to_string();
    let paths: Vec<String> = (1..=shards)
        .map(|id| store.paths().shard_size(&id.to_string()))
        .collect();
    for chunk in paths.chunks(200) {
        store
            .session()
            .create_all(chunk, doc.as_bytes(), NodeKind::Persistent)
            .map_err(|err| err.to_string())?
            .map_err(|at| format!("{} exists already", chunk[at]))?;
    }
    Ok(())
}
