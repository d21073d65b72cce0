//! One replication worker, a thread: take a few items (the oldest queued first, then some
//! at random: `replication_queue::pick`), lock them, have them copied, remove the items,
//! release the locks.
//!
//! A round works on a batch, so that its fixed costs are shared: one Redis round trip
//! picks the items (with the queue's length), one ZooKeeper transaction locks them, one
//! round trip checks they are still queued, one `SREM` per Redis server removes the ones
//! copied, and one transaction deletes the locks. The copies go to the process's copy
//! lanes (`copies`), several at once, and the worker waits for the last. A process runs
//! two workers or more, so that one picks and locks while another's items are copied.
//! The batch shrinks with the queue (its length divided among the workers), so that
//! workers rarely pick the same items when few are queued; items another worker of this
//! process already holds are left alone without asking ZooKeeper.

use super::claims::Claims;
use super::copies::{Copier, PlannedItem};
use super::copy::{plan, Plan};
use super::fence::Fence;
use super::give_up::{due_in, record_failures, Bounds, Failed, RetryPace};
use super::locks;
use super::metrics::{Metrics, Reason};
use super::pacing::{short_round, MOST_IDLE};
use crate::cluster::sync::Shared;
use crate::log_line;
use crate::replication_queue::{self, ReplicationQueue};
use crate::shutdown::Shutdown;
use crate::transport::redis::RedisPool;
use crate::zk_state::ZkState;
use rand::seq::SliceRandom;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Worker {
    pub shared: Arc<Shared>,
    /// The process's copies, shared by its workers.
    pub copier: Arc<Copier>,
    /// Work under locks goes on only while the session is confirmed (see `fence`).
    pub fence: Arc<Fence>,
    pub root: String,
    /// `hostname:pid`: the data of our lock nodes.
    pub token: String,
    pub metrics: Arc<Metrics>,
    /// When an item that keeps failing moves to the dead set.
    pub bounds: Bounds,
    /// How long a failed item waits before it is tried again.
    pub pace: RetryPace,
    pub claims: Arc<Claims>,
    /// Locks of ours whose request went unanswered, to delete (see `locks`).
    pub leftovers: Arc<locks::Leftovers>,
    /// Items per round at most.
    pub batch: usize,
    /// Workers in this process (the queue's length is shared among them).
    pub workers: usize,
    /// The shortest round when the batch is not full.
    pub round_time: Duration,
    pub max_error_backoff: Duration,
}

/// What one round did.
enum Round {
    /// Copied at least one file; how many items the round had.
    Copied(usize),
    /// The queue is empty on the server asked.
    Empty,
    /// Only items someone else holds, or that wait out their pause after a failure.
    Locked,
    /// Only items other workers of this process are copying now.
    Busy,
    /// Nothing copied and something failed: wait before the next round.
    Failed,
    /// The session is not confirmed (`fence`): no work under locks until it is.
    Fenced,
}

/// Deletes a round's locks when dropped.
struct Release<'a> {
    store: &'a ZkState,
    paths: Vec<String>,
    leftovers: &'a locks::Leftovers,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        locks::release(self.store, &self.paths, self.leftovers);
    }
}

/// One item of a round: its text, its lock node, and how to copy it (or why it cannot be).
struct Job {
    text: String,
    lock: String,
    plan: Result<Plan, (Reason, String)>,
}

impl Worker {
    /// Runs rounds until a stop is asked (a round in progress is finished first); with
    /// `once`, returns when the queue is empty too. Pauses between rounds end at once on
    /// a stop.
    pub fn run(&self, shutdown: &Shutdown, once: bool) {
        let mut idle = Duration::from_millis(50);
        let mut error = Duration::from_millis(100);
        let pause = |length: Duration| {
            shutdown.wait_timeout(length);
        };
        while !shutdown.is_requested() {
            let started = Instant::now();
            match self.round() {
                Round::Copied(items) => {
                    idle = Duration::from_millis(50);
                    error = Duration::from_millis(100);
                    // A short batch means the queue is short: wait out the rest of the
                    // round's time, so that the next round finds more to share its
                    // ZooKeeper transactions. Without this, workers that keep pace run
                    // rounds of one item, two transactions per copy.
                    if items < self.batch {
                        let round = short_round(self.round_time, items, self.batch);
                        if let Some(rest) = round.checked_sub(started.elapsed()) {
                            pause(rest);
                        }
                    }
                }
                // Our other workers have every item picked: new ones may come any
                // moment, and the queue is short.
                Round::Busy => pause(self.round_time),
                // Only items others hold: they may hold them for a while.
                Round::Locked => {
                    error = Duration::from_millis(100);
                    pause(idle);
                    idle = (idle * 2).min(MOST_IDLE);
                }
                Round::Empty => {
                    if once {
                        return;
                    }
                    pause(idle);
                    idle = (idle * 2).min(MOST_IDLE);
                }
                Round::Failed => {
                    pause(error);
                    error = (error * 2).min(self.max_error_backoff);
                }
                // The lease keeper confirms the session a tenth of its timeout apart.
                Round::Fenced => pause(Duration::from_millis(50)),
            }
        }
    }

    fn round(&self) -> Round {
        let (Some(snapshot), Some(store)) = (
            self.shared.snapshot.current(),
            self.shared.session.current(),
        ) else {
            return Round::Failed;
        };
        let Some(queue) = &snapshot.queue else {
            return Round::Failed;
        };
        let session = store.session().session_id();
        if !self.fence.holds(session) {
            return Round::Fenced;
        }
        self.leftovers.sweep(
            &store,
            |path| self.claims.claim_lock(path),
            |path| self.claims.release_lock(path),
        );
        let picked = match queue.pick(self.batch, self.workers) {
            Ok(picked) if picked.items.is_empty() && picked.length == 0 => return Round::Empty,
            // Queued items, every one taken: by a worker copying it, or held until its
            // retry pause ends.
            Ok(picked) if picked.items.is_empty() => return Round::Locked,
            Ok(picked) => picked,
            Err(err) => {
                log_line!("{err}");
                return Round::Failed;
            }
        };
        // Our share of the queue, so that the workers do not all pick the same few items.
        let share = (picked.length as usize)
            .div_ceil(self.workers.max(1))
            .clamp(1, self.batch);
        // The oldest first, as picked; then the random ones, shuffled: SRANDMEMBER
        // returns a whole small set in the set's own order, and the same first items
        // (held by someone else, say) would come first every time.
        let mut items = picked.items;
        let oldest = picked.oldest.min(items.len());
        items[oldest..].shuffle(&mut rand::rng());
        // Items whose retry pause is not over are set aside before our share is taken:
        // a dead node's items, the oldest in the queue, would otherwise fill every share
        // and leave the random ones behind them unused.
        let items = self.due_items(queue, picked.server, items);
        if items.is_empty() {
            return Round::Locked;
        }
        // Our share, of the items no other worker of ours holds: taking the first few
        // and dropping those held left workers idle while items waited.
        let jobs = items.into_iter().map(|text| Job {
            lock: replication_queue::lock_path(&self.root, &queue.key, &text),
            plan: plan(&snapshot, &text),
            text,
        });
        let jobs = self.claims.claim(jobs, |job| job.lock.as_str(), share);
        if jobs.is_empty() {
            return Round::Busy;
        }
        let outcome = self.locked_round(&store, session, queue, picked.server, &jobs);
        self.claims
            .release(jobs.iter().map(|job| job.lock.as_str()));
        outcome
    }

    /// The `items` that may be tried now, in order. The others (a failure too recent, by
    /// their shared record) are left for a later round, and marked taken on `server` until
    /// their pause is over, so that the oldest-first picks pass over them meanwhile.
    fn due_items(
        &self,
        queue: &ReplicationQueue,
        server: &RedisPool,
        items: Vec<String>,
    ) -> Vec<String> {
        let texts: Vec<&str> = items.iter().map(String::as_str).collect();
        let waits = due_in(queue, &texts, &self.pace);
        let mut due = Vec::with_capacity(items.len());
        let mut waiting = Vec::new();
        for (item, wait) in items.into_iter().zip(waits) {
            match wait {
                None => due.push(item),
                Some(wait) => waiting.push((item, wait)),
            }
        }
        self.metrics.waiting.inc_by(waiting.len() as u64);
        queue.hold(server, &waiting);
        due
    }

    /// Locks `jobs`, copies those still queued, removes the copied items, releases.
    fn locked_round(
        &self,
        store: &ZkState,
        session: i64,
        queue: &ReplicationQueue,
        server: &RedisPool,
        jobs: &[Job],
    ) -> Round {
        let paths: Vec<String> = jobs.iter().map(|job| job.lock.clone()).collect();
        let held = match locks::take(store, &self.token, &paths, &self.leftovers) {
            Ok(held) => held,
            Err(err) => {
                log_line!("cannot take {} lock(s): {err}", paths.len());
                return Round::Failed;
            }
        };
        // Released when this round ends, however it ends.
        let _release = Release {
            store,
            paths: locks::held_paths(&paths, &held),
            leftovers: &self.leftovers,
        };
        let mine: Vec<&Job> = jobs
            .iter()
            .zip(&held)
            .filter(|(_, held)| **held)
            .map(|(job, _)| job)
            .collect();
        self.metrics
            .locked_elsewhere
            .inc_by((jobs.len() - mine.len()) as u64);
        // Another replicator may have finished an item between our pick and our lock.
        let texts: Vec<&str> = mine.iter().map(|job| job.text.as_str()).collect();
        let queued = queue.still_queued(server, &texts);
        let items: Vec<PlannedItem> = mine
            .iter()
            .zip(queued)
            .filter(|(_, queued)| *queued)
            .map(|(job, _)| (job.text.as_str(), &job.plan))
            .collect();
        self.metrics
            .copied_elsewhere
            .inc_by((mine.len() - items.len()) as u64);
        let outcomes = self.copier.copy_all(&items, session);
        let (mut copied, mut failed) = (Vec::new(), Vec::new());
        let mut fenced = false;
        for ((text, _), outcome) in items.iter().zip(outcomes) {
            match outcome {
                Ok(()) => copied.push(*text),
                Err(None) => fenced = true,
                Err(Some(not)) => failed.push(Failed {
                    item: text,
                    kind: not.kind,
                    reason: not.why,
                }),
            }
        }
        // Removed everywhere before the locks go, so nobody picks them up again.
        match queue.done(&copied) {
            Ok(lags) => self.metrics.lags(&lags),
            Err(err) => log_line!(
                "cannot remove {} copied item(s) from the queue: {err}",
                copied.len()
            ),
        }
        match record_failures(queue, &failed, &self.bounds) {
            Ok(given_up) => {
                for dead in given_up {
                    self.metrics.moved_dead.inc();
                    // The attempts, unless the bound that was reached already says them.
                    let attempts = match dead.why.ends_with("failed attempts") {
                        true => String::new(),
                        false => format!(", {} failed attempts", dead.record.attempts),
                    };
                    log_line!(
                        "item {} moved to {} ({}{attempts}; last failure: {})",
                        dead.item,
                        queue.dead().key(),
                        dead.why,
                        dead.record.last_reason
                    );
                }
            }
            Err(err) => log_line!("cannot record {} failure(s): {err}", failed.len()),
        }
        if fenced {
            Round::Fenced
        } else if !copied.is_empty() {
            Round::Copied(jobs.len())
        } else if !failed.is_empty() {
            Round::Failed
        } else {
            Round::Locked
        }
    }
}
