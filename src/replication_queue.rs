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
use redis::ConnectionLike;
use std::sync::Arc;
use std::time::Duration;

/// `{"from":["1"],"to":"4","path":"/hi.txt"}`: keys in this order, no spaces.
pub fn item(from: &[String], to: &str, path: &str) -> String {
    serde_json::json!({ "from": from, "to": to, "path": path }).to_string()
}

/// `SADD key items...` on every server; Ok(number of servers that took them). Fails when
/// none did, naming why for each server.
///
/// The servers work at the same time: the command is sent to all of them first, and the
/// replies are read after, so a slow server costs its timeout once, not once per server.
/// (No helper coroutines: measured here, waking one `may` coroutine from another through
/// a join or a channel sometimes took 30-60 s.)
pub fn push(pools: &[Arc<RedisPool>], key: &str, items: &[String]) -> Result<usize> {
    let packed = redis::cmd("SADD").arg(key).arg(items).get_packed_command();
    let mut failures = Vec::new();
    let mut waiting = Vec::new();
    for pool in pools {
        match pool.checkout() {
            Ok((mut conn, pooled)) => match conn.send(&packed) {
                Ok(()) => waiting.push((pool, conn, pooled)),
                Err(_) if pooled => waiting.push((pool, conn, pooled)), // retried below
                Err(err) => failures.push(format!("{}: {err}", pool.addr)),
            },
            Err(err) => failures.push(format!("{}: {err}", pool.addr)),
        }
    }
    let mut accepted = 0;
    for (pool, mut conn, pooled) in waiting {
        let mut reply = if conn.is_open() {
            conn.receive()
        } else {
            Err(closed())
        };
        pool.checkin(conn);
        // A pooled connection may have died while idle (Redis restarted): one more try
        // on a fresh connection. Not after a timeout: a slow server would cost it twice.
        if pooled && reply.as_ref().is_err_and(|err| !err.is_timeout()) {
            reply = pool.checkout().and_then(|(mut fresh, _)| {
                let reply = fresh.send(&packed).and_then(|()| fresh.receive());
                pool.checkin(fresh);
                reply
            });
        }
        match reply {
            Ok(_) => accepted += 1,
            Err(err) => failures.push(format!("{}: {err}", pool.addr)),
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

fn closed() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
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
