//! The replication queue as a test sees it: the queue set, the dead set and the failure
//! records of a cluster's Redis servers, read and written directly (the way the old
//! tools' items arrive, and the way an operator would look).

use super::cluster::{LocalCluster, QUEUE_KEY};

impl LocalCluster {
    /// The items queued on Redis server `server` (0-based), sorted.
    pub fn queue_items(&self, server: usize) -> Vec<String> {
        self.redis[server].members(QUEUE_KEY)
    }

    /// The items in the dead set of Redis server `server`, sorted.
    pub fn dead_items(&self, server: usize) -> Vec<String> {
        self.redis[server].members(&format!("{QUEUE_KEY}-dead"))
    }

    /// True when the queue set is empty on every Redis server.
    pub fn queue_is_empty(&self) -> bool {
        (0..self.redis.len()).all(|server| self.queue_items(server).is_empty())
    }

    /// Adds `items` to the queue set on every Redis server, as pushed by hand.
    pub fn push_items(&self, items: &[String]) {
        for server in &self.redis {
            server.add(QUEUE_KEY, items);
        }
    }

    /// The failure record the replicators keep for `item` on Redis server `server`.
    pub fn failure_record(&self, server: usize, item: &str) -> Option<serde_json::Value> {
        let text: Option<String> = self.redis[server]
            .connection()
            .and_then(|mut conn| {
                redis::cmd("HGET")
                    .arg(format!("{QUEUE_KEY}-failures"))
                    .arg(item)
                    .query(&mut conn)
            })
            .unwrap_or_else(|err| panic!("HGET the failure record of {item}: {err}"));
        text.map(|t| {
            serde_json::from_str(&t).unwrap_or_else(|_| panic!("a failure record is JSON: {t}"))
        })
    }

    /// The lag records on Redis server `server`: item -> when it was queued, in ms of
    /// that server's clock, sorted by item.
    pub fn lag_records(&self, server: usize) -> Vec<(String, u64)> {
        let mut records: Vec<(String, u64)> = self.redis[server]
            .connection()
            .and_then(|mut conn| {
                redis::cmd("ZRANGE")
                    .arg(format!("{QUEUE_KEY}-queued"))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(&mut conn)
            })
            .unwrap_or_else(|err| panic!("ZRANGE the lag records: {err}"));
        records.sort();
        records
    }

    /// Redis server `server`'s clock, in ms (`TIME`).
    pub fn redis_clock_ms(&self, server: usize) -> u64 {
        let (seconds, micros): (u64, u64) = self.redis[server]
            .connection()
            .and_then(|mut conn| redis::cmd("TIME").query(&mut conn))
            .unwrap_or_else(|err| panic!("TIME: {err}"));
        seconds * 1000 + micros / 1000
    }

    /// Runs `command` on Redis server `server` as a test's own client, as an operator
    /// (or an old tool) would; panics when it fails.
    pub fn redis_command(&self, server: usize, command: &redis::Cmd) -> redis::Value {
        self.redis[server]
            .connection()
            .and_then(|mut conn| command.query(&mut conn))
            .unwrap_or_else(|err| panic!("a Redis command failed: {err}"))
    }
}
