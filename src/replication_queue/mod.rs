//! The replication queue: one Redis set, copied on every Redis server of `<root>/queue`.
//!
//! The servers are independent copies, not a replicated cluster: a push goes to every
//! server and succeeds when at least one took it; a reader asks them one after another.
//! Items are JSON text whose exact bytes matter: identical items deduplicate in the set
//! and share one lock node, also with the old Node.js tools.

mod group_commit;

use crate::affinity::Home;
use crate::error::{Error, Result};
use crate::js_json;
use crate::state::queue::QueueInfo;
use crate::transport::peer::{resolve, try_order, worth_a_fresh_try};
use crate::transport::redis::RedisPool;
use redis::ConnectionLike;
use std::sync::Arc;
use std::time::Duration;

/// The queue: its key and a connection pool per Redis server. The one handle the
/// coordinator (push), the replicator (pick, still_queued) and the admin commands (length)
/// use; removing copied items is `dead_letters::copied`, with their failure records.
pub struct ReplicationQueue {
    pub key: String,
    pub pools: Vec<Arc<RedisPool>>,
    /// Concurrent pushes share one write (`group_commit`). One for all workers: a list
    /// per worker made batches half as large and cost 7 % more CPU per 1 KiB upload on
    /// two workers, more than the wakeups across workers it saved.
    pushes: group_commit::GroupCommit,
}

/// What `pick` found.
pub struct Picked<'a> {
    /// Distinct items, in random order; empty when the queue is.
    pub items: Vec<String>,
    /// The queue's length on `server` at that moment.
    pub length: u64,
    pub server: &'a Arc<RedisPool>,
}

/// `{"from":["1"],"to":"4","path":"/hi.txt"}`: keys in this order, no spaces.
///
/// Written directly, with serde_json's string escaping: the same bytes as building a
/// JSON object and printing it, without building the object (this runs for every copy
/// of every upload).
pub fn item(from: &[String], to: &str, path: &str) -> String {
    let mut item = Vec::with_capacity(32 + path.len() + 8 * from.len());
    item.extend_from_slice(b"{\"from\":[");
    for (i, node) in from.iter().enumerate() {
        if i > 0 {
            item.push(b',');
        }
        js_json::push_string(&mut item, node);
    }
    item.extend_from_slice(b"],\"to\":");
    js_json::push_string(&mut item, to);
    item.extend_from_slice(b",\"path\":");
    js_json::push_string(&mut item, path);
    item.push(b'}');
    // Only text went in.
    String::from_utf8(item).unwrap_or_default()
}

/// Sends one command to every server, then reads every reply: the servers work at the
/// same time, so a slow server costs its timeout once, not once per server. (No helper
/// coroutines: measured here, waking one `may` coroutine from another through a join or a
/// channel sometimes took 30-60 s.) One result per pool, in order.
fn on_every(
    pools: &[Arc<RedisPool>],
    packed: &[u8],
    home: Home,
) -> Vec<redis::RedisResult<redis::Value>> {
    on_every_pipelined_at(pools, packed, 1, home)
        .into_iter()
        .map(|replies| replies.and_then(|mut values| values.pop().ok_or_else(closed)))
        .collect()
}

/// Like `on_every` for a pipeline of `replies` commands packed together: their replies,
/// per pool. A pipeline is sent again on a fresh connection when a pooled one failed, so
/// its commands must be safe to repeat.
pub(crate) fn on_every_pipelined(
    pools: &[Arc<RedisPool>],
    packed: &[u8],
    replies: usize,
) -> Vec<redis::RedisResult<Vec<redis::Value>>> {
    on_every_pipelined_at(pools, packed, replies, Home::default())
}

/// `on_every_pipelined` on connections of `home`.
fn on_every_pipelined_at(
    pools: &[Arc<RedisPool>],
    packed: &[u8],
    replies: usize,
    home: Home,
) -> Vec<redis::RedisResult<Vec<redis::Value>>> {
    // Every reply is read, also after an error reply, so that none is left behind on a
    // connection that goes back to the pool; the first error is the result.
    let receive_all = |conn: &mut crate::transport::redis::RedisConnection| {
        let mut values = Vec::with_capacity(replies);
        let mut first_error = None;
        for _ in 0..replies {
            if !conn.is_open() {
                return Err(first_error.unwrap_or_else(closed));
            }
            match conn.receive() {
                Ok(value) => values.push(value),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(values), Err)
    };
    let mut sent = Vec::with_capacity(pools.len());
    for pool in pools {
        sent.push(pool.checkout(home).map(|(mut conn, pooled)| {
            // A failed send shows as a failed reply below (the connection is broken).
            let _ = conn.send(packed);
            (conn, pooled)
        }));
    }
    pools
        .iter()
        .zip(sent)
        .map(|(pool, sent)| {
            let (mut conn, pooled) = sent?;
            let mut reply = if conn.is_open() {
                receive_all(&mut conn)
            } else {
                Err(closed())
            };
            pool.checkin(conn);
            if reply
                .as_ref()
                .is_err_and(|err| worth_a_fresh_try(pooled, err.is_timeout()))
            {
                reply = pool.checkout(home).and_then(|(mut fresh, _)| {
                    let reply = fresh.send(packed).and_then(|()| receive_all(&mut fresh));
                    pool.checkin(fresh);
                    reply
                });
            }
            pool.record(reply.is_ok());
            reply
        })
        .collect()
}

impl ReplicationQueue {
    pub fn new(key: String, pools: Vec<Arc<RedisPool>>) -> ReplicationQueue {
        ReplicationQueue {
            key,
            pools,
            pushes: Default::default(),
        }
    }

    /// A handle on the queue `info` describes, with fresh pools, for a one-shot command (the
    /// daemons take theirs from the configuration snapshot). Fails on a server name that
    /// does not resolve.
    pub fn connect(info: &QueueInfo, timeout: Duration) -> Result<ReplicationQueue> {
        let pools = info
            .servers
            .iter()
            .map(|server| {
                let addr = resolve(&server.host, server.port)
                    .ok_or_else(|| Error::invalid(format!("cannot resolve {server}")))?;
                Ok(Arc::new(RedisPool::new(addr, timeout)))
            })
            .collect::<Result<_>>()?;
        Ok(ReplicationQueue::new(info.key.clone(), pools))
    }

    /// `SADD key items...` on every server; Ok(number of servers that took them). Fails
    /// when none did, naming why for each server. Pushes made at the same time go out as
    /// one `SADD` (`group_commit`), and each gets that command's outcome. `home`: the
    /// pusher's worker, whose connections write the batch if this push leads it
    /// (`Home::default()` off the upload path).
    pub fn push(&self, items: &[String], home: Home) -> Result<usize> {
        self.pushes
            .push(items.to_vec(), |batch| self.add_everywhere(batch, home))
            .map_err(Error::Redis)
    }

    /// One `SADD key items...` on every server at once.
    fn add_everywhere(&self, items: &[String], home: Home) -> group_commit::Outcome {
        let packed = redis::cmd("SADD")
            .arg(&self.key)
            .arg(items)
            .get_packed_command();
        let mut accepted = 0;
        let mut failures = Vec::new();
        for (pool, reply) in self.pools.iter().zip(on_every(&self.pools, &packed, home)) {
            match reply {
                Ok(_) => accepted += 1,
                Err(err) => failures.push(format!("{}: {err}", pool.addr)),
            }
        }
        if accepted == 0 {
            return Err(format!(
                "no Redis server took the replication items ({})",
                if failures.is_empty() {
                    "none configured".to_string()
                } else {
                    failures.join("; ")
                }
            ));
        }
        Ok(accepted)
    }

    /// Up to `count` distinct items picked at random, and the queue's length: `SCARD key`
    /// and `SRANDMEMBER key count` in one round trip, on the servers in random order until
    /// one answers (servers that failed recently are asked last). Also the server that
    /// answered; an error when none does.
    pub fn pick(&self, count: usize) -> Result<Picked<'_>> {
        let order = try_order(self.pools.iter().collect(), |pool| pool.failed_recently());
        let mut failures = Vec::new();
        for pool in order {
            let answer = pool.with(|conn| {
                redis::pipe()
                    .cmd("SCARD")
                    .arg(&self.key)
                    .cmd("SRANDMEMBER")
                    .arg(&self.key)
                    .arg(count.max(1))
                    .query::<(u64, Vec<String>)>(conn)
            });
            pool.record(answer.is_ok());
            match answer {
                Ok((length, items)) => {
                    return Ok(Picked {
                        items,
                        length,
                        server: pool,
                    })
                }
                Err(err) => failures.push(format!("{}: {err}", pool.addr)),
            }
        }
        Err(Error::Redis(format!(
            "no Redis server of the queue answered ({})",
            failures.join("; ")
        )))
    }

    /// For each item, whether `server` still holds it: one pipelined `SISMEMBER` each,
    /// in one round trip. An error counts as "still there".
    pub fn still_queued(&self, server: &RedisPool, items: &[&str]) -> Vec<bool> {
        let mut pipe = redis::pipe();
        for item in items {
            pipe.cmd("SISMEMBER").arg(&self.key).arg(*item);
        }
        server
            .with(|conn| pipe.query::<Vec<bool>>(conn))
            .ok()
            .filter(|answers| answers.len() == items.len())
            .unwrap_or_else(|| vec![true; items.len()])
    }

    /// `SCARD key` on every server (None for one that does not answer).
    pub fn lengths(&self) -> Vec<Option<u64>> {
        self.pools
            .iter()
            .map(|pool| self.length_on(pool).ok())
            .collect()
    }

    /// `SCARD key` on the first server that answers; an error naming why when none does.
    pub fn length(&self) -> Result<u64> {
        let mut failures = Vec::new();
        for pool in &self.pools {
            match self.length_on(pool) {
                Ok(length) => return Ok(length),
                Err(err) => failures.push(format!("{}: {err}", pool.addr)),
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

    /// Every item queued on any server that answers (`SMEMBERS`, merged); an error when
    /// none does. Holds the whole queue: for tools that check against it, not for daemons.
    pub fn members(&self) -> Result<Vec<String>> {
        let mut items = std::collections::BTreeSet::new();
        let mut answered = false;
        for pool in &self.pools {
            let members = pool.with(|conn| {
                redis::cmd("SMEMBERS")
                    .arg(&self.key)
                    .query::<Vec<String>>(conn)
            });
            if let Ok(members) = members {
                answered = true;
                items.extend(members);
            }
        }
        match answered {
            true => Ok(items.into_iter().collect()),
            false => Err(Error::Redis(
                "no Redis server of the queue answered SMEMBERS".into(),
            )),
        }
    }

    fn length_on(&self, pool: &RedisPool) -> redis::RedisResult<u64> {
        pool.with(|conn| redis::cmd("SCARD").arg(&self.key).query::<u64>(conn))
    }
}

/// The lock node of an item: the root, `/`, the queue key, and the lowercase hex MD5 of
/// the item's exact bytes (`/backpack/backpack-queue0f3c...`).
pub fn lock_path(root: &str, key: &str, item: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(item.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}/{key}{hex}", root.trim_end_matches('/'))
}

/// A queue item, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub from: Vec<String>,
    pub to: String,
    pub path: String,
}

impl Item {
    pub fn parse(text: &str) -> Result<Item, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))?;
        let id = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let from: Vec<String> = value["from"]
            .as_array()
            .ok_or("no \"from\" list")?
            .iter()
            .map(|v| id(v).ok_or("a \"from\" id is not a string"))
            .collect::<Result<_, _>>()?;
        let to = id(&value["to"]).ok_or("no \"to\" id")?;
        let path = value["path"].as_str().ok_or("no \"path\"")?.to_string();
        if from.is_empty() || !path.starts_with('/') {
            return Err("empty \"from\" or a path without a leading /".into());
        }
        Ok(Item { from, to, path })
    }
}

fn closed() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::item;

    /// Items are compared byte for byte (the set deduplicates them, and the old tools
    /// write them too): the direct writing must match serde_json's printing of the
    /// object, escapes included.
    #[test]
    fn items_are_written_as_serde_json_prints_them() {
        let from = ["1".to_string(), "n\"2".to_string()];
        for path in ["/hi.txt", "/a b/\"q\"\\/\u{1}\n\t/é/😀", ""] {
            for from in [&from[..1], &from[..]] {
                let expected =
                    serde_json::json!({ "from": from, "to": "4", "path": path }).to_string();
                assert_eq!(item(from, "4", path), expected);
            }
        }
        assert_eq!(
            item(&["1".into()], "4", "/hi.txt"),
            r#"{"from":["1"],"to":"4","path":"/hi.txt"}"#
        );
    }
}
