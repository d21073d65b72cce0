//! `<root>/shards-map`: shard id -> `{"read_only": true, "nodes": ["1", "4"]}`.
//!
//! A shard is added read-only; enabling it removes the `read_only` key (it does not write
//! `false`), disabling sets it to `true` again. These are the old tools' exact edits.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One shard as shards-map holds it (the live view, with its size, is
/// `cluster::snapshot::Shard`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardEntry {
    pub read_only: bool,
    /// Node ids, keys of servers-map.
    pub nodes: Vec<String>,
}

pub type Shards = BTreeMap<String, ShardEntry>;

/// JavaScript truthiness, which is how the old tools tested `read_only`.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn parse_shard(value: &Value) -> Result<ShardEntry, String> {
    let nodes = match value.get("nodes") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(id) => Ok(id.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("node id {other} is not a string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(format!("nodes {other} is not a list")),
        None => return Err("no nodes".to_string()),
    };
    Ok(ShardEntry {
        read_only: truthy(value.get("read_only")),
        nodes,
    })
}

pub fn parse(path: &str, doc: &Value) -> Result<Shards> {
    let map = doc
        .as_object()
        .ok_or_else(|| Error::bad_state(path, "not a JSON object"))?;
    map.iter()
        .map(|(id, value)| {
            parse_shard(value)
                .map(|shard| (id.clone(), shard))
                .map_err(|why| Error::bad_state(path, format!("shard {id}: {why}")))
        })
        .collect()
}

fn entries(doc: &mut Value) -> Result<&mut Map<String, Value>> {
    doc.as_object_mut()
        .ok_or_else(|| Error::invalid("shards-map is not a JSON object"))
}

fn node_list(nodes: &[String]) -> Value {
    Value::Array(nodes.iter().cloned().map(Value::String).collect())
}

/// Adds a new read-only shard, or replaces the node list of an existing one in place
/// (its enabled state and any other keys stay). Returns true when the shard is new.
pub fn add_or_replace_nodes(doc: &mut Value, id: &str, nodes: &[String]) -> Result<bool> {
    let map = entries(doc)?;
    if let Some(Value::Object(shard)) = map.get_mut(id) {
        shard.insert("nodes".into(), node_list(nodes));
        return Ok(false);
    }
    let mut shard = Map::new();
    shard.insert("read_only".into(), Value::Bool(true));
    shard.insert("nodes".into(), node_list(nodes));
    map.insert(id.to_string(), Value::Object(shard));
    Ok(true)
}

/// Enables (removes `read_only`) or disables (`read_only: true`) a shard.
/// Returns false when the shard was already in that state.
pub fn set_enabled(doc: &mut Value, id: &str, enabled: bool) -> Result<bool> {
    let shard = match entries(doc)?.get_mut(id) {
        Some(Value::Object(shard)) => shard,
        _ => return Err(Error::invalid(format!("shard {id} does not exist"))),
    };
    let was_enabled = !truthy(shard.get("read_only"));
    if enabled {
        // shift_remove keeps the order of the remaining keys, as `delete` does in JS.
        shard.shift_remove("read_only");
    } else {
        shard.insert("read_only".into(), Value::Bool(true));
    }
    Ok(was_enabled != enabled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::js_json::to_compact;
    use serde_json::json;

    #[test]
    fn enable_and_disable_edit_like_the_old_tools() {
        let mut doc = json!({});
        let nodes = vec!["10".to_string(), "2".to_string()];
        assert!(add_or_replace_nodes(&mut doc, "1", &nodes).unwrap());
        assert_eq!(
            to_compact(&doc),
            r#"{"1":{"read_only":true,"nodes":["10","2"]}}"#
        );
        assert!(set_enabled(&mut doc, "1", true).unwrap());
        assert_eq!(to_compact(&doc), r#"{"1":{"nodes":["10","2"]}}"#);
        assert!(!set_enabled(&mut doc, "1", true).unwrap());
        assert!(set_enabled(&mut doc, "1", false).unwrap());
        assert_eq!(
            to_compact(&doc),
            r#"{"1":{"nodes":["10","2"],"read_only":true}}"#
        );
        assert!(set_enabled(&mut doc, "9", true).is_err());
    }

    #[test]
    fn reads_missing_and_odd_read_only() {
        let doc = json!({"1": {"nodes": ["1", 4]}, "2": {"read_only": true, "nodes": []}});
        let shards = parse("/x", &doc).unwrap();
        assert_eq!(
            shards["1"],
            ShardEntry {
                read_only: false,
                nodes: vec!["1".into(), "4".into()]
            }
        );
        assert!(shards["2"].read_only);
        assert!(parse("/x", &json!({"3": {"read_only": true}})).is_err());
    }
}
