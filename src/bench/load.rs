//! The load generator: PUTs of a given size with unique paths, closed-loop (each of
//! `concurrency` connections sends its next request when the last is answered) or
//! open-loop (requests are due at a fixed rate whatever the answers; latency is counted
//! from when a request was due, so a stall shows in the percentiles instead of hiding in
//! fewer requests: the correction for coordinated omission).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Base URLs (`http://127.0.0.1:12001`); requests go round-robin over them.
    pub targets: Vec<String>,
    pub body_size: usize,
    pub concurrency: usize,
    /// Requests per second for open-loop; None for closed-loop.
    pub rate: Option<f64>,
    pub duration: Duration,
    /// Stop after this many requests (also a byte cap: `max_requests * body_size`).
    pub max_requests: u64,
    /// Paths are `/<prefix>/<n>`.
    pub prefix: String,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Latencies of answered requests, sorted, in microseconds.
    pub latencies_us: Vec<u64>,
    /// The same, by the shard a coordinator answered (`{"shard_id": ...}`), sorted.
    pub by_shard: BTreeMap<String, Vec<u64>>,
}

/// The latency at quantile `q` (0..1) of sorted microseconds, in milliseconds.
pub fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[index] as f64 / 1000.0
}

/// The shard id in a coordinator's answer, if it is one.
fn shard_in(answer: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(answer).ok()?;
    let rest = text.split_once("\"shard_id\":\"")?.1;
    Some(rest.split('"').next()?.to_string())
}

impl LoadReport {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..1), in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() as f64 * q).ceil() as usize)
            .clamp(1, self.latencies_us.len())
            - 1;
        self.latencies_us[index] as f64 / 1000.0
    }
}

/// Runs the load and reports.
pub fn run(spec: &LoadSpec) -> LoadReport {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .max_idle_connections_per_host(spec.concurrency.max(1) * 2)
        .build()
        .into();
    let body = Arc::new(vec![b'b'; spec.body_size]);
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(Mutex::new(LoadReport::default()));
    let started = Instant::now();
    let deadline = started + spec.duration;
    let threads: Vec<_> = (0..spec.concurrency.max(1))
        .map(|_| {
            let (agent, body, next, results, spec) = (
                agent.clone(),
                Arc::clone(&body),
                Arc::clone(&next),
                Arc::clone(&results),
                spec.clone(),
            );
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut by_shard: BTreeMap<String, Vec<u64>> = BTreeMap::new();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                let mut ok = 0u64;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= spec.max_requests {
                        break;
                    }
                    // When this request is due: now (closed loop) or on the rate's schedule.
                    let due = match spec.rate {
                        Some(rate) => started + Duration::from_secs_f64(n as f64 / rate),
                        None => Instant::now(),
                    };
                    if due >= deadline || Instant::now() >= deadline {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let target = &spec.targets[(n as usize) % spec.targets.len()];
                    let url = format!("{target}/{}/{n}", spec.prefix);
                    match agent.put(&url).send(&body[..]) {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let answer = response.into_body().read_to_vec().unwrap_or_default();
                            if (200..300).contains(&status) {
                                ok += 1;
                                let latency = due.elapsed().as_micros() as u64;
                                latencies.push(latency);
                                if let Some(shard) = shard_in(&answer) {
                                    by_shard.entry(shard).or_default().push(latency);
                                }
                            } else {
                                *errors.entry(format!("HTTP {status}")).or_insert(0) += 1;
                            }
                        }
                        Err(err) => {
                            let kind = match err {
                                ureq::Error::Timeout(_) => "timeout".to_string(),
                                ureq::Error::Io(e) => format!("io: {:?}", e.kind()),
                                other => format!("{other}"),
                            };
                            *errors.entry(kind).or_insert(0) += 1;
                        }
                    }
                }
                let mut report = results
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                report.ok += ok;
                report.latencies_us.extend(latencies);
                for (shard, latencies) in by_shard {
                    report.by_shard.entry(shard).or_default().extend(latencies);
                }
                for (kind, count) in errors {
                    *report.errors.entry(kind).or_insert(0) += count;
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let mut report = std::mem::take(
        &mut *results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    report.elapsed = started.elapsed().min(spec.duration.max(started.elapsed()));
    report.requests = report.ok + report.errors.values().sum::<u64>();
    report.latencies_us.sort_unstable();
    report.by_shard.values_mut().for_each(|l| l.sort_unstable());
    report
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks as f64 / per_second)
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM`, `VmRSS`).
pub fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
