//! `<root>/node-index-map`: node id -> `{"host": "...", "port": "..."}` of the Redis server
//! that holds the node's index (a real Backpack node keeps one string key per stored file
//! there, value `<file id>:<offset>:<length>`). The old tools never read it; a cluster
//! without it simply has no index addresses.

use super::endpoint::{endpoint_value, parse_endpoint, Endpoint};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The node's name below the root. Replicators take lock nodes named `<queue key><md5>`,
/// so the name must not start with the queue key (`set-node-index` checks).
pub const NAME: &str = "node-index-map";

/// Index addresses by node id.
pub type NodeIndexes = BTreeMap<String, Endpoint>;

/// Reads the map; a malformed entry is an error naming the node.
pub fn parse(path: &str, doc: &Value) -> Result<NodeIndexes> {
    let map = doc
        .as_object()
        .ok_or_else(|| Error::bad_state(path, "not a JSON object"))?;
    map.iter()
        .map(|(id, entry)| {
            parse_endpoint(entry, 6379)
                .map(|endpoint| (id.clone(), endpoint))
                .map_err(|why| Error::bad_state(path, format!("node {id}: {why}")))
        })
        .collect()
}

/// Sets node `id`'s index address in the map (created empty when missing); true when it
/// changed.
pub fn set(doc: &mut Value, id: &str, host: &str, port: u16) -> Result<bool> {
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let map = doc
        .as_object_mut()
        .ok_or_else(|| Error::invalid("the node index map is not a JSON object"))?;
    let value = endpoint_value(host, Some(port));
    let changed = map.get(id) != Some(&value);
    map.insert(id.to_string(), value);
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_read_back_as_written() {
        let mut doc = json!({});
        assert!(set(&mut doc, "4", "127.0.0.1", 6380).unwrap());
        assert!(!set(&mut doc, "4", "127.0.0.1", 6380).unwrap());
        assert_eq!(
            doc.to_string(),
            r#"{"4":{"host":"127.0.0.1","port":"6380"}}"#
        );
        let map = parse("/x", &doc).unwrap();
        assert_eq!((map["4"].host.as_str(), map["4"].port), ("127.0.0.1", 6380));
        assert!(parse("/x", &json!({"4": {"host": ""}})).is_err());
    }
}
