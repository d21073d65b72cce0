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

impl SnapshotKeeper {
    /// Applies pending size increments with compare-and-set. A total that fails goes
    /// back to be retried, unless its size node is gone (then it is dropped, logged).
    pub(super) fn flush(&mut self, store: &ZkState) -> Result<()> {
        self.settle_uncertain(store)?;
        let totals = self.sizes.take();
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
