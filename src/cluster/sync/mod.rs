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

use super::sizes::PendingSizes;
use super::snapshot::SnapshotCell;
use crate::error::{Error, Result};
use crate::log_line;
use crate::state::Paths;
use crate::transport::redis::RedisPool;
use crate::zk::ZkEvent;
use crate::zk_state::ZkState;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use zookeeper_client::SessionState;

mod build;
mod connection;
mod flush;
mod plan;
mod publish;
mod read;
mod status;

use flush::{FlushScope, UncertainWrite};
use plan::ReadPlan;
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

/// The nodes' JSON as last read (None: the node does not exist).
#[derive(Default)]
struct Raw {
    servers: Option<Value>,
    shards: Option<Value>,
    queue: Option<Value>,
    sizes: HashMap<String, Option<(Value, i32)>>,
}

/// The ZooKeeper thread's state: what it follows, what it last read, what it must write.
struct SnapshotKeeper {
    settings: SyncSettings,
    paths: Paths,
    cell: Arc<SnapshotCell>,
    sizes: Arc<PendingSizes>,
    health: Arc<ZkHealth>,
    session: Arc<SessionCell>,
    raw: Raw,
    /// Host name lookups, redone when servers-map changes.
    resolved: HashMap<(String, u16), Option<SocketAddr>>,
    pools: HashMap<SocketAddr, Arc<RedisPool>>,
    /// What the last snapshot attempt was waiting for, to log a change only once.
    waiting_for: Option<String>,
    uncertain: Vec<UncertainWrite>,
    parsed: build::Parsed,
    /// A size batch found a change not in the last snapshot yet.
    sizes_unpublished: bool,
    /// Where the size poll goes on (see `read::next_size_batch`).
    size_cursor: usize,
    /// What the last logged configuration looked like, to log what changed.
    logged: Option<publish::Summary>,
    /// Which session's events count.
    generation: u64,
}

/// What the ZooKeeper thread shares with the rest of the process.
#[derive(Default)]
pub struct Shared {
    pub snapshot: Arc<SnapshotCell>,
    pub sizes: Arc<PendingSizes>,
    pub health: Arc<ZkHealth>,
    pub session: Arc<SessionCell>,
}

pub fn start(settings: SyncSettings, shared: &Shared) -> Result<SyncHandle> {
    let paths = Paths::new(&settings.root)?;
    let (sender, messages) = mpsc::channel();
    let events = sender.clone();
    let sync = SnapshotKeeper {
        settings,
        paths,
        cell: Arc::clone(&shared.snapshot),
        sizes: Arc::clone(&shared.sizes),
        health: Arc::clone(&shared.health),
        session: Arc::clone(&shared.session),
        raw: Raw::default(),
        resolved: HashMap::new(),
        pools: HashMap::new(),
        waiting_for: None,
        uncertain: Vec::new(),
        parsed: build::Parsed::default(),
        sizes_unpublished: false,
        size_cursor: 0,
        logged: None,
        generation: 0,
    };
    thread::Builder::new()
        .name("zookeeper-sync".into())
        .spawn(move || sync.run(messages, events))
        .map_err(|err| Error::invalid(format!("cannot start the ZooKeeper thread: {err}")))?;
    Ok(SyncHandle { messages: sender })
}

/// Back-off between attempts while ZooKeeper does not answer: no busy loop, ever.
const MIN_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// While a session is disconnected, its client retries with a back-off that grows to
/// seconds. So after this long we also try a new session every `PROBE_EVERY`: whichever
/// connects first wins, and a returning ZooKeeper is noticed within about a second.
const PROBE_AFTER: Duration = Duration::from_secs(1);
const PROBE_EVERY: Duration = Duration::from_secs(1);

impl SnapshotKeeper {
    /// The thread's loop: (re)connect, read what changed, publish, resolve, flush; then
    /// sleep until the next message or deadline.
    fn run(mut self, messages: mpsc::Receiver<Message>, events: mpsc::Sender<Message>) {
        let mut store: Option<Arc<ZkState>> = None;
        let mut retry = MIN_RETRY;
        let mut retry_at = Instant::now();
        let flush_every = self.settings.sizes.as_ref().map(|sizes| sizes.flush_every);
        // The first flush comes at a random point of the interval's second half:
        // coordinators started together (a deploy) would otherwise flush in step, and their
        // compare-and-sets on the same size nodes would conflict and go again.
        let mut next_flush = flush_every
            .map(|every| Instant::now() + every.mul_f64(0.5 + rand::random::<f64>() / 2.0));
        let size_refresh = self.settings.sizes.as_ref().map(|s| s.refresh_every);
        let phase = size_refresh
            .unwrap_or_default()
            .mul_f64(rand::random::<f64>());
        let mut plan = ReadPlan::new(size_refresh, phase);
        let mut next_resolve = Instant::now() + self.settings.resolve_every;
        let mut disconnected_since: Option<Instant> = None;
        let mut probe_at = Instant::now();
        loop {
            let now = Instant::now();
            if store.is_some()
                && disconnected_since.is_some_and(|since| since.elapsed() >= PROBE_AFTER)
                && now >= probe_at
            {
                match self.open(&events, PROBE_EVERY.min(self.settings.zk_timeout)) {
                    Ok(fresh) => {
                        log_line!("ZooKeeper answers again; the old session had not reconnected yet, using the new one");
                        store = Some(fresh);
                        disconnected_since = None;
                        plan.everything();
                        retry_at = Instant::now();
                    }
                    Err(_) => probe_at = Instant::now() + PROBE_EVERY,
                }
            }
            if now >= retry_at {
                if store.is_none() {
                    match self.open(&events, self.settings.zk_timeout) {
                        Ok(opened) => {
                            store = Some(opened);
                            disconnected_since = None;
                            plan.everything();
                        }
                        Err(err) => log_line!("{err}; retrying in {:.1}s", retry.as_secs_f64()),
                    }
                }
                // Readers may act on a snapshot at once: the session goes out first.
                self.session.set(&store);
                let mut failed = false;
                // While disconnected, calls would only time out: wait for the client to
                // reconnect (or a probe to find ZooKeeper back) instead.
                if let Some(current) = store.as_ref().filter(|_| disconnected_since.is_none()) {
                    if let Some(reads) = plan.take_due(Instant::now()) {
                        match self.read(current, &reads) {
                            Ok(changed) => {
                                self.health.read_now();
                                plan.size_nodes(self.raw.sizes.len());
                                if changed {
                                    self.publish();
                                }
                                retry = MIN_RETRY;
                            }
                            Err(err) => {
                                plan.failed(reads);
                                failed = true;
                                self.check_session(&mut store, &err, "reading the configuration")
                            }
                        }
                    }
                }
                if store.is_none() || failed {
                    retry_at = Instant::now() + retry;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
            if Instant::now() >= next_resolve {
                self.refresh_addresses();
                next_resolve = Instant::now() + self.settings.resolve_every;
            }
            if next_flush.is_some_and(|at| Instant::now() >= at) {
                // Increments stay pending while disconnected; none is lost.
                if let Some(current) = store.as_ref().filter(|_| disconnected_since.is_none()) {
                    // Also a liveness probe: `zookeeper_last_read_ms` stays small while
                    // ZooKeeper answers, even when nothing changes.
                    let probe = current
                        .session()
                        .get(&self.paths.shards_map())
                        .map(|_| self.health.read_now());
                    if let Err(err) = probe.and_then(|()| self.flush(current, FlushScope::Due)) {
                        self.check_session(&mut store, &err, "applying size increments");
                    }
                }
                next_flush = flush_every.map(|every| Instant::now() + every);
            }
            self.session.set(&store);
            // Sleep until a message, a read that falls due, a retry or the next flush.
            let mut wake = next_flush.map_or(next_resolve, |at| at.min(next_resolve));
            if store.is_none() {
                wake = wake.min(retry_at);
            }
            // Reads wait while disconnected: the reconnection (or a probe) wakes us then.
            if store.is_some() && disconnected_since.is_none() {
                if let Some(due) = plan.due_at(Instant::now()) {
                    wake = wake.min(due.max(retry_at));
                }
            }
            if store.is_some() && disconnected_since.is_some() {
                wake = wake.min(probe_at.max(Instant::now() + Duration::from_millis(100)));
            }
            let mut next = messages
                .recv_timeout(wake.saturating_duration_since(Instant::now()))
                .ok();
            while let Some(message) = next {
                match message {
                    Message::Zk(generation, _) if generation != self.generation => {}
                    Message::Zk(_, ZkEvent::Changed(path)) => {
                        plan.changed(path);
                        retry_at = retry_at.min(Instant::now());
                    }
                    Message::Zk(_, ZkEvent::Session(SessionState::SyncConnected)) => {
                        disconnected_since = None;
                        // Back after a disconnection: re-read everything, so a change made
                        // while we were away is not missed.
                        log_line!("ZooKeeper connection back; re-reading the configuration");
                        self.health.set_state("connected");
                        plan.everything();
                        retry = MIN_RETRY;
                        retry_at = Instant::now();
                    }
                    Message::Zk(_, ZkEvent::Session(state)) if state.is_terminated() => {
                        log_line!("ZooKeeper session ended ({state}); opening a new one");
                        self.health.set_state("connecting");
                        store = None;
                        retry = MIN_RETRY;
                        retry_at = Instant::now();
                    }
                    Message::Zk(_, ZkEvent::Session(state)) => {
                        // The client reports every reconnect attempt; act on the first.
                        if disconnected_since.is_none() {
                            log_line!(
                                "ZooKeeper connection: {state}; serving the last configuration"
                            );
                            self.health.set_state("disconnected");
                            disconnected_since = Some(Instant::now());
                            probe_at = Instant::now() + PROBE_AFTER;
                        }
                    }
                    Message::Flush(done) => {
                        if let Some(current) = &store {
                            if let Err(err) = self.flush(current, FlushScope::All) {
                                log_line!("applying size increments failed: {err}");
                            }
                        }
                        let _ = done.send(());
                    }
                    Message::Stop(done) => {
                        self.session.set(&None);
                        drop(store);
                        let _ = done.send(());
                        return;
                    }
                }
                next = messages.try_recv().ok();
            }
        }
    }
}
