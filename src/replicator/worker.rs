//! One replication worker: take a few random items, lock them, copy each file, remove the
//! items, release the locks.
//!
//! A round works on a batch, so that its fixed costs are shared: one Redis round trip
//! picks the items (with the queue's length), one ZooKeeper transaction locks them, one
//! round trip checks they are still queued, one `SREM` per Redis server removes the ones
//! copied, and one transaction deletes the locks. The copies themselves go one after
//! another; the process runs several workers for copies at once. The batch shrinks with
//! the queue (its length divided among the workers), so that workers rarely pick the
//! same items when few are queued; items another worker of this process already holds
//! are left alone without asking ZooKeeper.

use super::copy::{copy, CopyFailure};
use super::locks;
use crate::cluster::snapshot::Snapshot;
use crate::cluster::sync::Shared;
use crate::log_line;
use crate::replication_queue::{self, Item, ReplicationQueue};
use crate::transport::redis::RedisPool;
use crate::zk_state::ZkState;
use parking_lot::Mutex;
use rand::seq::SliceRandom;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Totals since start, logged now and then.
#[derive(Default)]
pub struct Counters {
    pub copied: AtomicU64,
    pub bytes: AtomicU64,
    pub failed: AtomicU64,
    pub locked_elsewhere: AtomicU64,
}

/// Items some worker of this process is working on.
#[derive(Default)]
pub struct Claims(Mutex<HashSet<String>>);

impl Claims {
    /// Claims the jobs that no other worker holds; returns those.
    fn claim(&self, jobs: Vec<Job>) -> Vec<Job> {
        let mut held = self.0.lock();
        jobs.into_iter()
            .filter(|job| held.insert(job.text.clone()))
            .collect()
    }

    fn release(&self, items: &[Job]) {
        let mut held = self.0.lock();
        for job in items {
            held.remove(&job.text);
        }
    }
}

pub struct Worker {
    pub shared: Arc<Shared>,
    pub agent: ureq::Agent,
    pub root: String,
    /// `hostname:pid`: the data of our lock nodes.
    pub token: String,
    pub counters: Arc<Counters>,
    pub claims: Arc<Claims>,
    /// Items per round at most.
    pub batch: usize,
    /// Workers in this process (the queue's length is shared among them).
    pub workers: usize,
    /// The shortest round when the batch is not full.
    pub round_time: Duration,
    pub max_error_backoff: Duration,
    pub quiet: bool,
}

/// What one round did.
enum Round {
    /// Copied at least one file; how many items the round had.
    Copied(usize),
    /// The queue is empty on the server asked.
    Empty,
    /// Only items someone else holds.
    Locked,
    /// Nothing copied and something failed: wait before the next round.
    Failed,
}

/// Deletes a round's locks when dropped.
struct Release<'a> {
    store: &'a ZkState,
    paths: Vec<String>,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        locks::release(self.store, &self.paths);
    }
}

/// One item of a round: its text, parsed form, addresses and lock node.
struct Job {
    text: String,
    item: Item,
    sources: Vec<(String, SocketAddr)>,
    target: SocketAddr,
    lock: String,
}

impl Worker {
    /// Runs rounds until `stop`; with `once`, returns when the queue is empty too.
    pub fn run(&self, stop: &AtomicBool, once: bool) {
        let mut idle = Duration::from_millis(50);
        let mut error = Duration::from_millis(100);
        while !stop.load(Ordering::SeqCst) {
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
                        if let Some(rest) = self.round_time.checked_sub(started.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                }
                // Only items others hold: they may hold them for a while.
                Round::Locked => {
                    error = Duration::from_millis(100);
                    std::thread::sleep(idle);
                    idle = (idle * 2).min(Duration::from_secs(1));
                }
                Round::Empty => {
                    if once {
                        return;
                    }
                    std::thread::sleep(idle);
                    idle = (idle * 2).min(Duration::from_secs(1));
                }
                Round::Failed => {
                    std::thread::sleep(error);
                    error = (error * 2).min(self.max_error_backoff);
                }
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
        let picked = match queue.pick(self.batch) {
            Ok(picked) if picked.items.is_empty() => return Round::Empty,
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
        // SRANDMEMBER returns a whole small set in the set's own order: shuffle, or the
        // same first items (held by someone else, say) would come first every time.
        let mut items = picked.items;
        items.shuffle(&mut rand::rng());
        let mut unusable = false;
        let jobs: Vec<Job> = items
            .into_iter()
            .take(share)
            .filter_map(|text| match job(&snapshot, &self.root, &queue.key, text) {
                Ok(job) => Some(job),
                Err((text, why)) => {
                    log_line!("queue item {text} left queued: {why}");
                    unusable = true;
                    None
                }
            })
            .collect();
        let jobs = self.claims.claim(jobs);
        let outcome = if jobs.is_empty() {
            Round::Locked
        } else {
            self.locked_round(&store, queue, picked.server, &jobs)
        };
        self.claims.release(&jobs);
        match outcome {
            Round::Locked if unusable => Round::Failed,
            other => other,
        }
    }

    /// Locks `jobs`, copies those still queued, removes the copied items, releases.
    fn locked_round(
        &self,
        store: &ZkState,
        queue: &ReplicationQueue,
        server: &RedisPool,
        jobs: &[Job],
    ) -> Round {
        let paths: Vec<String> = jobs.iter().map(|job| job.lock.clone()).collect();
        let held = match locks::take(store, &self.token, &paths) {
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
        };
        let mine: Vec<&Job> = jobs
            .iter()
            .zip(&held)
            .filter(|(_, held)| **held)
            .map(|(job, _)| job)
            .collect();
        let elsewhere = (jobs.len() - mine.len()) as u64;
        self.counters
            .locked_elsewhere
            .fetch_add(elsewhere, Ordering::Relaxed);
        // Another replicator may have finished an item between our pick and our lock.
        let texts: Vec<&str> = mine.iter().map(|job| job.text.as_str()).collect();
        let queued = queue.still_queued(server, &texts);
        let (mut copied, mut failed) = (Vec::new(), 0);
        for (job, _) in mine.iter().zip(queued).filter(|(_, queued)| *queued) {
            if self.copy_one(job) {
                copied.push(job.text.as_str());
            } else {
                failed += 1;
            }
        }
        // Removed everywhere before the locks go, so nobody picks them up again.
        queue.remove(&copied);
        if !copied.is_empty() {
            Round::Copied(jobs.len())
        } else if failed > 0 {
            Round::Failed
        } else {
            Round::Locked
        }
    }

    /// Copies one job's file; true when the target has it.
    fn copy_one(&self, job: &Job) -> bool {
        let started = Instant::now();
        let ms = || started.elapsed().as_secs_f64() * 1000.0;
        match copy_from_any(&self.agent, &job.sources, job.target, &job.item.path) {
            Ok((from, bytes)) => {
                self.counters.copied.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                if !self.quiet {
                    log_line!(
                        "copy {} {from} -> {} {bytes} bytes in {:.1} ms: ok",
                        job.item.path,
                        job.item.to,
                        ms()
                    );
                }
                true
            }
            Err(why) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                log_line!(
                    "copy {} [{}] -> {} in {:.1} ms: failed, left queued ({why})",
                    job.item.path,
                    job.item.from.join(","),
                    job.item.to,
                    ms()
                );
                false
            }
        }
    }
}

/// Parses an item and finds its nodes; on failure the item's text and why.
fn job(snapshot: &Snapshot, root: &str, key: &str, text: String) -> Result<Job, (String, String)> {
    let item = match Item::parse(&text) {
        Ok(item) => item,
        Err(why) => return Err((text, format!("not a replication item ({why})"))),
    };
    let (sources, target) = match addresses(snapshot, &item) {
        Ok(found) => found,
        Err(why) => return Err((text, why)),
    };
    Ok(Job {
        lock: replication_queue::lock_path(root, key, &text),
        text,
        item,
        sources,
        target,
    })
}

/// Tries the sources in random order; the one that worked and the bytes copied.
fn copy_from_any(
    agent: &ureq::Agent,
    sources: &[(String, SocketAddr)],
    target: SocketAddr,
    path: &str,
) -> Result<(String, u64), String> {
    let mut order = sources.to_vec();
    order.shuffle(&mut rand::rng());
    let mut failures = Vec::new();
    for (id, source) in order {
        match copy(agent, source, target, path) {
            Ok(bytes) => return Ok((id, bytes)),
            // A target failure will not get better with another source.
            Err(failure @ CopyFailure::Target(_)) => {
                failures.push(format!("from {id}: {failure}"));
                break;
            }
            Err(failure) => failures.push(format!("from {id}: {failure}")),
        }
    }
    Err(failures.join("; "))
}

/// The item's sources and target as addresses; an error names a node that is missing from
/// servers-map or does not resolve.
fn addresses(
    snapshot: &Snapshot,
    item: &Item,
) -> Result<(Vec<(String, SocketAddr)>, SocketAddr), String> {
    let find = |id: &str| -> Result<SocketAddr, String> {
        let node = snapshot
            .nodes
            .get(id)
            .ok_or_else(|| format!("node {id} is not in servers-map"))?;
        node.addr
            .ok_or_else(|| format!("node {id} ({}) does not resolve", node.endpoint))
    };
    let target = find(&item.to)?;
    let sources = item
        .from
        .iter()
        .map(|id| find(id).map(|addr| (id.clone(), addr)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((sources, target))
}
