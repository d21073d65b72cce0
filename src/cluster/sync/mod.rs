//! The ZooKeeper thread: keeps the configuration snapshot current and applies size
//! increments.
//!
//! It owns the ZooKeeper session on its own OS thread (never on a `may` worker). It
//! watches the configuration nodes; a watch that fires re-reads that node (which re-arms
//! the watch), a burst of changes coalesced (`plan`), and publishes a new snapshot. Size
//! nodes are polled: all of them every `--size-refresh`, in batches. When the session
//! breaks, it connects again with back-off and re-reads everything, so a change made
//! meanwhile is not missed. Every `--size-flush` it applies pending size increments with
//! compare-and-set.
//!
//! Its parts, each owning its own state: `keeper` the thread's loop, which sleeps until
//! the earliest deadline of the others and handles what woke it; `connection` the session
//! (connected, disconnected, none) and its back-off; `plan` what to read when; `read` the
//! nodes as last read; `build` a snapshot from them; `publish` handing it to the process;
//! `flush` the size increments; `status` what the thread shares.

use super::sizes::PendingSizes;
use super::snapshot::SnapshotCell;
use crate::error::{Error, Result};
use crate::state::Paths;
use crate::zk::ZkEvent;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

mod build;
mod connection;
mod flush;
mod keeper;
mod plan;
mod publish;
mod read;
mod status;

pub use status::{SessionCell, ZkHealth};

pub struct SyncSettings {
    pub zk_servers: String,
    pub root: String,
    /// Bounds connecting and every ZooKeeper call.
    pub zk_timeout: Duration,
    pub session_timeout: Duration,
    /// How shard sizes are read and written; None for a process that never looks at
    /// sizes (the replicator, bp-nginx-gen): it neither reads nor watches size nodes.
    pub sizes: Option<SizeAccounting>,
    pub redis_timeout: Duration,
    /// How long a host name lookup stands: then every name is looked up again (on this
    /// thread, never on the upload path), names that failed included.
    pub resolve_every: Duration,
    /// Whether the process uses the replication queue: if so, no snapshot is published
    /// before `<root>/queue` exists.
    pub uses_queue: bool,
}

/// How a coordinator follows and writes the shard-size nodes.
#[derive(Debug, Clone)]
pub struct SizeAccounting {
    /// How often pending increments are written (and ZooKeeper probed).
    pub flush_every: Duration,
    /// Size nodes written per flush at most; the rest wait for the next one, those with
    /// the most pending bytes relative to their free space first.
    pub flush_most: usize,
    /// How often every size node is read (polled, in batches spread over the interval).
    pub refresh_every: Duration,
}

enum Message {
    /// An event of the session with this generation (events of replaced sessions are
    /// ignored).
    Zk(u64, ZkEvent),
    /// Apply pending sizes now and answer (clean shutdown).
    Flush(mpsc::Sender<()>),
    /// End the thread (its session closes) and answer.
    Stop(mpsc::Sender<()>),
}

/// Talks to the ZooKeeper thread.
pub struct SyncHandle {
    messages: mpsc::Sender<Message>,
}

impl SyncHandle {
    /// Applies the pending size increments now; waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = mpsc::channel();
        self.messages.send(Message::Flush(done)).is_ok() && wait.recv_timeout(timeout).is_ok()
    }

    /// Ends the ZooKeeper thread, closing its session; pending size increments are not
    /// applied (`flush` first). Waits at most `timeout`.
    pub fn stop(&self, timeout: Duration) -> bool {
        let (done, wait) = mpsc::channel();
        self.messages.send(Message::Stop(done)).is_ok() && wait.recv_timeout(timeout).is_ok()
    }
}

/// What the ZooKeeper thread shares with the rest of the process.
#[derive(Default)]
pub struct Shared {
    pub snapshot: Arc<SnapshotCell>,
    pub sizes: Arc<PendingSizes>,
    pub health: Arc<ZkHealth>,
    pub session: Arc<SessionCell>,
}

/// Starts the ZooKeeper thread; it publishes into `shared`.
pub fn start(settings: SyncSettings, shared: &Shared) -> Result<SyncHandle> {
    let paths = Paths::new(&settings.root)?;
    let (sender, messages) = mpsc::channel();
    let keeper = keeper::Keeper::new(settings, paths, shared, sender.clone());
    thread::Builder::new()
        .name("zookeeper-sync".into())
        .spawn(move || keeper.run(messages))
        .map_err(|err| Error::invalid(format!("cannot start the ZooKeeper thread: {err}")))?;
    Ok(SyncHandle { messages: sender })
}
