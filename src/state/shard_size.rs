//! `<root>/shard-size-<id>`: `{"capacity": <bytes>, "current": <bytes>}`.
//!
//! `current` grows as coordinators store files. The old coordinator wrote
//! `"current": null` after a chunked upload and then treated it as 0; so do we.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSize {
    pub capacity: u64,
    pub current: u64,
}

impl ShardSize {
    /// Bytes that can still be placed on the shard.
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.current)
    }

    pub fn is_full(&self) -> bool {
        self.current >= self.capacity
    }
}

/// A shard's state in one word, the same in print-stats and the console: `rw` (it takes
/// uploads), `r` (disabled: read-only), `full` (enabled, but no room left: a capacity of 0
/// is full too), or `no size` (its size node is missing). print-stats' `rw`/`r` column is
/// the old tools' (the same as dump-shards' `enabled`); it adds `full` or `no size`.
pub fn state_word(read_only: bool, size: Option<&ShardSize>) -> &'static str {
    match size {
        _ if read_only => "r",
        None => "no size",
        Some(size) if size.is_full() => "full",
        Some(_) => "rw",
    }
}

/// A byte count as JavaScript may have stored it: an integer, a float, or null (0).
fn bytes(value: Option<&Value>) -> Result<u64, String> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => Ok(v),
            (None, Some(f)) if f >= 0.0 => Ok(f as u64),
            _ => Err(format!("{n} is not a byte count")),
        },
        Some(other) => Err(format!("{other} is not a byte count")),
    }
}

pub fn parse(path: &str, doc: &Value) -> Result<ShardSize> {
    let capacity = bytes(doc.get("capacity")).map_err(|why| Error::bad_state(path, why))?;
    let current = bytes(doc.get("current")).map_err(|why| Error::bad_state(path, why))?;
    Ok(ShardSize { capacity, current })
}

/// The node add-shard creates: `{"capacity":N,"current":0}`.
pub fn new_node(capacity: u64) -> Value {
    let mut map = Map::new();
    map.insert("capacity".into(), Value::from(capacity));
    map.insert("current".into(), Value::from(0u64));
    Value::Object(map)
}

/// Adds `delta` bytes to `current` in place (a `null` counts as 0; other keys stay).
pub fn add_current(path: &str, doc: &mut Value, delta: u64) -> Result<()> {
    let current = bytes(doc.get("current")).map_err(|why| Error::bad_state(path, why))?;
    let map = doc
        .as_object_mut()
        .ok_or_else(|| Error::bad_state(path, "not a JSON object"))?;
    map.insert("current".into(), Value::from(current.saturating_add(delta)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_current_counts_as_zero() {
        let size = parse("/x", &json!({"capacity": 100, "current": null})).unwrap();
        assert_eq!(
            size,
            ShardSize {
                capacity: 100,
                current: 0
            }
        );
        assert_eq!(size.free(), 100);
        assert!(parse("/x", &json!({"capacity": "big"})).is_err());
        assert_eq!(new_node(5).to_string(), r#"{"capacity":5,"current":0}"#);
        let mut doc = json!({"capacity": 100, "current": null});
        add_current("/x", &mut doc, 7).unwrap();
        assert_eq!(doc.to_string(), r#"{"capacity":100,"current":7}"#);
    }
}
