//! Building a configuration snapshot from the nodes' JSON as last read: parse, resolve
//! host names, attach Redis pools.

use super::SnapshotKeeper;
use crate::cluster::snapshot::{Node, Shard, Snapshot};
use crate::js_json::compare_ids;
use crate::log_line;
use crate::replication_queue::ReplicationQueue;
use crate::state::queue::QueueInfo;
use crate::state::shards::ShardEntry;
use crate::state::{servers, shard_size, shards};
use crate::transport::peer::resolve as lookup;
use crate::transport::redis::RedisPool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The node and shard maps as last parsed, kept until their ZooKeeper node changes (or,
/// for nodes, an address does).
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) nodes: Option<Arc<HashMap<String, Node>>>,
    pub(super) shards: Option<Arc<Vec<(String, ShardEntry)>>>,
}

impl SnapshotKeeper {
    /// Builds a snapshot. The node and shard maps are parsed (and host names looked up)
    /// only when their node changed since the last build; a snapshot after a size poll
    /// only adds the sizes, which with thousands of shards is what keeps it cheap.
    pub(super) fn build(&mut self) -> Result<Snapshot, String> {
        let missing =
            |path: String| format!("{path}: not initialized? (run backpack-coordinator-init)");
        let nodes = match &self.parsed.nodes {
            Some(nodes) => Arc::clone(nodes),
            None => {
                let path = self.paths.servers_map();
                let doc = self
                    .raw
                    .servers
                    .as_ref()
                    .ok_or_else(|| missing(path.clone()))?;
                let servers = servers::parse(&path, doc).map_err(|e| e.to_string())?;
                let mut nodes = HashMap::new();
                for (id, endpoint) in servers {
                    let addr = self.resolve(&endpoint.host, endpoint.port);
                    nodes.insert(id, Node { endpoint, addr });
                }
                let nodes = Arc::new(nodes);
                self.parsed.nodes = Some(Arc::clone(&nodes));
                nodes
            }
        };
        let entries = match &self.parsed.shards {
            Some(entries) => Arc::clone(entries),
            None => {
                let path = self.paths.shards_map();
                let doc = self
                    .raw
                    .shards
                    .as_ref()
                    .ok_or_else(|| missing(path.clone()))?;
                let mut entries: Vec<(String, ShardEntry)> = shards::parse(&path, doc)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect();
                entries.sort_by(|a, b| compare_ids(&a.0, &b.0));
                let entries = Arc::new(entries);
                self.parsed.shards = Some(Arc::clone(&entries));
                entries
            }
        };
        // Only processes that use the queue wait for it (bp-nginx-gen does not).
        let queue_path = self.paths.queue();
        let queue = match (&self.raw.queue, self.settings.uses_queue) {
            (Some(doc), true) => {
                Some(QueueInfo::parse(&queue_path, doc).map_err(|e| e.to_string())?)
            }
            (None, true) => return Err(missing(queue_path)),
            (_, false) => None,
        };
        let shard_list: Vec<Shard> = entries
            .iter()
            .map(|(id, shard)| {
                let size = match self.raw.sizes.get(id) {
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

    /// The queue with a pool per server that resolves (pools live across snapshots).
    fn queue_handle(&mut self, queue: QueueInfo) -> ReplicationQueue {
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

    /// Looks every cached name up again: an address that changed, or a name that resolves
    /// now after failing (or fails now), gives a new snapshot. Lookups run here, on the
    /// ZooKeeper thread; uploads only ever see addresses.
    pub(super) fn refresh_addresses(&mut self) {
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
            self.parsed.nodes = None;
            self.publish();
        }
    }
}
