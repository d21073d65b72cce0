//! What watches the uploads: counters since start and `GET /stats` (`stats`), `GET
//! /metrics` (`metrics`), statsd (`statsd`), the last minute of uploads (`recent`), and the
//! console (`console`: `GET /` and `/status.json`).
//!
//! `Observers` hears every upload through `UploadEvents`; the answers read the current
//! snapshot and, for what only the upload path knows (node health, bodies in memory), the
//! `Uploads` they are handed. Nothing here is on an upload's way to its answer but the
//! events, which only add to counters.

mod console;
mod metrics;
mod recent;
mod stats;
pub mod statsd;

use super::upload::{UploadEvents, Uploads};
use crate::cluster::snapshot::{Snapshot, SnapshotCell};
use crate::cluster::sync::ZkHealth;
use crate::http::{Response, ServerStatus};
use crate::upload_auth::key_ring::KeyEvents;
use metrics::Metrics;
use recent::RecentUploads;
use stats::Stats;
use statsd::Statsd;
use std::sync::Arc;
use std::time::Duration;

/// The coordinator's counters and the answers that report them.
pub struct Observers {
    snapshots: Arc<SnapshotCell>,
    zk_health: Arc<ZkHealth>,
    server: Arc<ServerStatus>,
    stats: Stats,
    metrics: Metrics,
    statsd: Option<Arc<Statsd>>,
    /// Uploads of the last minute, for the console.
    recent: RecentUploads,
}

/// The queue's length on the first Redis server that answers; None when none does.
pub fn queue_length(snapshot: Option<&Snapshot>) -> Option<u64> {
    snapshot?.queue.as_ref()?.length().ok()
}

impl Observers {
    pub fn new(
        snapshots: Arc<SnapshotCell>,
        zk_health: Arc<ZkHealth>,
        server: Arc<ServerStatus>,
        statsd: Option<Arc<Statsd>>,
    ) -> Observers {
        Observers {
            snapshots,
            zk_health,
            server,
            stats: Stats::default(),
            metrics: Metrics::default(),
            statsd,
            recent: RecentUploads::default(),
        }
    }

    /// `GET /stats`: the old coordinator's fields, and how current the configuration is.
    pub fn stats_answer(&self) -> Response {
        let snapshot = self.snapshots.current();
        let mut document = self
            .stats
            .document(snapshot.as_deref(), queue_length(snapshot.as_deref()));
        document["zookeeper_state"] = self.zk_health.state().into();
        document["zookeeper_last_read_ms"] = self
            .zk_health
            .since_last_read()
            .map(|d| d.as_millis() as u64)
            .into();
        Response::json(200, &document)
    }

    /// `GET /metrics`.
    pub fn metrics_answer(&self, uploads: &Uploads) -> Response {
        let snapshot = self.snapshots.current();
        let readings = metrics::Readings {
            queue_length: queue_length(snapshot.as_deref()),
            zk_state: self.zk_health.state(),
            open_connections: self.server.open_connections(),
            active_workers: self.server.active_workers(),
            memory_body_bytes: uploads.memory_in_use(),
            zk_counts: crate::zk::counts(),
            snapshots: self.snapshots.published(),
            upload_keys: uploads
                .upload_keys()
                .map(|ring| ring.current().ids().count()),
        };
        let text = self.metrics.render(snapshot.as_deref(), readings);
        Response::plain(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            text.into_bytes(),
        )
    }
}

impl UploadEvents for Observers {
    fn answered(&self, status: u16, bytes: u64, elapsed: Duration) {
        if status == 200 {
            self.stats.stored(bytes);
        } else {
            self.stats.failed();
        }
        self.metrics.upload(status, bytes, elapsed.as_secs_f64());
        self.recent.record(status, elapsed);
        if let Some(statsd) = &self.statsd {
            statsd.upload(status == 200, elapsed.as_secs_f64() * 1000.0);
        }
    }

    fn refused_auth(&self, reason: &'static str) {
        self.metrics.refused_auth(reason);
    }

    fn node_failed(&self, node: &str) {
        self.metrics.node_failed(node);
    }

    fn stored_copies(&self) {
        self.metrics.stored_copies();
    }

    fn too_few_nodes(&self) {
        self.metrics.too_few_nodes();
    }
}

impl KeyEvents for Observers {
    fn keys_reloaded(&self, took: bool) {
        self.metrics.keys_reloaded(took);
    }
}
