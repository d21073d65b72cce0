//! The replication queue: one Redis set, copied on every Redis server of `<root>/queue`.
//!
//! The servers are independent copies, not a replicated cluster, so a reader asks them one
//! after another and takes the first answer.

use crate::error::{Error, Result};
use crate::state::endpoint::Endpoint;
use crate::state::queue::QueueInfo;
use std::time::Duration;

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
        if failures.is_empty() { "none configured".to_string() } else { failures.join("; ") }
    )))
}
