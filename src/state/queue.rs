//! `<root>/queue`: `{"key": "<redis set key>", "servers": [{"host": "...", "port": "..."}]}`.

use super::endpoint::{endpoint_value, parse_endpoint, Endpoint};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// Where the replication queue lives: one Redis set, copied on every listed server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub key: String,
    pub servers: Vec<Endpoint>,
}

impl QueueInfo {
    /// Checks what an operator typed for init or set-queue.
    pub fn new(key: &str, servers: Vec<Endpoint>) -> Result<QueueInfo> {
        if key.is_empty() || key.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::usage(format!(
                "invalid queue key {key:?}: use a non-empty name without spaces"
            )));
        }
        Ok(QueueInfo {
            key: key.to_string(),
            servers,
        })
    }

    pub fn parse(path: &str, doc: &Value) -> Result<QueueInfo> {
        let key = match doc.get("key") {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            _ => return Err(Error::bad_state(path, "no queue key")),
        };
        let servers = match doc.get("servers") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| parse_endpoint(item, 6379))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| Error::bad_state(path, format!("queue server: {why}")))?,
            _ => return Err(Error::bad_state(path, "no list of queue servers")),
        };
        Ok(QueueInfo { key, servers })
    }

    /// The stored form, ports as strings, as the old init wrote it.
    pub fn to_value(&self) -> Value {
        let servers = self
            .servers
            .iter()
            .map(|s| endpoint_value(&s.host, Some(s.port)))
            .collect();
        let mut map = Map::new();
        map.insert("key".into(), Value::String(self.key.clone()));
        map.insert("servers".into(), Value::Array(servers));
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::endpoint::parse_endpoint_list;

    #[test]
    fn golden_queue_bytes() {
        let servers = parse_endpoint_list("127.0.0.1:23001,127.0.0.1:23002").unwrap();
        let info = QueueInfo::new("backpack-queue", servers).unwrap();
        let text = info.to_value().to_string();
        assert_eq!(
            text,
            r#"{"key":"backpack-queue","servers":[{"host":"127.0.0.1","port":"23001"},{"host":"127.0.0.1","port":"23002"}]}"#
        );
        let back = QueueInfo::parse("/q", &serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, info);
        assert!(QueueInfo::new("a b", vec![]).is_err());
    }
}
