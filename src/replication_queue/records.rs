//! When each item was queued: the lag records, beside the queue.
//!
//! `<key>-queued` is a sorted set on each Redis server: item -> the server's own clock
//! (`TIME`, in ms) when the item entered that server's queue. It is written by the same
//! script, in the same round trip, as the `SADD` that queues the item, and read by the one
//! that removes it after its last copy, so an item's lag is taken on one clock: no skew
//! between hosts counts. The old tools never read this key; the queue set itself is
//! written exactly as before.
//!
//! Items queued by old coordinators have no record: their age is unknown and never
//! guessed. Items removed by old replicators leave their record behind; every new daemon
//! sweeps such records (`SWEEP`, paced by `cluster::record_sweeper`), and the oldest-age
//! reading drops the ones it meets at the oldest end, so the record set stays bounded by
//! the queue plus what old replicators removed since the last pass.
//!
//! The scripts need Redis 3.2 or newer (a write after `TIME` in a script). A server that
//! refuses them (older, `EVAL` renamed away or denied by an ACL) is written with the plain
//! commands from then on; its items are unrecorded (`Scripting`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

/// The scripts, each hashed once.
pub(super) static PUSH: LazyLock<Script> = LazyLock::new(|| Script::new(PUSH_BODY));
pub(super) static DONE: LazyLock<Script> = LazyLock::new(|| Script::new(DONE_BODY));
pub(super) static OLDEST: LazyLock<Script> = LazyLock::new(|| Script::new(OLDEST_BODY));
pub(super) static SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(SWEEP_BODY));

/// `<queue key>-queued`.
pub fn records_key(key: &str) -> String {
    format!("{key}-queued")
}

/// The first lines of every script that reads the clock: a write after `TIME` needs
/// effects replication, which Redis 3.2-4 turn on here and 5+ always use.
macro_rules! with_clock {
    ($body:literal) => {
        concat!(
            "if redis.replicate_commands then redis.replicate_commands() end\n",
            "local t = redis.call('TIME')\n",
            "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n",
            $body
        )
    };
}
pub(super) use with_clock;

/// KEYS: queue, records; ARGV: items. Queues each item; an item new to the queue gets a
/// record of now (an item already queued keeps its own, or stays unrecorded). Answers how
/// many were new, as `SADD` does.
const PUSH_BODY: &str = with_clock!(
    "local added = 0
for _, item in ipairs(ARGV) do
  if redis.call('SADD', KEYS[1], item) == 1 then
    redis.call('ZADD', KEYS[2], now, item)
    added = added + 1
  end
end
return added"
);

/// KEYS: queue, records; ARGV: items. Removes each item and its record. Answers per
/// item its lag in ms, `NOT_QUEUED` when it had already left, `UNRECORDED` when it had no
/// record.
const DONE_BODY: &str = with_clock!(
    "local lags = {}
for i, item in ipairs(ARGV) do
  local lag = -1
  if redis.call('SREM', KEYS[1], item) == 1 then
    local at = redis.call('ZSCORE', KEYS[2], item)
    if at then lag = math.max(0, now - tonumber(at)) else lag = -2 end
  end
  redis.call('ZREM', KEYS[2], item)
  lags[i] = lag
end
return lags"
);

/// What `DONE` answers for an item that another process removed first.
#[cfg(test)]
pub(super) const NOT_QUEUED: i64 = -1;
/// What `DONE` answers for an item queued without a record.
pub(super) const UNRECORDED: i64 = -2;

/// KEYS: queue, records. Answers the queue's length, the records' count, and the age in ms
/// of the oldest record whose item is still queued (-1: none found), dropping the records
/// before it whose items have left. It looks at 1000 records at most, which bounds its
/// time when old replicators left many at the oldest end (the next reading goes on).
const OLDEST_BODY: &str = with_clock!(
    "local oldest, looked = -1, 0
while oldest < 0 and looked < 1000 do
  local head = redis.call('ZRANGE', KEYS[2], 0, 99, 'WITHSCORES')
  if #head == 0 then break end
  local gone = {}
  for i = 1, #head, 2 do
    looked = looked + 1
    if redis.call('SISMEMBER', KEYS[1], head[i]) == 1 then
      oldest = math.max(0, now - tonumber(head[i + 1]))
      break
    end
    gone[#gone + 1] = head[i]
  end
  if #gone > 0 then redis.call('ZREM', KEYS[2], unpack(gone)) end
end
return {redis.call('SCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), oldest}"
);

/// KEYS: queue, records; ARGV: start, count. Drops the records among `count` from rank
/// `start` whose items have left the queue. Answers how many it looked at and dropped.
const SWEEP_BODY: &str =
    "local batch = redis.call('ZRANGE', KEYS[2], ARGV[1], ARGV[1] + ARGV[2] - 1)
local gone = {}
for _, item in ipairs(batch) do
  if redis.call('SISMEMBER', KEYS[1], item) == 0 then gone[#gone + 1] = item end
end
if #gone > 0 then redis.call('ZREM', KEYS[2], unpack(gone)) end
return {#batch, #gone}";

/// How the queue looks on one server, with its records.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueAges {
    pub length: u64,
    /// Age of the oldest item that has a record; None when no queued item has one.
    pub oldest_seconds: Option<f64>,
    /// Items without a record (queued by old tools, or on a server without scripts):
    /// the queue's length less the records, after the oldest end was swept.
    pub unrecorded: u64,
}

impl QueueAges {
    /// Reads `OLDEST`'s answer.
    pub(super) fn from_reply(reply: (u64, u64, i64)) -> QueueAges {
        let (length, records, oldest_ms) = reply;
        QueueAges {
            length,
            oldest_seconds: (oldest_ms >= 0).then(|| oldest_ms as f64 / 1000.0),
            unrecorded: length.saturating_sub(records),
        }
    }
}

/// Whether one server takes our scripts; learnt from its first refusal.
pub(super) struct Scripting(AtomicBool);

impl Default for Scripting {
    fn default() -> Scripting {
        Scripting(AtomicBool::new(true))
    }
}

impl Scripting {
    pub(super) fn works(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// True, and remembered, when `err` says the server cannot run the scripts (as opposed
    /// to a failure of the server or the connection): `EVAL` unknown or not permitted to
    /// our user (ACL), or a write after `TIME` refused.
    pub(super) fn refused_by(&self, err: &redis::RedisError) -> bool {
        let text = err.to_string().to_ascii_lowercase();
        let refused = err.kind() != redis::ErrorKind::Io
            && !err.is_timeout()
            && ["unknown command", "non deterministic", "noperm"]
                .iter()
                .any(|refusal| text.contains(refusal));
        if refused {
            self.0.store(false, Ordering::Relaxed);
        }
        refused
    }
}

/// A script with its SHA-1. A server that has run it once runs it again by its hash
/// (`EVALSHA`), without being sent, parsing and hashing the whole body on every call;
/// one that answers `NOSCRIPT` (it never ran it, restarted, or was flushed) is sent the
/// body once (`EVAL`), which also loads it.
pub(super) struct Script {
    body: &'static str,
    sha: String,
}

impl Script {
    pub(super) fn new(body: &'static str) -> Script {
        let sha = redis::Script::new(body).get_hash().to_string();
        Script { body, sha }
    }

    /// `EVALSHA sha 2 key records_key args...`.
    pub(super) fn by_hash(&self, key: &str, args: &[impl redis::ToRedisArgs]) -> redis::Cmd {
        invocation("EVALSHA", &self.sha, &queue_keys(key), args)
    }

    /// `EVAL body 2 key records_key args...`.
    pub(super) fn with_body(&self, key: &str, args: &[impl redis::ToRedisArgs]) -> redis::Cmd {
        invocation("EVAL", self.body, &queue_keys(key), args)
    }

    /// Runs the script on one connection: by its hash, and whole when the server does not
    /// know it. (Writes to every server go through `scripted_or_plain`, which does the
    /// same per server.)
    pub(super) fn query<T: redis::FromRedisValue>(
        &self,
        conn: &mut dyn redis::ConnectionLike,
        key: &str,
        args: &[impl redis::ToRedisArgs],
    ) -> redis::RedisResult<T> {
        self.query_on_keys(conn, &queue_keys(key), args)
    }

    /// `query`, with `keys` of the script's own.
    pub(super) fn query_on_keys<T: redis::FromRedisValue>(
        &self,
        conn: &mut dyn redis::ConnectionLike,
        keys: &[String],
        args: &[impl redis::ToRedisArgs],
    ) -> redis::RedisResult<T> {
        invocation("EVALSHA", &self.sha, keys, args)
            .query(conn)
            .or_else(|err| match unknown_script(&err) {
                true => invocation("EVAL", self.body, keys, args).query(conn),
                false => Err(err),
            })
    }
}

/// The keys most scripts take: the queue and its records.
fn queue_keys(key: &str) -> [String; 2] {
    [key.to_string(), records_key(key)]
}

fn invocation(
    command: &str,
    script: &str,
    keys: &[String],
    args: &[impl redis::ToRedisArgs],
) -> redis::Cmd {
    let mut cmd = redis::cmd(command);
    cmd.arg(script).arg(keys.len()).arg(keys);
    for arg in args {
        cmd.arg(arg);
    }
    cmd
}

/// Whether `err` is a server's "run by the body, not the hash": `NOSCRIPT`.
pub(super) fn unknown_script(err: &redis::RedisError) -> bool {
    err.code() == Some("NOSCRIPT")
}

/// Per item, the largest lag any server answered (its copies on each server left at
/// about the same time; the largest is the window the file had one copy). None for an
/// item no server removed or recorded.
pub fn merge_lags(items: usize, answers: &[Vec<i64>]) -> Vec<Lag> {
    (0..items)
        .map(|i| {
            let per_server = answers.iter().filter_map(|lags| lags.get(i).copied());
            per_server.fold(Lag::NotMine, |lag, answer| match answer {
                ms if ms >= 0 => match lag {
                    Lag::Ms(old) if old >= ms as u64 => lag,
                    _ => Lag::Ms(ms as u64),
                },
                UNRECORDED if lag == Lag::NotMine => Lag::Unrecorded,
                // `NOT_QUEUED`, or `UNRECORDED` beside another server's lag.
                _ => lag,
            })
        })
        .collect()
}

/// An item's lag as its removal found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lag {
    /// From its record to its removal.
    Ms(u64),
    /// Removed, but queued without a record.
    Unrecorded,
    /// Another process removed it first.
    NotMine,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_recorded_lag_wins_and_unrecorded_items_stay_unknown() {
        let answers = vec![
            vec![120, UNRECORDED, NOT_QUEUED, NOT_QUEUED],
            vec![90, 40, NOT_QUEUED, UNRECORDED],
        ];
        assert_eq!(
            merge_lags(4, &answers),
            vec![Lag::Ms(120), Lag::Ms(40), Lag::NotMine, Lag::Unrecorded]
        );
    }

    #[test]
    fn ages_read_from_the_script() {
        let ages = QueueAges::from_reply((10, 7, 2500));
        assert_eq!(ages.oldest_seconds, Some(2.5));
        assert_eq!(ages.unrecorded, 3);
        assert_eq!(QueueAges::from_reply((0, 2, -1)).oldest_seconds, None);
    }
}
