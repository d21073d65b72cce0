//! Applying size increments to the shard-size nodes with compare-and-set, and settling a
//! write whose outcome is unknown before its increment is applied again.

use super::SizeAccounting;
use crate::cluster::sizes::PendingSizes;
use crate::cluster::snapshot::SnapshotCell;
use crate::error::{Error, Result};
use crate::log_line;
use crate::state::{shard_size, Paths};
use crate::zk_state::ZkState;
use std::sync::Arc;
use std::time::Instant;

/// A size write whose outcome is unknown (the connection broke while it was in flight):
/// before applying its increment again, check whether the node holds what we wrote.
struct UncertainWrite {
    shard: String,
    delta: u64,
    version: i32,
    bytes: Vec<u8>,
}

/// Which pending increments a flush writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlushScope {
    /// The periodic flush: at most `flush_most` size nodes, the most urgent first.
    Due,
    /// Every one (a clean shutdown).
    All,
}

/// Pending bytes that are at least this share of their shard's free space are written at
/// every flush, past the limit. So the bytes of a shard that other coordinators have not
/// seen stay below `coordinators x 0.25 %` of its free space plus one flush interval of
/// uploads: with up to 400 coordinators, a shard cannot fill up unseen.
const URGENT_SHARE: f64 = 0.0025;

/// How urgent a shard's pending bytes are: their share of the shard's free space as last
/// read. A shard close to full comes first, since every coordinator's unwritten bytes on
/// it are bytes the others do not see; a shard with room to spare can wait.
fn urgency(pending: u64, free: Option<u64>) -> f64 {
    match free {
        Some(free) => pending as f64 / free.max(1) as f64,
        // No size known (a new shard): as urgent as a full one.
        None => f64::INFINITY,
    }
}

/// Writes the increments uploads add up (`PendingSizes`) to the shard-size nodes.
pub(super) struct SizeFlusher {
    accounting: SizeAccounting,
    paths: Paths,
    pending: Arc<PendingSizes>,
    /// Where the shards' free space is read, to rank the pending totals.
    snapshots: Arc<SnapshotCell>,
    uncertain: Vec<UncertainWrite>,
    next_at: Instant,
}

impl SizeFlusher {
    pub(super) fn new(
        accounting: SizeAccounting,
        paths: Paths,
        pending: Arc<PendingSizes>,
        snapshots: Arc<SnapshotCell>,
    ) -> SizeFlusher {
        // The first flush comes at a random point of the interval's second half:
        // coordinators started together (a deploy) would otherwise flush in step, and
        // their compare-and-sets on the same size nodes would conflict and go again.
        let first = accounting
            .flush_every
            .mul_f64(0.5 + rand::random::<f64>() / 2.0);
        SizeFlusher {
            accounting,
            paths,
            pending,
            snapshots,
            uncertain: Vec::new(),
            next_at: Instant::now() + first,
        }
    }

    /// When the next periodic flush is due.
    pub(super) fn next_at(&self) -> Instant {
        self.next_at
    }

    /// The periodic flush is done (or skipped): the next one is an interval from now.
    pub(super) fn schedule_next(&mut self) {
        self.next_at = Instant::now() + self.accounting.flush_every;
    }

    /// Applies pending size increments with compare-and-set. A total that fails goes
    /// back to be retried, unless its size node is gone (then it is dropped, logged).
    ///
    /// The periodic flush writes at most `flush_most` nodes, and past that only urgent ones
    /// (see `URGENT_SHARE`): ZooKeeper's write load from size accounting is then about
    /// `flush_most / flush_every` per coordinator, however many shards there are. The rest
    /// stay pending (nothing is lost, increments add up) and go at a later flush, the most
    /// urgent first.
    pub(super) fn flush(&mut self, store: &ZkState, scope: FlushScope) -> Result<()> {
        self.settle_uncertain(store)?;
        let mut totals: Vec<(String, u64)> = self.pending.take().into_iter().collect();
        let most = match scope {
            FlushScope::Due => self.accounting.flush_most.max(1),
            FlushScope::All => usize::MAX,
        };
        if totals.len() > most {
            let snapshot = self.snapshots.current();
            let free = |id: &str| snapshot.as_ref()?.shard(id)?.size.map(|s| s.free());
            let mut ranked: Vec<(f64, (String, u64))> = totals
                .into_iter()
                .map(|(id, delta)| (urgency(delta, free(&id)), (id, delta)))
                .collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
            // Urgent totals go whatever the limit.
            let keep = most.max(ranked.iter().filter(|r| r.0 >= URGENT_SHARE).count());
            totals = ranked.into_iter().map(|(_, total)| total).collect();
            for (shard, delta) in totals.split_off(keep) {
                self.pending.put_back(&shard, delta);
            }
        }
        self.add_sizes(store, totals)
    }

    /// Applies increments in rounds: one pipelined read of every node, one pipelined
    /// compare-and-set of every new value; the increments that met a version conflict
    /// (another coordinator wrote in between) go again in the next round.
    fn add_sizes(&mut self, store: &ZkState, mut round: Vec<(String, u64)>) -> Result<()> {
        while !round.is_empty() {
            let paths: Vec<String> = round
                .iter()
                .map(|(s, _)| self.paths.shard_size(s))
                .collect();
            let nodes = match store.session().get_many(&paths) {
                Ok(nodes) => nodes,
                Err(err) => {
                    round.iter().for_each(|(s, d)| self.pending.put_back(s, *d));
                    return Err(err);
                }
            };
            let mut writes = Vec::new();
            let mut increments = Vec::new();
            for ((shard, delta), (path, node)) in
                round.into_iter().zip(paths.into_iter().zip(nodes))
            {
                let updated = node
                    .ok_or_else(|| Error::NotInitialized { path: path.clone() })
                    .and_then(|(bytes, version)| {
                        let mut doc = crate::state::parse_object(&path, &bytes)?;
                        shard_size::add_current(&path, &mut doc, delta)?;
                        Ok((crate::js_json::to_compact(&doc).into_bytes(), version))
                    });
                match updated {
                    Ok((bytes, version)) => {
                        writes.push((path, bytes, version));
                        increments.push((shard, delta));
                    }
                    Err(err) => log_line!(
                        "dropping {delta} bytes of size increments for shard {shard}: {err}"
                    ),
                }
            }
            let outcomes = match store.session().set_many(&writes) {
                Ok(outcomes) => outcomes,
                Err(err) => {
                    // No answer: each write may or may not have landed. Decided on the
                    // next flush, by looking.
                    for ((shard, delta), (_, bytes, version)) in increments.into_iter().zip(writes)
                    {
                        self.uncertain.push(UncertainWrite {
                            shard,
                            delta,
                            version,
                            bytes,
                        });
                    }
                    return Err(err);
                }
            };
            round = Vec::new();
            let mut failure = None;
            let done = increments.into_iter().zip(writes).zip(outcomes);
            for (((shard, delta), (_, bytes, version)), outcome) in done {
                match outcome {
                    Ok(true) => {}
                    Ok(false) => round.push((shard, delta)),
                    Err(err @ Error::NotInitialized { .. }) => log_line!(
                        "dropping {delta} bytes of size increments for shard {shard}: {err}"
                    ),
                    Err(err) => {
                        self.uncertain.push(UncertainWrite {
                            shard,
                            delta,
                            version,
                            bytes,
                        });
                        failure = Some(err);
                    }
                }
            }
            if let Some(err) = failure {
                round.iter().for_each(|(s, d)| self.pending.put_back(s, *d));
                return Err(err);
            }
        }
        Ok(())
    }

    /// Settles writes whose outcome was unknown: applied if the node's version is the next
    /// one and it holds our bytes; otherwise the increment is pending again.
    fn settle_uncertain(&mut self, store: &ZkState) -> Result<()> {
        while let Some(write) = self.uncertain.pop() {
            let path = self.paths.shard_size(&write.shard);
            match store.session().get(&path) {
                Ok(Some((bytes, version)))
                    if version == write.version + 1 && bytes == write.bytes => {}
                Ok(_) => self.pending.put_back(&write.shard, write.delta),
                Err(err) => {
                    self.uncertain.push(write);
                    return Err(err);
                }
            }
        }
        Ok(())
    }
}
