//! The operator's console: `GET /` (one HTML page) and `GET /status.json` (the same
//! data), the cluster at a glance as this coordinator sees it.
//!
//! `status` gathers the data once per request from the current snapshot and the
//! coordinator's own counters: every shard with its nodes, fill and state; every node
//! with its address and the failures this coordinator saw in the last minute; the queue
//! length and its oldest item's age on each Redis server; uploads over the last minute; ZooKeeper's state and the
//! configuration's age; version and uptime. `page` renders it, escaping every value that
//! came from ZooKeeper.

mod page;

use super::recent::RecentSummary;
use super::Observers;
use crate::cluster::snapshot::{Shard, Snapshot};
use crate::coordinator::upload::{NodeReport, Uploads};
use crate::http::Response;
use crate::state::shard_size;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

#[derive(Serialize)]
pub struct Status {
    pub version: String,
    pub uptime_seconds: u64,
    pub zookeeper: ZooKeeperStatus,
    pub totals: TotalsStatus,
    pub uploads: UploadsStatus,
    pub upload_tokens: UploadTokensStatus,
    pub queue: Vec<QueueServer>,
    pub shards: Vec<ShardStatus>,
    pub nodes: Vec<NodeStatus>,
}

#[derive(Serialize)]
pub struct ZooKeeperStatus {
    pub state: &'static str,
    /// Seconds since the configuration was last read (None: never).
    pub configuration_age_seconds: Option<f64>,
}

#[derive(Serialize)]
pub struct TotalsStatus {
    pub shards: usize,
    pub writable_shards: u64,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Serialize)]
pub struct UploadsStatus {
    pub last_minute: RecentSummary,
    pub stored_since_start: u64,
    pub failed_since_start: u64,
}

/// Whether uploads need a signed token, and the ids of the keys in force (never the
/// secrets).
#[derive(Serialize)]
pub struct UploadTokensStatus {
    pub required: bool,
    pub key_ids: Vec<String>,
    /// The `--upload-keys` file.
    pub keys_file: Option<String>,
    /// Seconds since the keys in force were read from it.
    pub keys_loaded_seconds_ago: Option<f64>,
}

fn upload_tokens_status(uploads: &Uploads) -> UploadTokensStatus {
    let ring = uploads.upload_keys();
    UploadTokensStatus {
        required: ring.is_some(),
        key_ids: ring.map_or_else(Vec::new, |ring| {
            ring.current().ids().map(str::to_string).collect()
        }),
        keys_file: ring.map(|ring| ring.path().display().to_string()),
        keys_loaded_seconds_ago: ring.map(|ring| {
            ring.loaded_at()
                .elapsed()
                .map_or(0.0, |ago| ago.as_secs_f64())
        }),
    }
}

#[derive(Serialize)]
pub struct QueueServer {
    pub server: String,
    /// None when the server did not answer.
    pub length: Option<u64>,
    /// Age of the oldest queued item with a record of when it was queued; None when the
    /// server did not answer or no queued item has one.
    pub oldest_queued_seconds: Option<f64>,
    /// Items queued without such a record (by old tools); None when no answer.
    pub unrecorded_items: Option<u64>,
    /// Items in the dead set on that server (see `backpack-replicator-dead`).
    pub dead_items: Option<u64>,
}

#[derive(Serialize)]
pub struct ShardStatus {
    pub id: String,
    /// `rw`, `r`, `full`, or `no size` (`state::shard_size::state_word`).
    pub state: &'static str,
    pub nodes: Vec<String>,
    pub capacity_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    /// used / capacity, 0 to 1 (over 1 when a shard overflowed).
    pub used_ratio: Option<f64>,
}

#[derive(Serialize)]
pub struct NodeStatus {
    pub id: String,
    /// `host:port` from the servers-map; None for a node a shard names but the map lacks.
    pub address: Option<String>,
    pub shards: Vec<String>,
    pub failures_last_minute: usize,
    pub last_error: Option<String>,
    pub last_error_seconds_ago: Option<f64>,
    /// Failed within `--node-cooldown`: uploads try it last.
    pub tried_last: bool,
}

fn shard_status(shard: &Shard) -> ShardStatus {
    ShardStatus {
        id: shard.id.clone(),
        state: shard_size::state_word(shard.read_only, shard.size.as_ref()),
        nodes: shard.nodes.clone(),
        capacity_bytes: shard.size.map(|size| size.capacity),
        used_bytes: shard.size.map(|size| size.current),
        used_ratio: shard
            .size
            .filter(|size| size.capacity > 0)
            .map(|size| size.current as f64 / size.capacity as f64),
    }
}

/// Ids in the order an operator reads them: numbers by value, then the rest.
fn sorted_ids(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.collect::<BTreeSet<_>>().into_iter().collect();
    ids.sort_by_key(|id| (id.parse::<u64>().map_or(u64::MAX, |n| n), id.clone()));
    ids
}

fn node_statuses(snapshot: &Snapshot, health: &HashMap<String, NodeReport>) -> Vec<NodeStatus> {
    let mut shards_of: HashMap<&str, Vec<String>> = HashMap::new();
    for shard in &snapshot.shards {
        for node in &shard.nodes {
            shards_of.entry(node).or_default().push(shard.id.clone());
        }
    }
    let ids = snapshot
        .nodes
        .keys()
        .cloned()
        .chain(shards_of.keys().map(|id| id.to_string()));
    sorted_ids(ids)
        .into_iter()
        .map(|id| {
            let report = health.get(&id);
            NodeStatus {
                address: snapshot
                    .nodes
                    .get(&id)
                    .map(|node| node.endpoint.to_string()),
                shards: shards_of.remove(id.as_str()).unwrap_or_default(),
                failures_last_minute: report.map_or(0, |r| r.failures_last_minute),
                last_error: report.and_then(|r| r.last_error.as_ref().map(|(why, _)| why.clone())),
                last_error_seconds_ago: report
                    .and_then(|r| r.last_error.as_ref().map(|(_, ago)| ago.as_secs_f64())),
                tried_last: report.is_some_and(|r| r.cooling_down),
                id,
            }
        })
        .collect()
}

impl Observers {
    /// Everything the console shows, read now.
    fn status(&self, uploads: &Uploads) -> Status {
        let snapshot = self.snapshots.current();
        let snapshot = snapshot.as_deref();
        let totals = snapshot.map(Snapshot::totals).unwrap_or_default();
        let queue = snapshot
            .and_then(|s| s.queue.as_ref())
            .map(|queue| {
                queue
                    .pools
                    .iter()
                    .zip(queue.ages())
                    .zip(queue.dead().counts())
                    .map(|((pool, ages), dead_items)| QueueServer {
                        server: pool.addr.to_string(),
                        length: ages.map(|a| a.length),
                        oldest_queued_seconds: ages.and_then(|a| a.oldest_seconds),
                        unrecorded_items: ages.map(|a| a.unrecorded),
                        dead_items,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let health = uploads.node_report();
        Status {
            version: crate::version::version(),
            uptime_seconds: self.stats.uptime().as_secs(),
            zookeeper: ZooKeeperStatus {
                state: self.zk_health.state(),
                configuration_age_seconds: self
                    .zk_health
                    .since_last_read()
                    .map(|d| d.as_secs_f64()),
            },
            totals: TotalsStatus {
                shards: snapshot.map_or(0, |s| s.shards.len()),
                writable_shards: totals.writable_shards,
                capacity_bytes: totals.capacity,
                used_bytes: totals.used,
            },
            uploads: UploadsStatus {
                last_minute: self.recent.summary(),
                stored_since_start: self.stats.stored_count(),
                failed_since_start: self.stats.failed_count(),
            },
            upload_tokens: upload_tokens_status(uploads),
            queue,
            shards: snapshot.map_or_else(Vec::new, |s| s.shards.iter().map(shard_status).collect()),
            nodes: snapshot.map_or_else(Vec::new, |s| node_statuses(s, &health)),
        }
    }

    /// `GET /status.json`.
    pub fn status_answer(&self, uploads: &Uploads) -> Response {
        match serde_json::to_value(self.status(uploads)) {
            Ok(document) => Response::json(200, &document),
            Err(err) => Response::error(500, &format!("cannot encode the status: {err}")),
        }
    }

    /// `GET /`.
    pub fn console_answer(&self, uploads: &Uploads) -> Response {
        Response::plain(
            200,
            "text/html; charset=utf-8",
            page::render(&self.status(uploads)).into_bytes(),
        )
    }
}
