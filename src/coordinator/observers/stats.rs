//! Counters since start, and the `GET /stats` answer (fields as the old coordinator had).

use crate::cluster::snapshot::Snapshot;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub struct Stats {
    started: Instant,
    processed_uploads: AtomicU64,
    processed_bytes: AtomicU64,
    failed_uploads: AtomicU64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            started: Instant::now(),
            processed_uploads: AtomicU64::new(0),
            processed_bytes: AtomicU64::new(0),
            failed_uploads: AtomicU64::new(0),
        }
    }
}

/// `used / total` rounded up to 4 decimals; 1 for an empty cluster.
fn usage_ratio(used: u64, total: u64) -> f64 {
    if total == 0 {
        return 1.0;
    }
    let scaled = (used as u128 * 10_000).div_ceil(total as u128);
    scaled as f64 / 10_000.0
}

impl Stats {
    pub fn stored(&self, bytes: u64) {
        self.processed_uploads.fetch_add(1, Ordering::Relaxed);
        self.processed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.failed_uploads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn stored_count(&self) -> u64 {
        self.processed_uploads.load(Ordering::Relaxed)
    }

    pub fn failed_count(&self) -> u64 {
        self.failed_uploads.load(Ordering::Relaxed)
    }

    /// The `/stats` document; `queue_length` is None when no Redis answered.
    pub fn document(&self, snapshot: Option<&Snapshot>, queue_length: Option<u64>) -> Value {
        let totals = snapshot.map(Snapshot::totals).unwrap_or_default();
        let shards = snapshot.map_or(0, |s| s.shards.len());
        let (total, used, available, writable) = (
            totals.capacity,
            totals.used,
            totals.available,
            totals.writable_shards,
        );
        json!({
            "uptime": self.started.elapsed().as_millis() as u64,
            "processed_uploads": self.processed_uploads.load(Ordering::Relaxed),
            "processed_bytes": self.processed_bytes.load(Ordering::Relaxed),
            "failed_uploads": self.failed_uploads.load(Ordering::Relaxed),
            "total_size": total,
            "used_size": used,
            "usage_ratio": usage_ratio(used, total),
            "available_space": available,
            "total_shards": shards,
            "writable_shards": writable,
            "queue_length": queue_length,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_ratio_rounds_up() {
        assert_eq!(super::usage_ratio(0, 0), 1.0);
        assert_eq!(super::usage_ratio(0, 10), 0.0);
        assert_eq!(super::usage_ratio(1, 3), 0.3334);
        assert_eq!(super::usage_ratio(1, 1_000_000), 0.0001);
    }
}
