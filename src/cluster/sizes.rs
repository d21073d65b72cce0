//! Shard size increments, batched.
//!
//! Every stored upload adds its bytes to its shard's `current` in ZooKeeper. Writing each
//! one would cost a ZooKeeper round trip per upload, so uploads add to a per-shard total
//! here and the ZooKeeper thread applies the totals every `--size-flush` with
//! compare-and-set. A total that could not be applied goes back and is retried, so an
//! increment is applied once: never lost, never doubled. What is pending when the process
//! dies with SIGKILL is lost (at most one interval): sizes only steer placement.

use parking_lot::Mutex;
use std::collections::HashMap;

#[derive(Default)]
pub struct PendingSizes {
    totals: Mutex<HashMap<String, u64>>,
}

impl PendingSizes {
    pub fn add(&self, shard_id: &str, bytes: u64) {
        let mut totals = self.totals.lock();
        match totals.get_mut(shard_id) {
            Some(total) => *total += bytes,
            None => {
                totals.insert(shard_id.to_string(), bytes);
            }
        }
    }

    /// Takes every pending total, leaving none.
    pub fn take(&self) -> HashMap<String, u64> {
        std::mem::take(&mut *self.totals.lock())
    }

    /// Puts back a total that could not be applied.
    pub fn put_back(&self, shard_id: &str, bytes: u64) {
        self.add(shard_id, bytes);
    }
}
