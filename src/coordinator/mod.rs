//! `backpack-coordinator`: takes `PUT` uploads and places them on shards.
//!
//! Where things are: `upload` is the write path, start to finish; it reads the
//! configuration snapshot that `crate::cluster` keeps current (the only code that talks
//! to ZooKeeper); `command` parses the command line and starts everything.

pub mod command;
mod console;
mod copies;
mod memory_budget;
mod metrics;
mod node_health;
pub mod node_key;
mod node_put;
mod outcome;
mod payload;
pub mod placement;
mod recent;
mod stats;
mod statsd;
pub mod upload;

use crate::cluster::sizes::PendingSizes;
use crate::cluster::snapshot::SnapshotCell;
use crate::cluster::sync::ZkHealth;
use crate::http::{Body, Handler, Request, Response, ServerStatus};
use node_health::NodeHealth;
use stats::Stats;
use std::path::PathBuf;
use std::sync::Arc;

/// What the write path is tuned by (from the command line).
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Largest body accepted (413 above).
    pub max_body: u64,
    /// Bodies up to this size are kept in memory; larger ones are spooled while streamed.
    pub memory_body: u64,
    pub spool_dir: PathBuf,
    /// How many shards an upload may try before it fails.
    pub shard_attempts: usize,
    /// One log line per stored upload (failures are always logged).
    pub log_uploads: bool,
    /// Nodes of one shard that must store an upload before it is acknowledged
    /// (`--sync-copies`; 1 stores on one node and queues the rest).
    pub sync_copies: usize,
}

/// Everything a request handler shares.
pub struct Coordinator {
    pub settings: UploadSettings,
    snapshot: Arc<SnapshotCell>,
    sizes: Arc<PendingSizes>,
    stats: Stats,
    nodes: NodeHealth,
    agents: crate::transport::node_http::NodeAgents,
    /// Caps the bytes of bodies held in memory (see `memory_budget`).
    memory: memory_budget::MemoryBudget,
    zk_health: Arc<ZkHealth>,
    metrics: metrics::Metrics,
    statsd: Option<Arc<statsd::Statsd>>,
    server: Arc<ServerStatus>,
    /// Uploads of the last minute, for the console.
    recent: recent::RecentUploads,
    /// Shards already logged as too small for `--sync-copies` (each is logged once).
    small_shards: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl Coordinator {
    /// Counts an answered upload everywhere it is counted: `/stats`, `/metrics`, statsd.
    fn record_upload(&self, status: u16, bytes: u64, elapsed: std::time::Duration) {
        if status == 200 {
            self.stats.stored(bytes);
        } else {
            self.stats.failed();
        }
        self.metrics.upload(status, bytes, elapsed.as_secs_f64());
        self.recent.record(status == 200, elapsed);
        if let Some(statsd) = &self.statsd {
            statsd.upload(status == 200, elapsed.as_secs_f64() * 1000.0);
        }
    }

    fn stats_answer(&self) -> Response {
        let snapshot = self.snapshot.current();
        let queue_length = snapshot
            .as_deref()
            .and_then(|s| s.queue.as_ref())
            .and_then(|queue| queue.length().ok());
        let mut document = self.stats.document(snapshot.as_deref(), queue_length);
        // Beyond the old coordinator's fields: how current the configuration is.
        document["zookeeper_state"] = self.zk_health.state().into();
        document["zookeeper_last_read_ms"] = self
            .zk_health
            .since_last_read()
            .map(|d| d.as_millis() as u64)
            .into();
        Response::json(200, &document)
    }

    fn metrics_answer(&self) -> Response {
        let snapshot = self.snapshot.current();
        let readings = metrics::Readings {
            queue_length: snapshot
                .as_deref()
                .and_then(|s| s.queue.as_ref())
                .and_then(|queue| queue.length().ok()),
            zk_state: self.zk_health.state(),
            open_connections: self.server.open_connections(),
            active_workers: self.server.active_workers(),
            memory_body_bytes: self.memory.used(),
            zk_counts: crate::zk::counts(),
            snapshots: self.snapshot.published(),
        };
        let text = self.metrics.render(snapshot.as_deref(), readings);
        Response::plain(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            text.into_bytes(),
        )
    }
}

impl Handler for Coordinator {
    fn call(&self, request: &Request, body: &mut Body<'_>) -> Response {
        match request.method.as_str() {
            "PUT" => upload::handle(self, request, body),
            "GET" | "HEAD" => match request.path() {
                "/" => self.console_answer(),
                "/status.json" => self.status_answer(),
                "/stats" => self.stats_answer(),
                "/metrics" => self.metrics_answer(),
                _ => Response::error(
                    404,
                    "not found: uploads are PUT; the console is GET /, its data /status.json, statistics /stats and /metrics",
                ),
            },
            other => Response::error(405, &format!("method {other} is not allowed"))
                .with_header("Allow", "GET, HEAD, PUT".into()),
        }
    }
}
