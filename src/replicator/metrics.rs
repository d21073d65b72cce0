//! The replicator's numbers: counted as copies happen, served as Prometheus text at
//! `GET /metrics` (`--listen`), and logged as totals now and then.
//!
//! The queue's and the dead set's lengths are read from Redis when the endpoint is
//! scraped, so they are never stale and cost nothing when nobody looks.

use crate::cluster::snapshot::Snapshot;
use crate::http::{Body, Handler, Request, Response};
use crate::replication_queue::Lag;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Why a copy failed, as a metric label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Reason {
    /// Every source answered 404.
    SourceMissing,
    /// A source failed otherwise (refused, timed out, an answer without a length...).
    Source,
    /// The target did not take the file.
    Target,
    /// A node the item names is not in servers-map, or its name does not resolve.
    UnknownNode,
    /// The item is not a replication item.
    BadItem,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::SourceMissing => "source_missing",
            Reason::Source => "source",
            Reason::Target => "target",
            Reason::UnknownNode => "unknown_node",
            Reason::BadItem => "bad_item",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabel {
    server: String,
}

pub struct Metrics {
    registry: Registry,
    pub copies: Counter,
    pub copied_bytes: Counter,
    failures: Family<ReasonLabel, Counter>,
    pub locked_elsewhere: Counter,
    pub copied_elsewhere: Counter,
    pub waiting: Counter,
    pub moved_dead: Counter,
    pub in_flight: Gauge,
    pub fenced: Counter,
    pub fenced_now: Gauge,
    pub cut: Counter,
    pub quorum_seconds: Histogram,
    pub copy_seconds: Histogram,
    lag_seconds: Histogram,
    lag_unrecorded: Counter,
    queue_length: Family<ServerLabel, Gauge>,
    queue_oldest: Family<ServerLabel, Gauge<f64, AtomicU64>>,
    queue_unrecorded: Family<ServerLabel, Gauge>,
    dead_items: Family<ServerLabel, Gauge>,
}

fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("backpack_replicator");
        let r = &mut registry;
        Metrics {
            copies: registered(r, "copies", "Files copied", Counter::default()),
            copied_bytes: registered(r, "copied_bytes", "Bytes copied", Counter::default()),
            failures: registered(
                r,
                "failures",
                "Failed attempts at an item, by reason",
                Family::default(),
            ),
            locked_elsewhere: registered(
                r,
                "locked_elsewhere",
                "Items skipped because another replicator held their lock",
                Counter::default(),
            ),
            copied_elsewhere: registered(
                r,
                "copied_elsewhere",
                "Items locked and then found gone from the queue: another replicator had copied them since they were picked",
                Counter::default(),
            ),
            waiting: registered(
                r,
                "retry_waits",
                "Picked items left for a later round: their last failure is more recent than their retry pause",
                Counter::default(),
            ),
            moved_dead: registered(
                r,
                "moved_to_dead",
                "Items this process moved to the dead set",
                Counter::default(),
            ),
            in_flight: registered(r, "in_flight", "Copies in progress", Gauge::default()),
            fenced: registered(
                r,
                "fenced",
                "Times work under locks stopped: ZooKeeper had not confirmed the session through a quorum for a third of its timeout",
                Counter::default(),
            ),
            fenced_now: registered(
                r,
                "fenced_now",
                "1 while work under locks is stopped for want of a quorum's confirmation of the session",
                Gauge::default(),
            ),
            cut: registered(
                r,
                "copies_cut",
                "Copies cut short because the session was not confirmed (their items stay queued; not failures)",
                Counter::default(),
            ),
            // 1 ms to about 4 s.
            quorum_seconds: registered(
                r,
                "quorum_round_trip_seconds",
                "Time of the answered quorum round trips that confirm the session (work stops when none is answered for a third of the session timeout)",
                Histogram::new(exponential_buckets(0.001, 2.0, 13)),
            ),
            // 1 ms to about 65 s.
            copy_seconds: registered(
                r,
                "copy_duration_seconds",
                "Time of a successful copy, GET and PUT",
                Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            ),
            lag_seconds: registered(
                r,
                "lag_seconds",
                "Replication lag of the items this process finished: from the item's queueing to its removal from the queue after its last copy, on the Redis server's clock",
                Histogram::new(lag_buckets()),
            ),
            lag_unrecorded: registered(
                r,
                "lag_unrecorded",
                "Items this process finished that had no record of when they were queued (queued by old tools): their lag is unknown",
                Counter::default(),
            ),
            queue_length: registered(
                r,
                "queue_length",
                "Items queued, per Redis server (-1: no answer)",
                Family::default(),
            ),
            queue_oldest: registered(
                r,
                "queue_oldest_seconds",
                "Age of the oldest queued item that has a record of when it was queued, per Redis server (0: none; -1: no answer)",
                Family::default(),
            ),
            queue_unrecorded: registered(
                r,
                "queue_unrecorded_items",
                "Queued items without a record of when they were queued (queued by old tools), per Redis server (-1: no answer)",
                Family::default(),
            ),
            dead_items: registered(
                r,
                "dead_items",
                "Items in the dead set, per Redis server (-1: no answer)",
                Family::default(),
            ),
            registry,
        }
    }
}

/// 10 ms wide up to 100 ms, then doubling: 0.2 s ... about 55 minutes.
fn lag_buckets() -> impl Iterator<Item = f64> {
    let fine = (1..=10).map(|i| i as f64 / 100.0);
    fine.chain(exponential_buckets(0.2, 2.0, 15))
}

impl Metrics {
    /// Counts the lags of the items a round removed from the queue.
    pub fn lags(&self, lags: &[Lag]) {
        for lag in lags {
            match lag {
                Lag::Ms(ms) => self.lag_seconds.observe(*ms as f64 / 1000.0),
                Lag::Unrecorded => {
                    self.lag_unrecorded.inc();
                }
                Lag::NotMine => {}
            }
        }
    }

    pub fn failed(&self, reason: Reason) {
        self.failures
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    /// Failed attempts of every reason so far.
    pub fn failures_total(&self) -> u64 {
        [
            Reason::SourceMissing,
            Reason::Source,
            Reason::Target,
            Reason::UnknownNode,
            Reason::BadItem,
        ]
        .iter()
        .map(|reason| {
            self.failures
                .get_or_create(&ReasonLabel {
                    reason: reason.label(),
                })
                .get()
        })
        .sum()
    }

    /// The text exposition, with the queue's gauges read now.
    pub fn render(&self, snapshot: Option<&Snapshot>) -> String {
        for family in [&self.queue_length, &self.dead_items, &self.queue_unrecorded] {
            family.clear();
        }
        self.queue_oldest.clear();
        if let Some(queue) = snapshot.and_then(|s| s.queue.as_ref()) {
            let ages = queue.ages();
            let dead = queue.dead().counts();
            for ((pool, ages), dead) in queue.pools.iter().zip(ages).zip(dead) {
                let label = ServerLabel {
                    server: pool.addr.to_string(),
                };
                let value = |n: Option<u64>| n.map_or(-1, |n| n as i64);
                self.queue_length
                    .get_or_create(&label)
                    .set(value(ages.map(|a| a.length)));
                self.queue_unrecorded
                    .get_or_create(&label)
                    .set(value(ages.map(|a| a.unrecorded)));
                self.queue_oldest
                    .get_or_create(&label)
                    .set(ages.map_or(-1.0, |a| a.oldest_seconds.unwrap_or(0.0)));
                self.dead_items.get_or_create(&label).set(value(dead));
            }
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// The `--listen` endpoint: `GET /metrics`.
pub struct MetricsEndpoint {
    pub metrics: Arc<Metrics>,
    pub shared: Arc<crate::cluster::sync::Shared>,
}

impl Handler for MetricsEndpoint {
    fn call(&self, request: &Request, _body: &mut Body<'_>) -> Response {
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/metrics") => {
                let snapshot = self.shared.snapshot.current();
                Response::plain(
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(snapshot.as_deref()).into_bytes(),
                )
            }
            ("GET" | "HEAD", _) => Response::error(404, "not found: metrics are at GET /metrics"),
            (other, _) => Response::error(405, &format!("method {other} is not allowed"))
                .with_header("Allow", "GET, HEAD".into()),
        }
    }
}
