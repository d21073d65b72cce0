//! How the ZooKeeper thread is doing, shared with the process: the connection's state and
//! the last read (for `/stats` and `/metrics`), and the session in force (for the
//! replicator's lock nodes).

use crate::zk_state::ZkState;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the ZooKeeper connection is doing, for `/stats` and `/metrics`.
pub struct ZkHealth {
    state: Mutex<&'static str>,
    last_read: Mutex<Option<Instant>>,
}

impl Default for ZkHealth {
    fn default() -> ZkHealth {
        ZkHealth {
            state: Mutex::new("connecting"),
            last_read: Mutex::new(None),
        }
    }
}

impl ZkHealth {
    /// `connected`, `disconnected`, `connecting` (no session yet, or a new one being made).
    pub fn state(&self) -> &'static str {
        *self.state.lock()
    }

    /// Time since the configuration was last read successfully.
    pub fn since_last_read(&self) -> Option<Duration> {
        self.last_read.lock().map(|at| at.elapsed())
    }

    pub(super) fn set_state(&self, state: &'static str) {
        *self.state.lock() = state;
    }

    pub(super) fn read_now(&self) {
        *self.last_read.lock() = Some(Instant::now());
    }
}

/// The ZooKeeper session in use, for code that must make its own calls (the replicator's
/// lock nodes). None while there is none. Calls block: never make them on a `may` worker.
#[derive(Default)]
pub struct SessionCell {
    current: Mutex<Option<Arc<ZkState>>>,
}

impl SessionCell {
    pub fn current(&self) -> Option<Arc<ZkState>> {
        self.current.lock().clone()
    }

    pub(super) fn set(&self, store: &Option<Arc<ZkState>>) {
        let mut current = self.current.lock();
        let same = match (&*current, store) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            *current = store.clone();
        }
    }
}
