//! `GET /metrics`: Prometheus text format, built with the `prometheus-client` crate.
//!
//! Counters and the latency histogram are updated as uploads finish; the gauges that
//! describe the cluster (shards, queue, ZooKeeper, connections) are set from the current
//! snapshot when the endpoint is scraped, so they are never stale.

use crate::cluster::snapshot::Snapshot;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok`, `client_error` (4xx) or `server_error` (5xx).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    pub shard: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    uploads: Family<ResultLabel, Counter>,
    upload_bytes: Family<ResultLabel, Counter>,
    latency: Histogram,
    node_failures: Family<NodeLabel, Counter>,
    shard_capacity: Family<ShardLabel, Gauge>,
    shard_used: Family<ShardLabel, Gauge>,
    shard_writable: Family<ShardLabel, Gauge>,
    queue_length: Gauge,
    zookeeper: Family<StateLabel, Gauge>,
    open_connections: Gauge,
    active_workers: Gauge,
    memory_bodies: Gauge,
    zk_requests: Family<KindLabel, Counter>,
    zk_watch_events: Counter,
    snapshots: Counter,
    synced_uploads: Counter,
    too_few_nodes: Counter,
    refused_auth: Family<ReasonLabel, Counter>,
    key_reloads: Family<ResultLabel, Counter>,
    tokens_required: Gauge,
    upload_keys: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    kind: &'static str,
}

/// The result label of an HTTP status.
pub fn result_of(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        400..=499 => "client_error",
        _ => "server_error",
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("backpack_coordinator");
        let uploads = registered(
            &mut registry,
            "uploads",
            "Uploads answered, by result",
            Family::default(),
        );
        let upload_bytes = registered(
            &mut registry,
            "upload_bytes",
            "Bytes of uploads answered, by result",
            Family::default(),
        );
        // 0.5 ms to about 16 s.
        let latency = registered(
            &mut registry,
            "upload_duration_seconds",
            "Time to answer an upload",
            Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        );
        let node_failures = registered(
            &mut registry,
            "node_failures",
            "PUTs to a node that failed, by node id",
            Family::default(),
        );
        let shard_capacity = registered(
            &mut registry,
            "shard_capacity_bytes",
            "Capacity of a shard",
            Family::default(),
        );
        let shard_used = registered(
            &mut registry,
            "shard_used_bytes",
            "Bytes used on a shard (from ZooKeeper)",
            Family::default(),
        );
        let shard_writable = registered(
            &mut registry,
            "shard_writable",
            "1 when a shard takes uploads",
            Family::default(),
        );
        let queue_length = registered(
            &mut registry,
            "queue_length",
            "Replication items queued (-1: no Redis answered)",
            Gauge::default(),
        );
        let zookeeper = registered(
            &mut registry,
            "zookeeper_state",
            "1 for the ZooKeeper connection's current state",
            Family::default(),
        );
        let open_connections = registered(
            &mut registry,
            "open_connections",
            "Client connections open now",
            Gauge::default(),
        );
        let active_workers = registered(
            &mut registry,
            "active_workers",
            "Worker threads that take clients now (as many as the load needs, at most --workers)",
            Gauge::default(),
        );
        let memory_bodies = registered(
            &mut registry,
            "memory_body_bytes",
            "Bytes of upload bodies held in memory now (capped by --memory-budget)",
            Gauge::default(),
        );
        let zk_requests = registered(
            &mut registry,
            "zookeeper_node_requests",
            "ZooKeeper node reads and writes this process made (a transaction counts its nodes)",
            Family::default(),
        );
        let zk_watch_events = registered(
            &mut registry,
            "zookeeper_watch_events",
            "Watches that fired on ZooKeeper nodes this process follows",
            Counter::default(),
        );
        let snapshots = registered(
            &mut registry,
            "configuration_snapshots",
            "Configuration snapshots built from ZooKeeper (one per coalesced change)",
            Counter::default(),
        );
        let synced_uploads = registered(
            &mut registry,
            "uploads_with_sync_copies",
            "Uploads acknowledged after --sync-copies nodes (more than one) stored them",
            Counter::default(),
        );
        let too_few_nodes = registered(
            &mut registry,
            "uploads_refused_too_few_nodes",
            "Uploads refused because no shard could store --sync-copies copies",
            Counter::default(),
        );
        let refused_auth = registered(
            &mut registry,
            "uploads_refused_auth",
            "Uploads refused by the upload token check, by reason",
            Family::default(),
        );
        let key_reloads = registered(
            &mut registry,
            "upload_keys_reloads",
            "Re-reads of the --upload-keys file after start: ok, or failed (the keys in force stay)",
            Family::default(),
        );
        let tokens_required = registered(
            &mut registry,
            "upload_tokens_required",
            "1 when uploads need a signed token (--upload-keys)",
            Gauge::default(),
        );
        let upload_keys = registered(
            &mut registry,
            "upload_keys_in_force",
            "Keys that sign upload tokens, in force now",
            Gauge::default(),
        );
        Metrics {
            registry,
            refused_auth,
            key_reloads,
            tokens_required,
            upload_keys,
            synced_uploads,
            too_few_nodes,
            zk_requests,
            zk_watch_events,
            snapshots,
            uploads,
            upload_bytes,
            latency,
            node_failures,
            shard_capacity,
            shard_used,
            shard_writable,
            queue_length,
            zookeeper,
            open_connections,
            active_workers,
            memory_bodies,
        }
    }
}

/// Registers `metric` under `name` and hands it back, to keep in `Metrics`.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// What the gauges show that is read at scrape time.
pub struct Readings {
    /// None when no Redis answered.
    pub queue_length: Option<u64>,
    pub zk_state: &'static str,
    pub open_connections: usize,
    pub active_workers: usize,
    pub memory_body_bytes: u64,
    pub zk_counts: crate::zk::ZkCounts,
    pub snapshots: u64,
    /// Keys in force when upload tokens are required; None when they are not.
    pub upload_keys: Option<usize>,
}

/// Moves a counter up to `total`, a count kept elsewhere.
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

impl Metrics {
    pub fn upload(&self, status: u16, bytes: u64, seconds: f64) {
        let label = ResultLabel {
            result: result_of(status),
        };
        self.uploads.get_or_create(&label).inc();
        self.upload_bytes.get_or_create(&label).inc_by(bytes);
        self.latency.observe(seconds);
    }

    /// An upload acknowledged with `--sync-copies` (more than one) copies stored.
    pub fn stored_copies(&self) {
        self.synced_uploads.inc();
    }

    /// An upload refused because no shard could store `--sync-copies` copies.
    pub fn too_few_nodes(&self) {
        self.too_few_nodes.inc();
    }

    /// An upload refused by the upload token check.
    pub fn refused_auth(&self, reason: &'static str) {
        self.refused_auth
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A re-read of the upload keys file, `took` or not.
    pub fn keys_reloaded(&self, took: bool) {
        let result = match took {
            true => "ok",
            false => "failed",
        };
        self.key_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub fn node_failed(&self, node: &str) {
        self.node_failures
            .get_or_create(&NodeLabel {
                node: node.to_string(),
            })
            .inc();
    }

    /// The text exposition, with the gauges set from `snapshot` and the readings.
    pub fn render(&self, snapshot: Option<&Snapshot>, readings: Readings) -> String {
        for family in [&self.shard_capacity, &self.shard_used, &self.shard_writable] {
            family.clear();
        }
        for shard in snapshot.map(|s| s.shards.as_slice()).unwrap_or_default() {
            let label = ShardLabel {
                shard: shard.id.clone(),
            };
            if let Some(size) = shard.size {
                self.shard_capacity
                    .get_or_create(&label)
                    .set(size.capacity as i64);
                self.shard_used
                    .get_or_create(&label)
                    .set(size.current as i64);
            }
            self.shard_writable
                .get_or_create(&label)
                .set(i64::from(shard.is_writable()));
        }
        self.queue_length
            .set(readings.queue_length.map_or(-1, |n| n as i64));
        self.zookeeper.clear();
        for state in ["connected", "disconnected", "connecting"] {
            self.zookeeper
                .get_or_create(&StateLabel { state })
                .set(i64::from(state == readings.zk_state));
        }
        self.open_connections.set(readings.open_connections as i64);
        self.active_workers.set(readings.active_workers as i64);
        self.memory_bodies.set(readings.memory_body_bytes as i64);
        let zk = readings.zk_counts;
        for (kind, total) in [("read", zk.reads), ("write", zk.writes)] {
            catch_up(&self.zk_requests.get_or_create(&KindLabel { kind }), total);
        }
        catch_up(&self.zk_watch_events, zk.watch_events);
        catch_up(&self.snapshots, readings.snapshots);
        self.tokens_required
            .set(i64::from(readings.upload_keys.is_some()));
        self.upload_keys
            .set(readings.upload_keys.unwrap_or(0) as i64);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
