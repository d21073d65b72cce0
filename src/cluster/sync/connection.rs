//! The ZooKeeper session of the sync thread: opening one (its events go to the thread's
//! queue), and telling a broken session from a failed call.

use super::{Message, SnapshotKeeper};
use crate::error::{Error, Result};
use crate::log_line;
use crate::zk_state::ZkState;
use std::sync::{mpsc, Arc};
use std::time::Duration;

impl SnapshotKeeper {
    /// Opens a new session; its events carry a new generation number.
    pub(super) fn open(
        &mut self,
        events: &mpsc::Sender<Message>,
        timeout: Duration,
    ) -> Result<Arc<ZkState>> {
        let events = events.clone();
        let generation = self.generation + 1;
        let store = ZkState::open_watching(
            &self.settings.zk_servers,
            &self.settings.root,
            timeout,
            self.settings.session_timeout,
            move |event| {
                let _ = events.send(Message::Zk(generation, event));
            },
        )?;
        self.generation = generation;
        log_line!(
            "ZooKeeper session 0x{:x} open ({})",
            store.session().session_id(),
            self.settings.zk_servers
        );
        self.health.set_state("connected");
        Ok(Arc::new(store))
    }

    /// Drops a session ZooKeeper has ended; a live one is kept (its client reconnects by
    /// itself and keeps the session and its watches).
    pub(super) fn check_session(&self, store: &mut Option<Arc<ZkState>>, err: &Error, what: &str) {
        let ended = store
            .as_ref()
            .is_some_and(|s| s.session().state().is_terminated());
        log_line!(
            "{what} failed: {err}{}",
            if ended { "; opening a new session" } else { "" }
        );
        if ended {
            *store = None;
            self.health.set_state("connecting");
        }
    }
}
