//! The replication queue: one Redis set, copied on every Redis server of `<root>/queue`.
//!
//! The servers are independent copies, not a replicated cluster: a push goes to every
//! server and succeeds when at least one took it; a reader asks them one after another.
//! Items are JSON text whose exact bytes matter: identical items deduplicate in the set
//! and share one lock node, also with the old Node.js tools.

use crate::error::{Error, Result};
use crate::state::endpoint::Endpoint;
use crate::state::queue::QueueInfo;
use crate::transport::redis::RedisPool;
use std::sync::Arc;
use std::time::Duration;

/// `{"from":["1"],"to":"4","path":"/hi.txt"}`: keys in this order, no spaces.
pub fn item(from: &[String], to: &str, path: &str) -> String {
    serde_json::json!({ "from": from, "to": to, "path": path }).to_string()
}

/// `SADD key items...` on every pool at once; Ok(number of servers that took them).
/// Fails when none did, naming why for each server.
pub fn push(pools: &[Arc<RedisPool>], key: &str, items: &[String]) -> Result<usize> {
    let waits: Vec<_> = pools
        .iter()
        .map(|pool| {
            let (pool, key, items) = (Arc::clone(pool), key.to_string(), items.to_vec());
            may::go!(move || {
                pool.with(|conn| redis::cmd("SADD").arg(&key).arg(&items).query::<i64>(conn))
                    .map_err(|err| format!("{}: {err}", pool.addr))
            })
        })
        .collect();
    let mut accepted = 0;
    let mut failures = Vec::new();
    for wait in waits {
        match wait.join() {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(why)) => failures.push(why),
            Err(_) => failures.push("push coroutine failed".to_string()),
        }
    }
    if accepted == 0 {
        return Err(Error::Redis(format!(
            "no Redis server took the replication items ({})",
            if failures.is_empty() {
                "none configured".to_string()
            } else {
                failures.join("; ")
            }
        )));
    }
    Ok(accepted)
}

fn connect(server: &Endpoint, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://{server}/"))?;
    let connection = client.get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    Ok(connection)
}

/// `SCARD key` on the first server that answers.
pub fn length(queue: &QueueInfo, timeout: Duration) -> Result<u64> {
    let mut failures = Vec::new();
    for server in &queue.servers {
        let answer = connect(server, timeout)
            .and_then(|mut conn| redis::cmd("SCARD").arg(&queue.key).query::<u64>(&mut conn));
        match answer {
            Ok(length) => return Ok(length),
            Err(err) => failures.push(format!("{server}: {err}")),
        }
    }
    Err(Error::Redis(format!(
        "no Redis server of the queue answered ({})",
        if failures.is_empty() {
            "none configured".to_string()
        } else {
            failures.join("; ")
        }
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn item_bytes_match_the_old_tools() {
        let item = super::item(&["1".to_string()], "4", "/hi.txt?x=1");
        assert_eq!(item, r#"{"from":["1"],"to":"4","path":"/hi.txt?x=1"}"#);
        assert_eq!(
            super::item(&["1".into(), "2".into()], "3", "/a\"b"),
            r#"{"from":["1","2"],"to":"3","path":"/a\"b"}"#
        );
    }
}
