//! The replication queue: one Redis set, copied on every Redis server of `<root>/queue`.
//!
//! Where things are: `item` how an item is written, read and locked; `fanout` asking the
//! servers, and the one rule for when that worked (at least one server answered);
//! `group_commit` concurrent pushes sharing one write; `dead_set` the failure records and
//! the items given up on, beside the queue; `records` when each item was queued, for its
//! lag; `pick` which items a replicator takes next (the oldest first). This file is the
//! queue's operations.

mod dead_set;
mod fanout;
mod group_commit;
mod item;
mod mailbox;
mod pick;
mod records;

pub use dead_set::{dead_key, DeadSet, FailureRecord};
pub use item::{item, lock_path, Item};
pub use pick::taken_key;
pub use records::{records_key, Lag, QueueAges};

use crate::affinity::Home;
use crate::error::{Error, Result};
use crate::state::queue::QueueInfo;
use crate::transport::peer::resolve;
use crate::transport::redis::RedisPool;
use std::sync::Arc;
use std::time::Duration;

/// The queue: its key and a connection pool per Redis server. The one handle the
/// coordinator (push), the replicator (pick, still_queued, done) and the admin commands
/// (length) use; `dead()` is its dead set.
pub struct ReplicationQueue {
    pub key: String,
    pub pools: Vec<Arc<RedisPool>>,
    /// Concurrent pushes share one write (`group_commit`). One for all workers: a list
    /// per worker made batches half as large and cost 7 % more CPU per 1 KiB upload on
    /// two workers, more than the wakeups across workers it saved.
    pushes: group_commit::GroupCommit,
    /// Per server, whether it runs the lag records' scripts.
    scripting: Vec<records::Scripting>,
}

/// What `pick` found.
pub struct Picked<'a> {
    /// Distinct items: the oldest first, in the order they were queued, then items drawn
    /// at random; empty when the queue is.
    pub items: Vec<String>,
    /// How many of `items` are the oldest.
    pub oldest: usize,
    /// The queue's length on `server` at that moment.
    pub length: u64,
    pub server: &'a Arc<RedisPool>,
}

impl ReplicationQueue {
    pub fn new(key: String, pools: Vec<Arc<RedisPool>>) -> ReplicationQueue {
        ReplicationQueue {
            key,
            scripting: pools.iter().map(|_| Default::default()).collect(),
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

    /// The items' `SADD`, with their lag records (`records::PUSH`), on every server at
    /// once.
    fn add_everywhere(&self, items: &[String], home: Home) -> group_commit::Outcome {
        let push = &records::PUSH;
        self.scripted_or_plain(
            &push.by_hash(&self.key, items).get_packed_command(),
            || push.with_body(&self.key, items).get_packed_command(),
            || {
                redis::cmd("SADD")
                    .arg(&self.key)
                    .arg(items)
                    .get_packed_command()
            },
            1,
            home,
        )
        .answered()
        .map(|took| took.len())
        .map_err(|err| err.to_string())
    }

    /// `by_hash` (a script by its hash) to every server that runs our scripts, `plain` to
    /// the others; `with_body` (the script whole) to a server that does not know the
    /// hash, and `plain` to a server that refuses scripts now (it is not asked again).
    /// `with_body` and `plain` are only built when a server needs them.
    fn scripted_or_plain(
        &self,
        by_hash: &[u8],
        with_body: impl Fn() -> Vec<u8>,
        plain: impl Fn() -> Vec<u8>,
        replies: usize,
        home: Home,
    ) -> fanout::Replies<Vec<redis::Value>> {
        let plain_once = std::cell::OnceCell::new();
        let packed = |i: usize| match self.scripting[i].works() {
            true => by_hash,
            false => plain_once.get_or_init(&plain).as_slice(),
        };
        fanout::to_every(&self.pools, packed, replies, home)
            .redo_where(
                &self.pools,
                |_, err| records::unknown_script(err),
                with_body,
                replies,
            )
            .redo_where(
                &self.pools,
                |i, err| self.scripting[i].refused_by(err),
                &plain,
                replies,
            )
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

    /// `SCARD key` on every server at once (None for one that does not answer).
    pub fn lengths(&self) -> Vec<Option<u64>> {
        self.count_on_every(&self.key).per_server()
    }

    /// `SCARD key` on the first server that answers, in the configured order; an error
    /// naming why when none does.
    pub fn length(&self) -> Result<u64> {
        fanout::first_answer(&self.pools, |_, conn| {
            redis::cmd("SCARD").arg(&self.key).query::<u64>(conn)
        })
        .map(|(length, _)| length)
    }

    /// Every item queued on any server that answers (`SMEMBERS`, merged); an error when
    /// none does. Holds the whole queue: for tools that check against it, not for daemons.
    pub fn members(&self) -> Result<Vec<String>> {
        self.set_members(&self.key)
    }

    /// After copies: removes the items from the queue with their lag and failure records
    /// and their taken marks (`pick`), on every server in one round trip each. Answers
    /// each item's lag (`records::DONE`, the largest over the servers). Fails when no
    /// server answered.
    pub fn done(&self, items: &[&str]) -> Result<Vec<Lag>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let failures = dead_set::failures_key(&self.key);
        let taken = taken_key(&self.key);
        let scripted = |script: redis::Cmd| {
            let mut pipe = redis::pipe();
            pipe.add_command(script);
            pipe.cmd("HDEL").arg(&failures).arg(items);
            pipe.cmd("ZREM").arg(&taken).arg(items);
            pipe.get_packed_pipeline()
        };
        let plain = || {
            let mut pipe = redis::pipe();
            pipe.cmd("SREM").arg(&self.key).arg(items);
            pipe.cmd("HDEL").arg(&failures).arg(items);
            pipe.cmd("ZREM").arg(&taken).arg(items);
            pipe.get_packed_pipeline()
        };
        let answers = self
            .scripted_or_plain(
                &scripted(records::DONE.by_hash(&self.key, items)),
                || scripted(records::DONE.with_body(&self.key, items)),
                plain,
                3,
                Home::default(),
            )
            .answered()?;
        // A plain `SREM` answers a count, not which items it removed: no lag from it.
        let lags: Vec<Vec<i64>> = answers
            .into_iter()
            .filter_map(|replies| first_value::<Vec<i64>>(replies))
            .collect();
        Ok(records::merge_lags(items.len(), &lags))
    }

    /// Per server, the queue's length, its oldest recorded item's age and the items
    /// without a record (`records::OLDEST`, which also drops the stale records it meets);
    /// None for a server that does not answer. A server without scripts answers its
    /// length, every item unrecorded.
    pub fn ages(&self) -> Vec<Option<QueueAges>> {
        let none: &[&str] = &[];
        let oldest = &records::OLDEST;
        self.scripted_or_plain(
            &oldest.by_hash(&self.key, none).get_packed_command(),
            || oldest.with_body(&self.key, none).get_packed_command(),
            || redis::cmd("SCARD").arg(&self.key).get_packed_command(),
            1,
            Home::default(),
        )
        .read_as(|replies| match replies.into_iter().next()? {
            redis::Value::Int(length) => Some(QueueAges {
                length: length as u64,
                oldest_seconds: None,
                unrecorded: length as u64,
            }),
            reply => redis::from_redis_value(reply)
                .ok()
                .map(QueueAges::from_reply),
        })
        .per_server()
    }

    /// On the `server`-th server, drops the stale lag records among `count` from rank
    /// `start` (`records::SWEEP`): Some((looked at, dropped)), None when the server did
    /// not answer or runs no scripts.
    pub fn sweep_records(&self, server: usize, start: u64, count: u64) -> Option<(u64, u64)> {
        let pool = self.pools.get(server)?;
        if !self.scripting[server].works() {
            return None;
        }
        pool.with(|conn| records::SWEEP.query(conn, &self.key, &[start, count]))
            .ok()
    }

    /// The dead set beside this queue.
    pub fn dead(&self) -> DeadSet<'_> {
        DeadSet::of(self)
    }

    /// A pipeline of `replies` commands to every server at once, off the upload path.
    fn to_every(&self, packed: &[u8], replies: usize) -> Result<Vec<Vec<redis::Value>>> {
        fanout::to_every(&self.pools, |_| packed, replies, Home::default()).answered()
    }

    /// The members of set `key` on every server that answers, merged and sorted.
    fn set_members(&self, key: &str) -> Result<Vec<String>> {
        let packed = redis::cmd("SMEMBERS").arg(key).get_packed_command();
        let answers = fanout::to_every(&self.pools, |_| &packed, 1, Home::default())
            .read_as(first_value::<Vec<String>>)
            .answered()?;
        let merged: std::collections::BTreeSet<String> = answers.into_iter().flatten().collect();
        Ok(merged.into_iter().collect())
    }

    /// `SCARD` of a key on every server at once.
    fn count_on_every(&self, key: &str) -> fanout::Replies<u64> {
        let packed = redis::cmd("SCARD").arg(key).get_packed_command();
        fanout::to_every(&self.pools, |_| &packed, 1, Home::default()).read_as(first_value)
    }
}

/// The first reply of a pipeline's, as a `T`.
fn first_value<T: redis::FromRedisValue>(replies: Vec<redis::Value>) -> Option<T> {
    redis::from_redis_value(replies.into_iter().next()?).ok()
}
