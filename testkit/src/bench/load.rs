//! The load generator: PUTs of a given size with unique paths, closed-loop (each of
//! `concurrency` connections sends its next request when the last is answered) or
//! open-loop (requests are due at a fixed rate whatever the answers; latency is counted
//! from when a request was due, so a stall shows in the percentiles instead of hiding in
//! fewer requests: the correction for coordinated omission).

use super::client::{Client, Outcome, Target};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long one request may take before it counts as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Told of every acknowledged upload that names its shard, as it is answered.
    pub acked: Option<std::sync::mpsc::Sender<Acked>>,
    /// More header lines for every request, each ending in CRLF (an upload token).
    pub headers: String,
}

/// An acknowledged upload, as `LoadSpec::acked` hears of it.
#[derive(Debug, Clone)]
pub struct Acked {
    pub path: String,
    pub shard: String,
    pub at: Instant,
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
    /// Adds `other`, a run of the same load that followed this one.
    pub fn merge(&mut self, other: LoadReport) {
        self.absorb(other);
        self.sort();
    }

    /// Adds `other`'s counts and latencies, leaving the latencies unsorted.
    fn absorb(&mut self, other: LoadReport) {
        self.requests += other.requests;
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_insert(0) += count;
        }
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        for (shard, latencies) in other.by_shard {
            self.by_shard.entry(shard).or_default().extend(latencies);
        }
    }

    fn sort(&mut self) {
        self.latencies_us.sort_unstable();
        self.by_shard.values_mut().for_each(|l| l.sort_unstable());
    }

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

/// Where the next request's number and due time come from.
enum Schedule {
    /// Closed loop: the next number, due as soon as a connection is free.
    Closed(Arc<AtomicU64>),
    /// Open loop: numbers with due times, sent by the pacer thread.
    Open(Arc<tokio::sync::Mutex<UnboundedReceiver<(u64, Instant)>>>),
}

impl Schedule {
    async fn next(&self, spec: &LoadSpec, deadline: Instant) -> Option<(u64, Instant)> {
        let (n, due) = match self {
            Schedule::Closed(next) => (next.fetch_add(1, Ordering::Relaxed), Instant::now()),
            Schedule::Open(receiver) => receiver.lock().await.recv().await?,
        };
        (n < spec.max_requests && Instant::now() < deadline).then_some((n, due))
    }
}

/// Runs the load and reports; an error names a target that is not an `http://host:port`
/// URL.
///
/// All connections are tasks on one tokio thread (see `client`). In open loop a pacer
/// thread sends each request's number when it is due: the runtime's timers tick in
/// whole milliseconds, a thread's sleep is far finer, and latencies here are fractions of
/// a millisecond.
pub fn run(spec: &LoadSpec) -> Result<LoadReport, String> {
    let targets = spec
        .targets
        .iter()
        .map(|url| Target::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty() {
        return Err("no target URL".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the load generator's runtime: {err}"))?;
    let started = Instant::now();
    let deadline = started + spec.duration;
    let (schedule, pacer) = match spec.rate {
        None => (Schedule::Closed(Arc::new(AtomicU64::new(0))), None),
        Some(rate) => {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            let max_requests = spec.max_requests;
            let pacer = std::thread::spawn(move || {
                for n in 0..max_requests {
                    let due = started + Duration::from_secs_f64(n as f64 / rate);
                    if due >= deadline {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    if sender.send((n, due)).is_err() {
                        break;
                    }
                }
            });
            let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
            (Schedule::Open(receiver), Some(pacer))
        }
    };
    let schedule = Arc::new(schedule);
    let body: Arc<[u8]> = vec![b'b'; spec.body_size].into();
    let mut report = LoadReport::default();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..spec.concurrency.max(1) {
            let (schedule, body, spec, targets) = (
                Arc::clone(&schedule),
                Arc::clone(&body),
                spec.clone(),
                targets.clone(),
            );
            tasks.spawn(async move {
                let mut clients: Vec<Client> = targets
                    .into_iter()
                    .map(|target| Client::new(target, REQUEST_TIMEOUT).with_headers(&spec.headers))
                    .collect();
                // What this connection saw (its latencies unsorted).
                let mut seen = LoadReport::default();
                while let Some((n, due)) = schedule.next(&spec, deadline).await {
                    let clients_len = clients.len();
                    let client = &mut clients[(n as usize) % clients_len];
                    let path = format!("/{}/{n}", spec.prefix);
                    match client.put(&path, &body).await {
                        Outcome::Answered { status, body } if (200..300).contains(&status) => {
                            seen.ok += 1;
                            let latency = due.elapsed().as_micros() as u64;
                            seen.latencies_us.push(latency);
                            if let Some(shard) = shard_in(&body) {
                                if let Some(acked) = &spec.acked {
                                    let at = Instant::now();
                                    let shard = shard.clone();
                                    let _ = acked.send(Acked { path, shard, at });
                                }
                                seen.by_shard.entry(shard).or_default().push(latency);
                            }
                        }
                        Outcome::Answered { status, .. } => {
                            *seen.errors.entry(format!("HTTP {status}")).or_insert(0) += 1;
                        }
                        Outcome::Failed(kind) => *seen.errors.entry(kind).or_insert(0) += 1,
                    }
                }
                seen
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(seen) = done {
                report.absorb(seen);
            }
        }
    });
    report.elapsed = started.elapsed();
    // The tasks are done, so the channel's receiver is gone and the pacer stops.
    drop(schedule);
    if let Some(pacer) = pacer {
        let _ = pacer.join();
    }
    report.requests = report.ok + report.errors.values().sum::<u64>();
    report.sort();
    Ok(report)
}
