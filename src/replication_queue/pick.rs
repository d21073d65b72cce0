//! Which items a replicator's worker takes next: the oldest first.
//!
//! The old replicators pick at random (`SRANDMEMBER`): every queued item has the same
//! chance each round, however long it has waited. Under a standing backlog of N items
//! drained at r items a second, an item then waits N/r on average but with a long,
//! exponential tail: measured at a quarter of the machine's capacity, with about a
//! second of backlog, the slowest 1 % of items waited over 5 s and the slowest of all
//! 17 s. The window a file lives on one node is that wait.
//!
//! So new replicators take the items whose lag records (`records`) are the oldest first
//! (`PICK`), and an item's wait is about the backlog's length in time. Many workers, in
//! this process and others, would all want the same few oldest items, and meet each
//! other's locks in ZooKeeper (a failed transaction and a read each time); so `PICK` marks
//! what it hands out in `<key>-taken` (a sorted set: item -> the server's clock, in ms,
//! until which it is taken) and skips items taken by anyone else. The mark is a hint
//! between new replicators, never a lock: the ZooKeeper lock is what keeps two copies
//! of an item apart, old replicators never read the mark, and a mark ends by itself after
//! `TAKEN_FOR` (a replicator that dies leaves none for long). Copied items lose theirs
//! with their queue entry (`ReplicationQueue::done`).
//!
//! Items without a record (queued by old coordinators, or on a server without scripts)
//! are still reached: every pick also brings items drawn at random, after the oldest.

use super::records::{records_key, with_clock, Script, Scripting};
use super::{fanout, Picked, ReplicationQueue};
use crate::error::Result;
use crate::transport::peer::try_order;
use crate::transport::redis::{RedisConnection, RedisPool};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// How long an item handed out stays taken, unless copied sooner: longer than a copy
/// takes (a copy still going when its mark ends may meet a second replicator's lock
/// attempt, which fails harmlessly). An item left for later (a recent failure) is marked
/// again until its retry pause ends (`hold`).
pub const TAKEN_FOR: Duration = Duration::from_secs(10);

/// One pick in this many asks the servers in random order (see `pick`).
const RANDOM_ORDER_EVERY: u64 = 8;

/// Picks made by this process, for `RANDOM_ORDER_EVERY`.
static PICKS: AtomicU64 = AtomicU64::new(0);

/// Records looked at, at most, in one pick: bounds its time on the server when many of the
/// oldest items are taken, or left the queue through old replicators.
const LOOK_AT_MOST: u32 = 500;

static PICK: LazyLock<Script> = LazyLock::new(|| Script::new(PICK_BODY));
static HOLD: LazyLock<Script> = LazyLock::new(|| Script::new(HOLD_BODY));

/// `<queue key>-taken`.
pub fn taken_key(key: &str) -> String {
    format!("{key}-taken")
}

/// KEYS: queue, records, taken; ARGV: count, workers, taken for (ms), look at most.
/// Answers the queue's length; oldest first, up to `count` (and at most the queue over
/// `workers`: a worker's share) queued items with a record and no mark, each now marked
/// as taken; and up to `count` items drawn at random (marked or not: a mark left by a
/// pick whose answer was lost must not hide its item for long). Ends the marks past
/// their time, and drops the records it meets whose items have left the queue.
const PICK_BODY: &str = with_clock!(
    "local count, workers = tonumber(ARGV[1]), tonumber(ARGV[2])
local mark, look = now + tonumber(ARGV[3]), tonumber(ARGV[4])
local length = redis.call('SCARD', KEYS[1])
local want = math.min(count, math.ceil(length / workers))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local picked, gone, start = {}, {}, 0
while #picked < want and start < look do
  local page = redis.call('ZRANGE', KEYS[2], start, start + 99)
  if #page == 0 then break end
  for _, item in ipairs(page) do
    if #picked < want and not redis.call('ZSCORE', KEYS[3], item) then
      if redis.call('SISMEMBER', KEYS[1], item) == 1 then
        picked[#picked + 1] = item
        redis.call('ZADD', KEYS[3], mark, item)
      else
        gone[#gone + 1] = item
      end
    end
  end
  start = start + 100
end
if #gone > 0 then redis.call('ZREM', KEYS[2], unpack(gone)) end
return {length, picked, redis.call('SRANDMEMBER', KEYS[1], count)}"
);

/// KEYS: taken; ARGV: item, ms, item, ms... Marks each item taken for its ms from now.
const HOLD_BODY: &str = with_clock!(
    "for i = 1, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[i + 1]), ARGV[i])
end
return 0"
);

impl<'a> Picked<'a> {
    /// The oldest items, then those of the random ones not among them.
    fn of(
        mut items: Vec<String>,
        random: Vec<String>,
        length: u64,
        server: &'a Arc<RedisPool>,
    ) -> Picked<'a> {
        let oldest = items.len();
        for item in random {
            if !items.contains(&item) {
                items.push(item);
            }
        }
        Picked {
            items,
            oldest,
            length,
            server,
        }
    }
}

impl ReplicationQueue {
    /// Items for one of `workers` workers to copy, and the queue's length: the oldest
    /// untaken ones (a worker's share of the queue, `count` at most), then up to `count`
    /// more drawn at random (`SRANDMEMBER`), in one round trip. Asks the servers in turn
    /// until one answers with a queue that is not empty (servers that failed recently are
    /// asked last); the server that answered comes with them. An error when none answers.
    ///
    /// Every new replicator asks the servers in the queue's order: the marks of what is
    /// taken live on the server that handed the items out, so a worker that asked another
    /// server would be handed the same oldest items again. Measured with two servers
    /// asked in random order, under a backlog, a second worker often locked items whose
    /// copy had just ended and found them gone: a round of ZooKeeper work for no copy.
    /// But the servers are independent copies: an item queued while the first was down is
    /// only on the others. So an empty queue sends the pick on to the next server, and one
    /// pick in `RANDOM_ORDER_EVERY` asks in random order, as the old replicators always
    /// do, so that such items are reached under a standing backlog too.
    pub fn pick(&self, count: usize, workers: usize) -> Result<Picked<'_>> {
        let mut order: Vec<&Arc<RedisPool>> = self.pools.iter().collect();
        match PICKS.fetch_add(1, Ordering::Relaxed) % RANDOM_ORDER_EVERY == 0 {
            true => order = try_order(order, |pool| pool.failed_recently()),
            // A stable sort: the queue's order, with the servers that failed recently last.
            false => order.sort_by_key(|pool| pool.failed_recently()),
        }
        let mut empty = None;
        while !order.is_empty() {
            let answer = fanout::first_answer(order.iter().copied(), |pool, conn| {
                let scripts = self.runs_scripts(pool);
                self.pick_on(scripts, conn, count.max(1), workers.max(1))
            });
            let ((length, items, random), server) = match (answer, empty.take()) {
                (Ok(answer), _) => answer,
                // The servers after an empty one do not answer: it was empty.
                (Err(_), Some(earlier)) => return Ok(earlier),
                (Err(err), None) => return Err(err),
            };
            let picked = Picked::of(items, random, length, server);
            if length > 0 {
                return Ok(picked);
            }
            let asked = order.iter().position(|pool| Arc::ptr_eq(pool, server));
            order.drain(..=asked.unwrap_or(order.len() - 1));
            // Not on to a server that failed recently: an idle worker would wait out its
            // timeout at every pick (the picks in random order still reach it).
            order.retain(|pool| !pool.failed_recently());
            empty = Some(picked);
        }
        // Every server that answered has an empty queue.
        empty.ok_or_else(|| crate::error::Error::invalid("the queue has no servers"))
    }

    /// Marks `items` taken on `server`, each for its time: items the worker left for
    /// later (their retry pause not over), which the oldest-first picks then pass over
    /// until they may be tried. A hint: a server that runs no scripts, or does not
    /// answer, is left as it is.
    pub fn hold(&self, server: &RedisPool, items: &[(String, Duration)]) {
        if items.is_empty() || !self.runs_scripts(server).is_some_and(|s| s.works()) {
            return;
        }
        let keys = [taken_key(&self.key)];
        let mut args: Vec<String> = Vec::with_capacity(items.len() * 2);
        for (item, wait) in items {
            args.push(item.clone());
            args.push(wait.as_millis().to_string());
        }
        let held = server.with(|conn| HOLD.query_on_keys::<i64>(conn, &keys, &args));
        server.record(&held);
    }

    /// Whether `server`, one of the queue's, runs our scripts (as far as we know).
    fn runs_scripts(&self, server: &RedisPool) -> Option<&Scripting> {
        let mut servers = self.pools.iter().zip(&self.scripting);
        servers
            .find(|(pool, _)| std::ptr::eq(pool.as_ref(), server))
            .map(|(_, scripting)| scripting)
    }

    /// `pick` on a server (`scripting`: whether it runs our scripts): (length, oldest,
    /// random). A server that runs no scripts answers only random ones.
    fn pick_on(
        &self,
        scripting: Option<&Scripting>,
        conn: &mut RedisConnection,
        count: usize,
        workers: usize,
    ) -> redis::RedisResult<(u64, Vec<String>, Vec<String>)> {
        if let Some(scripting) = scripting.filter(|s| s.works()) {
            let keys = [
                self.key.clone(),
                records_key(&self.key),
                taken_key(&self.key),
            ];
            let taken_ms = TAKEN_FOR.as_millis() as u64;
            let args = [
                count as u64,
                workers as u64,
                taken_ms,
                u64::from(LOOK_AT_MOST),
            ];
            // One command: the script draws the random items itself, so a `NOSCRIPT`
            // answer costs one more exchange and no second command to send again.
            let answer = PICK.query_on_keys::<redis::Value>(conn, &keys, &args);
            match answer.and_then(read_pick) {
                Ok(picked) => return Ok(picked),
                Err(err) if scripting.refused_by(&err) => {}
                Err(err) => return Err(err),
            }
        }
        let (length, random) = redis::pipe()
            .cmd("SCARD")
            .arg(&self.key)
            .cmd("SRANDMEMBER")
            .arg(&self.key)
            .arg(count)
            .query::<(u64, Vec<String>)>(conn)?;
        Ok((length, Vec::new(), random))
    }
}

/// `PICK`'s answer: the queue's length, the oldest items and the random ones. Read by
/// hand: read as tuples, nested arrays are taken for rows of a table.
fn read_pick(answer: redis::Value) -> redis::RedisResult<(u64, Vec<String>, Vec<String>)> {
    let unexpected = |answer: &redis::Value| {
        let what = format!("PICK answered {answer:?}");
        let kind = redis::ErrorKind::UnexpectedReturnType;
        redis::RedisError::from((kind, "unexpected answer", what))
    };
    let redis::Value::Array(parts) = &answer else {
        return Err(unexpected(&answer));
    };
    match parts.as_slice() {
        [length, oldest, random] => Ok((
            redis::from_redis_value_ref(length)?,
            redis::from_redis_value_ref(oldest)?,
            redis::from_redis_value_ref(random)?,
        )),
        _ => Err(unexpected(&answer)),
    }
}
