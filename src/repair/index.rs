//! A Backpack node's index, read from its own Redis server: every stored file is a string
//! key whose value is `<file id>:<offset>:<length>`, beside the node's bookkeeping keys
//! `files` (a hash) and `files_counter`.

use crate::error::{Error, Result};
use crate::state::endpoint::Endpoint;
use std::time::Duration;

/// What an index holds for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A file of this many bytes.
    File(u64),
    Absent,
    /// A value that is not a file record (left alone, counted).
    NotRecord,
}

impl Entry {
    fn parse(value: Option<&[u8]>) -> Entry {
        let Some(value) = value else {
            return Entry::Absent;
        };
        let text = std::str::from_utf8(value).unwrap_or("");
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [id, offset, length] if id.parse::<u64>().is_ok() && offset.parse::<u64>().is_ok() => {
                length.parse().map_or(Entry::NotRecord, Entry::File)
            }
            _ => Entry::NotRecord,
        }
    }

    pub fn length(self) -> Option<u64> {
        match self {
            Entry::File(length) => Some(length),
            _ => None,
        }
    }
}

/// The node's own keys, never files.
pub fn is_bookkeeping(key: &[u8]) -> bool {
    key == b"files" || key == b"files_counter"
}

/// One node's index connection.
pub struct NodeIndex {
    pub node: String,
    address: String,
    connection: redis::Connection,
}

impl NodeIndex {
    /// Connects; an unreachable index is a usage error naming the node and the server.
    pub fn connect(node: &str, endpoint: &Endpoint, timeout: Duration) -> Result<NodeIndex> {
        let address = endpoint.to_string();
        let unreachable = |why: String| {
            Error::Usage(format!(
                "cannot read node {node}'s index at {address}: {why}"
            ))
        };
        let client = redis::Client::open(format!("redis://{address}/"))
            .map_err(|e| unreachable(e.to_string()))?;
        let connection = client
            .get_connection_with_timeout(timeout)
            .map_err(|e| unreachable(e.to_string()))?;
        connection
            .set_read_timeout(Some(timeout))
            .and_then(|()| connection.set_write_timeout(Some(timeout)))
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(NodeIndex {
            node: node.to_string(),
            address,
            connection,
        })
    }

    fn failed(&self, err: redis::RedisError) -> Error {
        Error::Usage(format!(
            "reading node {}'s index at {} failed: {err}",
            self.node, self.address
        ))
    }

    /// One step of a full scan: the next cursor (0 when done) and some keys.
    pub fn scan(&mut self, cursor: u64, count: usize) -> Result<(u64, Vec<Vec<u8>>)> {
        redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query(&mut self.connection)
            .map_err(|e| self.failed(e))
    }

    /// What the index holds for each key, in one round trip.
    pub fn entries(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Entry>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys)
            .query(&mut self.connection)
            .map_err(|e| self.failed(e))?;
        Ok(values.iter().map(|v| Entry::parse(v.as_deref())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_the_rest_does_not() {
        assert_eq!(Entry::parse(Some(b"1:4096:123")), Entry::File(123));
        assert_eq!(Entry::parse(None), Entry::Absent);
        assert_eq!(Entry::parse(Some(b"1:4096")), Entry::NotRecord);
        assert_eq!(Entry::parse(Some(b"x:1:2")), Entry::NotRecord);
        assert!(is_bookkeeping(b"files") && !is_bookkeeping(b"files.jpg"));
    }
}
