//! The last minute of uploads, by the second: how many, how many were refused as the
//! client's error (4xx) and how many failed on the cluster's side (5xx), and how long they
//! took, for the console (`GET /` and `/status.json`).
//!
//! Sixty one-second buckets in a ring. A bucket holds its second's counts and a latency
//! histogram with power-of-two bounds, so percentiles over the window are read from the
//! summed histograms (to within a factor of two, which is what a glance needs; the exact
//! histogram is `/metrics`). Recording takes a lock for a few additions, never across
//! anything that can yield.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Seconds the window covers.
pub const WINDOW_SECONDS: u64 = 60;

/// Latency bounds: bucket `i` holds uploads of at most 2^i x 0.25 ms (the last, more).
const LATENCY_BUCKETS: usize = 20;

#[derive(Clone, Copy, Default)]
struct Second {
    /// Which second since start this bucket holds now.
    at: u64,
    uploads: u64,
    client_errors: u64,
    server_errors: u64,
    latency: [u32; LATENCY_BUCKETS],
}

pub struct RecentUploads {
    started: Instant,
    seconds: Mutex<[Second; WINDOW_SECONDS as usize]>,
}

/// The window, summed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecentSummary {
    /// Seconds summed: the window, or less just after start.
    pub seconds: u64,
    pub uploads_per_second: f64,
    /// Answered 5xx: not stored for the cluster's reasons (no writable shard, nodes or
    /// Redis down). What an operator acts on.
    pub server_errors_per_second: f64,
    /// Answered 4xx: the client's request was refused (no length, a bad path, too big).
    pub client_errors_per_second: f64,
    /// Upper bounds of the latency buckets holding the median and the 99th percentile
    /// (None without uploads).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

fn bucket_of(elapsed: Duration) -> usize {
    let quarters = (elapsed.as_secs_f64() * 4000.0).ceil().max(1.0) as u64;
    (64 - (quarters - 1).leading_zeros() as usize).min(LATENCY_BUCKETS - 1)
}

fn bound_ms(bucket: usize) -> f64 {
    (1u64 << bucket) as f64 * 0.25
}

impl Default for RecentUploads {
    fn default() -> RecentUploads {
        RecentUploads {
            started: Instant::now(),
            seconds: Mutex::new([Second::default(); WINDOW_SECONDS as usize]),
        }
    }
}

impl RecentUploads {
    fn now(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Counts an upload answered with `status`.
    pub fn record(&self, status: u16, elapsed: Duration) {
        let at = self.now();
        let mut seconds = self.seconds.lock();
        let second = &mut seconds[(at % WINDOW_SECONDS) as usize];
        if second.at != at {
            *second = Second {
                at,
                ..Second::default()
            };
        }
        second.uploads += 1;
        second.client_errors += u64::from((400..500).contains(&status));
        second.server_errors += u64::from(status >= 500);
        second.latency[bucket_of(elapsed)] += 1;
    }

    /// The last `WINDOW_SECONDS` full seconds (the current one is still filling).
    pub fn summary(&self) -> RecentSummary {
        let now = self.now();
        let span = now.clamp(1, WINDOW_SECONDS);
        let (mut uploads, mut client_errors, mut server_errors) = (0, 0, 0);
        let mut latency = [0u64; LATENCY_BUCKETS];
        for second in self.seconds.lock().iter() {
            if second.at < now && second.at + span >= now {
                uploads += second.uploads;
                client_errors += second.client_errors;
                server_errors += second.server_errors;
                for (sum, count) in latency.iter_mut().zip(second.latency) {
                    *sum += u64::from(count);
                }
            }
        }
        let percentile = |share: f64| {
            let rank = ((uploads as f64) * share).ceil().max(1.0) as u64;
            let mut seen = 0;
            latency.iter().enumerate().find_map(|(bucket, count)| {
                seen += count;
                (uploads > 0 && seen >= rank).then(|| bound_ms(bucket))
            })
        };
        RecentSummary {
            seconds: span,
            uploads_per_second: uploads as f64 / span as f64,
            server_errors_per_second: server_errors as f64 / span as f64,
            client_errors_per_second: client_errors as f64 / span as f64,
            p50_ms: percentile(0.5),
            p99_ms: percentile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_power_of_two_buckets() {
        assert_eq!(bucket_of(Duration::from_micros(100)), 0);
        assert_eq!(bucket_of(Duration::from_micros(250)), 0);
        assert_eq!(bucket_of(Duration::from_micros(251)), 1);
        assert_eq!(bucket_of(Duration::from_millis(3)), 4); // at most 4 ms
        assert_eq!(bucket_of(Duration::from_secs(3600)), LATENCY_BUCKETS - 1);
        assert_eq!(bound_ms(4), 4.0);
    }

    #[test]
    fn the_summary_covers_full_seconds_only() {
        let recent = RecentUploads::default();
        recent.record(200, Duration::from_millis(3));
        recent.record(503, Duration::from_millis(100));
        recent.record(411, Duration::from_micros(100));
        // The current second is still filling: not summed.
        assert_eq!(recent.summary().p50_ms, None);
        // The same buckets seen one second later.
        let later = RecentUploads {
            started: recent.started - Duration::from_secs(1),
            seconds: Mutex::new(*recent.seconds.lock()),
        };
        let summary = later.summary();
        assert_eq!(summary.seconds, 1);
        assert_eq!(summary.uploads_per_second, 3.0);
        assert_eq!(summary.server_errors_per_second, 1.0);
        assert_eq!(summary.client_errors_per_second, 1.0);
        assert_eq!(summary.p50_ms, Some(4.0));
        assert_eq!(summary.p99_ms, Some(128.0));
    }
}
