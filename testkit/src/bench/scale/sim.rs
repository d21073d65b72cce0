//! Simulated coordinators for `bp-bench scale`: each runs the production ZooKeeper thread
//! (`cluster::sync`) with its own session, and places made-up uploads with the production
//! placement code, so that it makes exactly the ZooKeeper traffic a busy coordinator
//! makes, without any HTTP. Beside them, coordinators flushing the way the old Node.js
//! coordinator did (SPEC: every 3 s, every pending shard, read and compare-and-set), to
//! check that increments from both kinds add up on the same nodes.

use backpack::cluster::snapshot::Snapshot;
use backpack::cluster::sync::{self, Shared, SizeAccounting, SyncHandle, SyncSettings};
use backpack::coordinator::upload::placement;
use backpack::state::shard_size;
use backpack::zk_state::ZkState;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What a simulated coordinator does with an upload's bytes.
pub enum Accounting {
    /// The production code: pending sizes flushed by the ZooKeeper thread.
    Current { shared: Shared, sync: SyncHandle },
    /// The old coordinator's way, emulated: its own session and pending totals.
    Old {
        store: ZkState,
        pending: HashMap<String, u64>,
    },
}

pub struct SimCoordinator {
    pub accounting: Accounting,
    /// Bytes placed on shards (what the size nodes must grow by in the end).
    pub placed: u64,
    /// Uploads that found no writable shard.
    pub refused: u64,
}

impl SimCoordinator {
    /// A coordinator running the production sync with these size settings.
    pub fn current(zk: &str, root: &str, sizes: SizeAccounting) -> Result<SimCoordinator, String> {
        let shared = Shared::default();
        let sync = sync::start(
            SyncSettings {
                zk_servers: zk.to_string(),
                root: root.to_string(),
                zk_timeout: Duration::from_secs(10),
                session_timeout: Duration::from_secs(30),
                sizes: Some(sizes),
                redis_timeout: Duration::from_secs(1),
                resolve_every: Duration::from_secs(3600),
                uses_queue: false,
            },
            &shared,
        )
        .map_err(|err| err.to_string())?;
        Ok(SimCoordinator {
            accounting: Accounting::Current { shared, sync },
            placed: 0,
            refused: 0,
        })
    }

    /// A coordinator flushing as the old one did (it places uploads with another's view).
    pub fn old(zk: &str, root: &str) -> Result<SimCoordinator, String> {
        let store = ZkState::open(zk, root, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        Ok(SimCoordinator {
            accounting: Accounting::Old {
                store,
                pending: HashMap::new(),
            },
            placed: 0,
            refused: 0,
        })
    }

    /// Whether it runs the production sync (not the old way).
    pub fn is_current(&self) -> bool {
        matches!(self.accounting, Accounting::Current { .. })
    }

    /// The snapshot this coordinator places uploads with (old ones have none of their own).
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        match &self.accounting {
            Accounting::Current { shared, .. } => shared.snapshot.current(),
            Accounting::Old { .. } => None,
        }
    }

    /// Places one upload of `bytes` as a coordinator would, on `snapshot`; false when
    /// no shard is writable.
    pub fn upload(&mut self, snapshot: &Snapshot, bytes: u64, rng: &mut impl rand::Rng) -> bool {
        let writable: Vec<_> = snapshot.writable_shards().collect();
        let Some(shard) = placement::choose(&writable, rng) else {
            self.refused += 1;
            return false;
        };
        self.placed += bytes;
        match &mut self.accounting {
            Accounting::Current { shared, .. } => shared.sizes.add(&shard.id, bytes),
            Accounting::Old { pending, .. } => {
                *pending.entry(shard.id.clone()).or_insert(0) += bytes
            }
        }
        true
    }

    /// The periodic flush of an old-style coordinator (current ones flush on their own).
    pub fn old_flush(&mut self) -> Result<(), String> {
        let Accounting::Old { store, pending } = &mut self.accounting else {
            return Ok(());
        };
        for (shard, delta) in std::mem::take(pending) {
            let path = store.paths().shard_size(&shard);
            store
                .update(&path, |doc| shard_size::add_current(&path, doc, delta))
                .map_err(|err| err.to_string())?;
        }
        Ok(())
    }

    /// Ends a current coordinator's ZooKeeper thread and session (before ZooKeeper stops,
    /// which it would otherwise log).
    pub fn stop(&self) {
        if let Accounting::Current { sync, .. } = &self.accounting {
            sync.stop(Duration::from_secs(10));
        }
    }

    /// Writes everything pending now (the end of a run).
    pub fn flush_all(&mut self) -> Result<(), String> {
        match &self.accounting {
            Accounting::Current { sync, .. } => match sync.flush(Duration::from_secs(60)) {
                true => Ok(()),
                false => Err("a simulated coordinator did not flush within 60 s".into()),
            },
            Accounting::Old { .. } => self.old_flush(),
        }
    }
}
