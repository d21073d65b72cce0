//! One replication worker: take a random item, lock it, copy the file, remove the item.
//!
//! The lock is an ephemeral ZooKeeper node named after the item's exact bytes, holding
//! `hostname:pid`, so old and new replicators on one queue never copy the same item at
//! once; a replicator that dies loses its locks with its session. A lock that holds our
//! own token but belongs to an older session of ours is stale and taken over.

use super::copy::{copy, CopyFailure};
use crate::cluster::snapshot::Snapshot;
use crate::cluster::sync::Shared;
use crate::log_line;
use crate::replication_queue::{self, Item};
use crate::zk::NodeKind;
use crate::zk_state::ZkState;
use rand::seq::SliceRandom;
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

pub struct Worker {
    pub shared: Arc<Shared>,
    pub agent: ureq::Agent,
    pub root: String,
    /// `hostname:pid`: the data of our lock nodes.
    pub token: String,
    pub counters: Arc<Counters>,
    pub max_error_backoff: Duration,
    pub quiet: bool,
}

/// What one round did.
enum Round {
    Copied,
    /// The queue is empty on the server asked.
    Empty,
    /// Someone else holds the item's lock.
    Locked,
    /// Something failed; wait before the next round.
    Failed,
}

/// Deletes the lock node when dropped, however the copy ended.
struct LockGuard<'a> {
    store: &'a ZkState,
    path: String,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.store.session().delete(&self.path) {
            log_line!(
                "cannot delete lock {}: {err} (it goes with our session)",
                self.path
            );
        }
    }
}

impl Worker {
    /// Runs rounds until `stop`; with `once`, returns when the queue is empty too.
    pub fn run(&self, stop: &AtomicBool, once: bool) {
        let mut idle = Duration::from_millis(50);
        let mut error = Duration::from_millis(100);
        while !stop.load(Ordering::SeqCst) {
            match self.round() {
                Round::Copied | Round::Locked => {
                    idle = Duration::from_millis(50);
                    error = Duration::from_millis(100);
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
        let (text, source) = match queue.pick() {
            Ok(Some(picked)) => picked,
            Ok(None) => return Round::Empty,
            Err(err) => {
                log_line!("{err}");
                return Round::Failed;
            }
        };
        let item = match Item::parse(&text) {
            Ok(item) => item,
            Err(why) => {
                log_line!("queue item {text:?} is not a replication item ({why}); left queued");
                return Round::Failed;
            }
        };
        let (sources, target) = match addresses(&snapshot, &item) {
            Ok(found) => found,
            Err(why) => {
                log_line!("item {text} left queued: {why}");
                return Round::Failed;
            }
        };
        let lock = replication_queue::lock_path(&self.root, &queue.key, &text);
        match self.take_lock(&store, &lock) {
            Ok(true) => {}
            Ok(false) => {
                self.counters
                    .locked_elsewhere
                    .fetch_add(1, Ordering::Relaxed);
                return Round::Locked;
            }
            Err(err) => {
                log_line!("cannot take lock {lock}: {err}");
                return Round::Failed;
            }
        }
        let _lock = LockGuard {
            store: &store,
            path: lock,
        };
        // Another replicator may have finished the item between our pick and our lock.
        if !queue.still_queued(source, &text) {
            return Round::Locked;
        }
        let started = Instant::now();
        match self.copy_from_any(&sources, target, &item.path) {
            Ok((from, bytes)) => {
                // Removed everywhere before the lock goes, so nobody picks it up again.
                queue.remove(&text);
                self.counters.copied.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                if !self.quiet {
                    log_line!(
                        "copy {} {from} -> {} {bytes} bytes in {:.1} ms: ok",
                        item.path,
                        item.to,
                        started.elapsed().as_secs_f64() * 1000.0
                    );
                }
                Round::Copied
            }
            Err(why) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                log_line!(
                    "copy {} [{}] -> {} in {:.1} ms: failed, left queued ({why})",
                    item.path,
                    item.from.join(","),
                    item.to,
                    started.elapsed().as_secs_f64() * 1000.0
                );
                Round::Failed
            }
        }
    }

    /// Creates the lock node; false when another process holds it.
    fn take_lock(&self, store: &ZkState, path: &str) -> crate::Result<bool> {
        let zk = store.session();
        if zk.create(path, self.token.clone().into_bytes(), NodeKind::Ephemeral)? {
            return Ok(true);
        }
        match zk.get_with_owner(path)? {
            // Ours, from a session we no longer have: stale, take it over.
            Some((data, owner)) if data == self.token.as_bytes() && owner != zk.session_id() => {
                zk.delete(path)?;
                zk.create(path, self.token.clone().into_bytes(), NodeKind::Ephemeral)
            }
            Some(_) => Ok(false),
            // Released in between: try once more.
            None => zk.create(path, self.token.clone().into_bytes(), NodeKind::Ephemeral),
        }
    }

    /// Tries the sources in random order; the one that worked and the bytes copied.
    fn copy_from_any(
        &self,
        sources: &[(String, SocketAddr)],
        target: SocketAddr,
        path: &str,
    ) -> Result<(String, u64), String> {
        let mut order = sources.to_vec();
        order.shuffle(&mut rand::rng());
        let mut failures = Vec::new();
        for (id, source) in order {
            match copy(&self.agent, source, target, path) {
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
