//! Asking the queue's Redis servers, and the one rule for when that worked: at least one
//! server answered.
//!
//! The servers are independent copies, not a replicated cluster. A write goes to every
//! server at once (`to_every`): every command is sent before any reply is read, so the
//! servers work at the same time and a slow server costs its timeout once, not once per
//! server. (No helper coroutines: measured here, waking one `may` coroutine from another
//! through a join or a channel sometimes took 30-60 s.) A read that one server can answer
//! asks them one after another until one does (`first_answer`).

use crate::affinity::Home;
use crate::error::{Error, Result};
use crate::transport::peer::worth_a_fresh_try;
use crate::transport::redis::{RedisConnection, RedisPool};
use std::net::SocketAddr;
use std::sync::Arc;

/// Each server's outcome of one exchange, in the pools' order.
pub(super) struct Replies<T> {
    outcomes: Vec<(SocketAddr, redis::RedisResult<T>)>,
}

impl<T> Replies<T> {
    /// The answers of the servers that answered, in order. The rule for every operation
    /// on the queue: it worked when at least one server answered; when none did, the
    /// error names each server's failure.
    pub(super) fn answered(self) -> Result<Vec<T>> {
        let mut answers = Vec::with_capacity(self.outcomes.len());
        let mut failures = Vec::new();
        for (addr, outcome) in self.outcomes {
            match outcome {
                Ok(answer) => answers.push(answer),
                Err(err) => failures.push(format!("{addr}: {err}")),
            }
        }
        match answers.is_empty() {
            true => Err(none_answered(failures)),
            false => Ok(answers),
        }
    }

    /// Each server's answer, None for one that failed (a gauge per server).
    pub(super) fn per_server(self) -> Vec<Option<T>> {
        self.outcomes
            .into_iter()
            .map(|(_, outcome)| outcome.ok())
            .collect()
    }

    /// Each answer turned by `read`; a reply that does not read as a `U` is a failure.
    pub(super) fn read_as<U>(self, read: impl Fn(T) -> Option<U>) -> Replies<U> {
        let unexpected = || redis::RedisError::from((redis::ErrorKind::Parse, "unexpected reply"));
        Replies {
            outcomes: self
                .outcomes
                .into_iter()
                .map(|(addr, outcome)| (addr, outcome.and_then(|v| read(v).ok_or_else(unexpected))))
                .collect(),
        }
    }
}

/// The one text for "no server answered".
fn none_answered(failures: Vec<String>) -> Error {
    Error::Redis(format!(
        "no Redis server of the queue answered ({})",
        match failures.is_empty() {
            true => "none configured".to_string(),
            false => failures.join("; "),
        }
    ))
}

impl Replies<Vec<redis::Value>> {
    /// Sends `packed()` (of `replies` commands) again, alone, to each server whose error
    /// `again` accepts (given the server's index), and takes that answer instead.
    /// `packed` is only built when a server needs it.
    pub(super) fn redo_where(
        mut self,
        pools: &[Arc<RedisPool>],
        again: impl Fn(usize, &redis::RedisError) -> bool,
        packed: impl Fn() -> Vec<u8>,
        replies: usize,
    ) -> Self {
        for (i, (_, outcome)) in self.outcomes.iter_mut().enumerate() {
            if matches!(outcome, Err(err) if again(i, err)) {
                let pool = &pools[i];
                *outcome = pool.with(|conn| {
                    conn.send(&packed())?;
                    conn.receive_all(replies)
                });
                pool.record(outcome);
            }
        }
        self
    }
}

/// Sends a pipeline of `replies` commands, packed together, to every server (`packed(i)`
/// for the i-th), then reads every server's replies; on connections of `home`
/// (`Home::default()` off the upload path). A pipeline is sent again on a fresh
/// connection when a pooled one failed, so its commands must be safe to repeat.
pub(super) fn to_every<'a>(
    pools: &[Arc<RedisPool>],
    packed: impl Fn(usize) -> &'a [u8],
    replies: usize,
    home: Home,
) -> Replies<Vec<redis::Value>> {
    let mut sent = Vec::with_capacity(pools.len());
    for (i, pool) in pools.iter().enumerate() {
        sent.push(pool.checkout(home).map(|(mut conn, pooled)| {
            // A failed send shows as a failed reply below (the connection is broken).
            let _ = conn.send(packed(i));
            (conn, pooled)
        }));
    }
    let outcomes = pools
        .iter()
        .zip(sent)
        .enumerate()
        .map(|(i, (pool, sent))| {
            let packed = packed(i);
            let reply = sent.and_then(|(mut conn, pooled)| {
                let reply = conn.receive_all(replies);
                pool.checkin(conn);
                match &reply {
                    Err(err) if worth_a_fresh_try(pooled, err.is_timeout()) => {
                        let (mut fresh, _) = pool.checkout(home)?;
                        let reply = fresh.send(packed).and_then(|()| fresh.receive_all(replies));
                        pool.checkin(fresh);
                        reply
                    }
                    _ => reply,
                }
            });
            pool.record(&reply);
            (pool.addr, reply)
        })
        .collect();
    Replies { outcomes }
}

/// Asks the servers in `order` one after another until one answers (`ask` is told which
/// server it asks): its answer and the server; when none answers, the error naming each
/// server's failure.
pub(super) fn first_answer<'p, T>(
    order: impl IntoIterator<Item = &'p Arc<RedisPool>>,
    ask: impl Fn(&Arc<RedisPool>, &mut RedisConnection) -> redis::RedisResult<T>,
) -> Result<(T, &'p Arc<RedisPool>)> {
    let mut failures = Vec::new();
    for pool in order {
        let answer = pool.with(|conn| ask(pool, conn));
        pool.record(&answer);
        match answer {
            Ok(answer) => return Ok((answer, pool)),
            Err(err) => failures.push(format!("{}: {err}", pool.addr)),
        }
    }
    Err(none_answered(failures))
}
