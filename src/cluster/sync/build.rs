//! Building a configuration snapshot from the nodes' JSON as last read: parse, resolve
//! host names, attach Redis pools.

use super::read::Raw;
use crate::cluster::snapshot::{Node, Shard, Snapshot};
use crate::js_json::compare_ids;
use crate::log_line;
use crate::replication_queue::ReplicationQueue;
use crate::state::queue::QueueInfo;
use crate::state::shards::ShardEntry;
use crate::state::{servers, shard_size, shards, Paths};
use crate::transport::peer::resolve as lookup;
use crate::transport::redis::RedisPool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A map as last parsed, and the read of its node it was parsed from.
type Parsed<T> = Option<(u64, Arc<T>)>;

/// Builds snapshots, keeping what is costly to build again: parsed maps, host name
/// lookups, Redis pools.
pub(super) struct Builder {
    paths: Paths,
    /// Whether the process uses the replication queue: if so, no snapshot is built before
    /// `<root>/queue` exists.
    uses_queue: bool,
    redis_timeout: Duration,
    /// The node map, kept until the servers-map is read again or an address changes.
    nodes: Parsed<HashMap<String, Node>>,
    /// The shard map sorted by id, kept until the shards-map is read again.
    shards: Parsed<Vec<(String, ShardEntry)>>,
    /// Host name lookups, redone when the servers-map is read again and every
    /// `--resolve-every` (`refresh_addresses`).
    resolved: HashMap<(String, u16), Option<SocketAddr>>,
    /// Redis pools by address: they live across snapshots.
    pools: HashMap<SocketAddr, Arc<RedisPool>>,
}

/// The map in `parsed` when it was parsed from read number `read` of its node.
fn current<T>(parsed: &Parsed<T>, read: u64) -> Option<Arc<T>> {
    parsed
        .as_ref()
        .filter(|(parsed_at, _)| *parsed_at == read)
        .map(|(_, map)| Arc::clone(map))
}

impl Builder {
    pub(super) fn new(paths: Paths, uses_queue: bool, redis_timeout: Duration) -> Builder {
        Builder {
            paths,
            uses_queue,
            redis_timeout,
            nodes: None,
            shards: None,
            resolved: HashMap::new(),
            pools: HashMap::new(),
        }
    }

    /// Builds a snapshot from `raw`, or says what keeps it back. The node and shard maps
    /// are parsed (and host names looked up) only when their node was read since the last
    /// build; a snapshot after a size poll only adds the sizes, which with thousands of
    /// shards is what keeps it cheap.
    pub(super) fn build(&mut self, raw: &Raw) -> Result<Snapshot, String> {
        let nodes = self.nodes(raw)?;
        let entries = self.shards(raw)?;
        // Only processes that use the queue wait for it (bp-nginx-gen does not).
        let queue_path = self.paths.queue();
        let queue = match self.uses_queue {
            true => {
                let doc = raw.queue.required(&queue_path)?;
                Some(QueueInfo::parse(&queue_path, doc).map_err(|e| e.to_string())?)
            }
            false => None,
        };
        let shard_list: Vec<Shard> = entries
            .iter()
            .map(|(id, shard)| {
                let size = match raw.sizes.get(id) {
                    Some(Some((doc, _))) => shard_size::parse(&self.paths.shard_size(id), doc)
                        .map_err(|err| log_line!("shard {id} takes no uploads: {err}"))
                        .ok(),
                    _ => None,
                };
                Shard {
                    id: id.clone(),
                    nodes: shard.nodes.clone(),
                    read_only: shard.read_only,
                    size,
                }
            })
            .collect();

        let queue = queue.map(|queue| self.queue_handle(queue));
        Ok(Snapshot {
            nodes,
            shards: shard_list,
            queue,
        })
    }

    /// The node map: as last parsed, or parsed now from a servers-map read since.
    fn nodes(&mut self, raw: &Raw) -> Result<Arc<HashMap<String, Node>>, String> {
        let read = raw.servers.reads;
        if let Some(nodes) = current(&self.nodes, read) {
            return Ok(nodes);
        }
        if self.nodes.is_some() {
            // A new servers-map: look every name up again.
            self.resolved.clear();
        }
        let path = self.paths.servers_map();
        let servers =
            servers::parse(&path, raw.servers.required(&path)?).map_err(|e| e.to_string())?;
        let mut nodes = HashMap::new();
        for (id, endpoint) in servers {
            let addr = self.resolve(&endpoint.host, endpoint.port);
            nodes.insert(id, Node { endpoint, addr });
        }
        let nodes = Arc::new(nodes);
        self.nodes = Some((read, Arc::clone(&nodes)));
        Ok(nodes)
    }

    /// The shard map sorted by id: as last parsed, or parsed now.
    fn shards(&mut self, raw: &Raw) -> Result<Arc<Vec<(String, ShardEntry)>>, String> {
        let read = raw.shards.reads;
        if let Some(entries) = current(&self.shards, read) {
            return Ok(entries);
        }
        let path = self.paths.shards_map();
        let mut entries: Vec<(String, ShardEntry)> =
            shards::parse(&path, raw.shards.required(&path)?)
                .map_err(|e| e.to_string())?
                .into_iter()
                .collect();
        entries.sort_by(|a, b| compare_ids(&a.0, &b.0));
        let entries = Arc::new(entries);
        self.shards = Some((read, Arc::clone(&entries)));
        Ok(entries)
    }

    /// The queue with a pool per server that resolves (pools live across snapshots).
    fn queue_handle(&mut self, queue: QueueInfo) -> ReplicationQueue {
        let mut pools = Vec::new();
        for server in &queue.servers {
            let Some(addr) = self.resolve(&server.host, server.port) else {
                continue;
            };
            let timeout = self.redis_timeout;
            let pool = self
                .pools
                .entry(addr)
                .or_insert_with(|| Arc::new(RedisPool::new(addr, timeout)));
            pools.push(Arc::clone(pool));
        }
        ReplicationQueue::new(queue.key, pools)
    }

    /// The address of `host:port`, looked up once and then taken from the cache until
    /// `refresh_addresses` looks it up again.
    fn resolve(&mut self, host: &str, port: u16) -> Option<SocketAddr> {
        let key = (host.to_string(), port);
        if let Some(addr) = self.resolved.get(&key) {
            return *addr;
        }
        let addr = lookup(host, port);
        if addr.is_none() {
            log_line!("cannot resolve {host}:{port}; its node takes no uploads until it resolves");
        }
        self.resolved.insert(key, addr);
        addr
    }

    /// Looks every cached name up again: true when an address changed, or a name resolves
    /// now after failing (or fails now): a new snapshot is due. Lookups run here, on the
    /// ZooKeeper thread; uploads only ever see addresses.
    pub(super) fn refresh_addresses(&mut self) -> bool {
        let mut changed = false;
        for ((host, port), addr) in self.resolved.iter_mut() {
            let fresh = lookup(host, *port);
            if fresh != *addr {
                match fresh {
                    Some(to) => log_line!("{host}:{port} now resolves to {to}"),
                    None => log_line!("cannot resolve {host}:{port} any more; its node takes no uploads until it resolves"),
                }
                *addr = fresh;
                changed = true;
            }
        }
        if changed {
            self.nodes = None;
        }
        changed
    }
}
