//! Applying size increments to the shard-size nodes with compare-and-set, and settling a
//! write whose outcome is unknown before its increment is applied again.

use super::SnapshotKeeper;
use crate::error::{Error, Result};
use crate::log_line;
use crate::state::shard_size;
use crate::zk_state::ZkState;

/// A size write whose outcome is unknown (the connection broke while it was in flight):
/// before applying its increment again, check whether the node holds what we wrote.
pub(super) struct UncertainWrite {
    pub(super) shard: String,
    pub(super) delta: u64,
    pub(super) version: i32,
    pub(super) bytes: Vec<u8>,
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
/// every flush, past the limit. So the bytes of a shard that no other coordinator has seen
/// stay below `coordinators x 1 %` of its free space plus one flush interval of uploads:
/// with up to a hundred coordinators, a shard cannot fill up unseen.
const URGENT_SHARE: f64 = 0.01;

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

impl SnapshotKeeper {
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
        let mut totals: Vec<(String, u64)> = self.sizes.take().into_iter().collect();
        let most = match (scope, &self.settings.sizes) {
            (FlushScope::Due, Some(sizes)) => sizes.flush_most.max(1),
            _ => usize::MAX,
        };
        if totals.len() > most {
            let snapshot = self.cell.current();
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
                self.sizes.put_back(&shard, delta);
            }
        }
        let mut failure = None;
        for (shard, delta) in totals {
            if failure.is_some() {
                self.sizes.put_back(&shard, delta);
                continue;
            }
            if let Err(err) = self.add_size(store, &shard, delta) {
                failure = Some(err);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// One increment: read, add, compare-and-set; again on a version conflict.
    fn add_size(&mut self, store: &ZkState, shard: &str, delta: u64) -> Result<()> {
        let path = self.paths.shard_size(shard);
        loop {
            let (mut doc, version) = match store.read_required(&path) {
                Ok(read) => read,
                Err(err @ (Error::NotInitialized { .. } | Error::BadState { .. })) => {
                    log_line!("dropping {delta} bytes of size increments for shard {shard}: {err}");
                    return Ok(());
                }
                Err(err) => {
                    self.sizes.put_back(shard, delta);
                    return Err(err);
                }
            };
            if let Err(err) = shard_size::add_current(&path, &mut doc, delta) {
                log_line!("dropping {delta} bytes of size increments for shard {shard}: {err}");
                return Ok(());
            }
            let bytes = crate::js_json::to_compact(&doc).into_bytes();
            match store.session().set(&path, bytes.clone(), version) {
                Ok(true) => return Ok(()),
                Ok(false) => continue,
                Err(err) => {
                    // Applied or not? Decided on the next flush, by looking.
                    self.uncertain.push(UncertainWrite {
                        shard: shard.to_string(),
                        delta,
                        version,
                        bytes,
                    });
                    return Err(err);
                }
            }
        }
    }

    /// Settles writes whose outcome was unknown: applied if the node's version is the next
    /// one and it holds our bytes; otherwise the increment is pending again.
    fn settle_uncertain(&mut self, store: &ZkState) -> Result<()> {
        while let Some(write) = self.uncertain.pop() {
            let path = self.paths.shard_size(&write.shard);
            match store.session().get(&path) {
                Ok(Some((bytes, version)))
                    if version == write.version + 1 && bytes == write.bytes => {}
                Ok(_) => self.sizes.put_back(&write.shard, write.delta),
                Err(err) => {
                    self.uncertain.push(write);
                    return Err(err);
                }
            }
        }
        Ok(())
    }
}
