//! The ZooKeeper thread: keeps the configuration snapshot current and applies size
//! increments.
//!
//! It owns the ZooKeeper session on its own OS thread (never on a `may` worker). Every
//! node it reads it also watches; a watch that fires re-reads just that node (which
//! re-arms the watch) and publishes a new snapshot. When the session breaks, it connects
//! again with back-off and re-reads everything, so a change made meanwhile is not missed.
//! Every `--size-flush` it applies the pending size increments with compare-and-set.

use super::sizes::PendingSizes;
use super::snapshot::{Node, Queue, Shard, Snapshot, SnapshotCell};
use crate::error::{Error, Result};
use crate::js_json::compare_ids;
use crate::log_line;
use crate::state::queue::QueueInfo;
use crate::state::{servers, shard_size, shards, Paths};
use crate::store::Store;
use crate::transport::redis::RedisPool;
use crate::zk::ZkEvent;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use zookeeper_client::SessionState;

pub struct SyncSettings {
    pub zk_servers: String,
    pub root: String,
    pub zk_timeout: Duration,
    pub size_flush: Duration,
    pub redis_timeout: Duration,
}

enum Message {
    Zk(ZkEvent),
    /// Apply pending sizes now and answer (clean shutdown).
    Flush(mpsc::Sender<()>),
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
}

/// The nodes' JSON as last read (None: the node does not exist).
#[derive(Default)]
struct Raw {
    servers: Option<Value>,
    shards: Option<Value>,
    queue: Option<Value>,
    sizes: HashMap<String, Option<Value>>,
}

struct Sync {
    settings: SyncSettings,
    paths: Paths,
    cell: Arc<SnapshotCell>,
    sizes: Arc<PendingSizes>,
    raw: Raw,
    /// Host name lookups, redone when servers-map changes.
    resolved: HashMap<(String, u16), Option<SocketAddr>>,
    pools: HashMap<SocketAddr, Arc<RedisPool>>,
    /// What the last snapshot attempt was waiting for, to log a change only once.
    waiting_for: Option<String>,
}

pub fn start(
    settings: SyncSettings,
    cell: Arc<SnapshotCell>,
    sizes: Arc<PendingSizes>,
) -> Result<SyncHandle> {
    let paths = Paths::new(&settings.root)?;
    let (sender, messages) = mpsc::channel();
    let events = sender.clone();
    let sync = Sync {
        settings,
        paths,
        cell,
        sizes,
        raw: Raw::default(),
        resolved: HashMap::new(),
        pools: HashMap::new(),
        waiting_for: None,
    };
    thread::Builder::new()
        .name("zookeeper-sync".into())
        .spawn(move || sync.run(messages, events))
        .map_err(|err| Error::invalid(format!("cannot start the ZooKeeper thread: {err}")))?;
    Ok(SyncHandle { messages: sender })
}

impl Sync {
    fn run(mut self, messages: mpsc::Receiver<Message>, events: mpsc::Sender<Message>) {
        let mut store: Option<Store> = None;
        let mut backoff = Duration::from_millis(200);
        let mut next_flush = Instant::now() + self.settings.size_flush;
        let mut dirty: HashSet<String> = HashSet::new();
        let mut reload_all = true;
        loop {
            if store.is_none() {
                let events = events.clone();
                match Store::open_watching(
                    &self.settings.zk_servers,
                    &self.settings.root,
                    self.settings.zk_timeout,
                    move |event| {
                        let _ = events.send(Message::Zk(event));
                    },
                ) {
                    Ok(opened) => {
                        log_line!("ZooKeeper session open ({})", self.settings.zk_servers);
                        store = Some(opened);
                        backoff = Duration::from_millis(200);
                        reload_all = true;
                    }
                    Err(err) => log_line!("{err}; retrying in {:.1}s", backoff.as_secs_f64()),
                }
            }
            if let Some(current) = &store {
                let loaded = if reload_all {
                    self.reload_everything(current)
                } else {
                    dirty.iter().try_for_each(|path| self.reload(current, path))
                };
                match loaded {
                    Ok(()) => {
                        if reload_all || !dirty.is_empty() {
                            self.publish();
                        }
                        reload_all = false;
                        dirty.clear();
                    }
                    Err(err) => {
                        log_line!("reading the configuration failed: {err}; reconnecting");
                        store = None;
                    }
                }
            }
            if Instant::now() >= next_flush {
                if let Some(current) = &store {
                    if let Err(err) = self.flush(current) {
                        log_line!("applying size increments failed: {err}; reconnecting");
                        store = None;
                    }
                }
                next_flush = Instant::now() + self.settings.size_flush;
            }
            let wait = if store.is_none() {
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                wait
            } else {
                next_flush.saturating_duration_since(Instant::now())
            };
            // Wait for a change, a flush request, or the next flush; then take every
            // message that queued up, so a burst of changes costs one rebuild.
            let mut next = messages.recv_timeout(wait).ok();
            while let Some(message) = next {
                match message {
                    Message::Zk(ZkEvent::Changed(path)) => {
                        dirty.insert(path);
                    }
                    Message::Zk(ZkEvent::Session(SessionState::SyncConnected)) => {
                        // Back after a disconnection: re-read everything, so a change made
                        // while we were away is not missed.
                        log_line!("ZooKeeper connection back");
                        reload_all = true;
                    }
                    Message::Zk(ZkEvent::Session(state)) if state.is_terminated() => {
                        log_line!("ZooKeeper session ended ({state}); opening a new one");
                        store = None;
                    }
                    Message::Zk(ZkEvent::Session(state)) => log_line!("ZooKeeper connection: {state}"),
                    Message::Flush(done) => {
                        if let Some(current) = &store {
                            if let Err(err) = self.flush(current) {
                                log_line!("applying size increments failed: {err}");
                            }
                        }
                        let _ = done.send(());
                    }
                }
                next = messages.try_recv().ok();
            }
        }
    }

    fn reload_everything(&mut self, store: &Store) -> Result<()> {
        for path in [
            self.paths.servers_map(),
            self.paths.shards_map(),
            self.paths.queue(),
        ] {
            self.reload(store, &path)?;
        }
        let ids: Vec<String> = self.raw.sizes.keys().cloned().collect();
        for id in ids {
            self.reload(store, &self.paths.shard_size(&id))?;
        }
        Ok(())
    }

    /// Re-reads one node (and re-arms its watch).
    fn reload(&mut self, store: &Store, path: &str) -> Result<()> {
        let read = |path: &str| -> Result<Option<Value>> {
            match store.session().get_watched(path)? {
                Some((bytes, _)) => crate::state::parse_object(path, &bytes).map(Some),
                None => Ok(None),
            }
        };
        if path == self.paths.servers_map() {
            self.raw.servers = read(path)?;
            self.resolved.clear();
        } else if path == self.paths.shards_map() {
            self.raw.shards = read(path)?;
            // Watch the size node of every shard; forget those of removed shards.
            let ids: Vec<String> = match &self.raw.shards {
                Some(Value::Object(map)) => map.keys().cloned().collect(),
                _ => Vec::new(),
            };
            self.raw.sizes.retain(|id, _| ids.contains(id));
            for id in ids {
                if !self.raw.sizes.contains_key(&id) {
                    let value = read(&self.paths.shard_size(&id))?;
                    self.raw.sizes.insert(id, value);
                }
            }
        } else if path == self.paths.queue() {
            self.raw.queue = read(path)?;
        } else if let Some(id) = path.strip_prefix(&self.paths.shard_size("")) {
            if self.raw.sizes.contains_key(id) {
                let value = read(path)?;
                self.raw.sizes.insert(id.to_string(), value);
            }
        }
        Ok(())
    }

    fn resolve(&mut self, host: &str, port: u16) -> Option<SocketAddr> {
        let key = (host.to_string(), port);
        if let Some(addr) = self.resolved.get(&key) {
            return *addr;
        }
        let addr = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next());
        if addr.is_none() {
            log_line!("cannot resolve {host}:{port}; its node takes no uploads until it resolves");
        }
        self.resolved.insert(key, addr);
        addr
    }

    fn wait_for(&mut self, what: Option<String>) {
        if what != self.waiting_for {
            if let Some(what) = &what {
                log_line!("waiting for {what}");
            }
            self.waiting_for = what;
        }
    }

    /// Builds a snapshot from what was read and publishes it; logs what keeps it back.
    fn publish(&mut self) {
        match self.build() {
            Ok(snapshot) => {
                self.wait_for(None);
                let writable: Vec<&str> =
                    snapshot.writable_shards().map(|s| s.id.as_str()).collect();
                log_line!(
                    "configuration: {} nodes, {} shards, writable: [{}]",
                    snapshot.nodes.len(),
                    snapshot.shards.len(),
                    writable.join(", ")
                );
                self.cell.publish(snapshot);
            }
            Err(why) => self.wait_for(Some(why)),
        }
    }

    fn build(&mut self) -> Result<Snapshot, String> {
        let missing =
            |path: String| format!("{path}: not initialized? (run backpack-coordinator-init)");
        let servers_path = self.paths.servers_map();
        let servers_doc = self
            .raw
            .servers
            .clone()
            .ok_or_else(|| missing(servers_path.clone()))?;
        let shards_path = self.paths.shards_map();
        let shards_doc = self
            .raw
            .shards
            .clone()
            .ok_or_else(|| missing(shards_path.clone()))?;
        let queue_path = self.paths.queue();
        let queue_doc = self
            .raw
            .queue
            .clone()
            .ok_or_else(|| missing(queue_path.clone()))?;
        let servers = servers::parse(&servers_path, &servers_doc).map_err(|e| e.to_string())?;
        let shard_map = shards::parse(&shards_path, &shards_doc).map_err(|e| e.to_string())?;
        let queue = QueueInfo::parse(&queue_path, &queue_doc).map_err(|e| e.to_string())?;

        let mut nodes = HashMap::new();
        for (id, endpoint) in servers {
            let addr = self.resolve(&endpoint.host, endpoint.port);
            nodes.insert(id.clone(), Node { id, endpoint, addr });
        }
        let mut shard_list: Vec<Shard> = shard_map
            .into_iter()
            .map(|(id, shard)| {
                let path = self.paths.shard_size(&id);
                let size = match self.raw.sizes.get(&id) {
                    Some(Some(doc)) => shard_size::parse(&path, doc)
                        .map_err(|err| log_line!("shard {id} takes no uploads: {err}"))
                        .ok(),
                    _ => None,
                };
                Shard {
                    id,
                    nodes: shard.nodes,
                    read_only: shard.read_only,
                    size,
                }
            })
            .collect();
        shard_list.sort_by(|a, b| compare_ids(&a.id, &b.id));

        let mut pools = Vec::new();
        for server in &queue.servers {
            let Some(addr) = self.resolve(&server.host, server.port) else {
                continue;
            };
            let timeout = self.settings.redis_timeout;
            let pool = self
                .pools
                .entry(addr)
                .or_insert_with(|| Arc::new(RedisPool::new(addr, timeout)));
            pools.push(Arc::clone(pool));
        }
        Ok(Snapshot {
            nodes,
            shards: shard_list,
            queue: Some(Queue {
                key: queue.key,
                pools,
            }),
        })
    }

    /// Applies pending size increments with compare-and-set. A total that fails goes
    /// back to be retried, unless its size node is gone (then it is dropped, logged).
    fn flush(&self, store: &Store) -> Result<()> {
        let totals = self.sizes.take();
        let mut failure = None;
        for (id, delta) in totals {
            if failure.is_some() {
                self.sizes.put_back(&id, delta);
                continue;
            }
            let path = self.paths.shard_size(&id);
            match store.update(&path, |doc| shard_size::add_current(&path, doc, delta)) {
                Ok(()) => {}
                Err(err @ (Error::NotInitialized { .. } | Error::BadState { .. })) => {
                    log_line!("dropping {delta} bytes of size increments for shard {id}: {err}")
                }
                Err(err) => {
                    self.sizes.put_back(&id, delta);
                    failure = Some(err);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }
}
