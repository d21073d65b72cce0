//! `backpack-replicator <zk_servers> </zk/root> [concurrency]`.

use super::claims::Claims;
use super::copies::{Copier, CopySlot};
use super::fence::{keep_lease, CopyGate, Fence};
use super::give_up::{Bounds, RetryPace};
use super::metrics::{Metrics, MetricsEndpoint};
use super::worker::Worker;
use crate::cluster::sync::{self, Shared};
use crate::command::args::daemon_command;
use crate::command::Command;
use crate::duration_arg::{millis, parse_duration, secs};
use crate::error::{Error, Result};
use crate::hostname::hostname;
use crate::log_line;
use crate::shutdown::Shutdown;
use crate::transport::node_http;
use crate::transport::node_transport::SendGate;
use std::sync::Arc;
use std::time::{Duration, Instant};

daemon_command! {
    /// Drain the replication queue: copy each queued file from a node that has it to the node
    /// of its shard that lacks it, then remove the item. Runs beside old replicators on the
    /// same queue (items are locked in ZooKeeper).
    pub struct ReplicatorCommand {
        /// copies at once (default 8), each a coroutine with its own node connections
        #[argh(positional, default = "8")]
        concurrency: usize,
        /// items a worker locks and copies per round at most: one ZooKeeper transaction locks
        /// them all (default 16)
        #[argh(option, default = "16")]
        batch: usize,
        /// the shortest round of a worker whose batch was not full: the wait that lets
        /// items gather, so that one lock transaction covers several (default 20ms)
        #[argh(option, default = "millis(20)", from_str_fn(parse_duration))]
        round_time: Duration,
        /// drain the queue and exit: 0 when it is empty, 1 when items are left that keep failing
        #[argh(switch)]
        once: bool,
        /// with --once, give up after this long without a successful copy (default 60s)
        #[argh(option, default = "secs(60)", from_str_fn(parse_duration))]
        once_timeout: Duration,
        /// time for one copy, GET and PUT together (default 300s)
        #[argh(option, default = "secs(300)", from_str_fn(parse_duration))]
        node_timeout: Duration,
        /// the longest pause after failures (default 5s)
        #[argh(option, default = "secs(5)", from_str_fn(parse_duration))]
        max_error_backoff: Duration,
        /// after a failed copy an item waits this long before it is tried again, twice as
        /// long after each further failed attempt (default 1s)
        #[argh(option, default = "secs(1)", from_str_fn(parse_duration))]
        retry_pause: Duration,
        /// the longest an item waits between attempts (default 5m)
        #[argh(option, default = "secs(300)", from_str_fn(parse_duration))]
        max_retry_pause: Duration,
        /// how often the totals are logged (default 10s)
        #[argh(option, default = "secs(10)", from_str_fn(parse_duration))]
        report_every: Duration,
        /// do not log each successful copy
        #[argh(switch)]
        quiet: bool,
        /// an item that fails this many times (a 404 from every source aside) moves to the
        /// dead set `<queue key>-dead` (default 20)
        #[argh(option, default = "20")]
        dead_after_attempts: u64,
        /// an item failing this long since its first failure (a 404 from every source aside)
        /// moves to the dead set too (default 1h)
        #[argh(option, default = "secs(3600)", from_str_fn(parse_duration))]
        dead_after: Duration,
        /// an item whose every source has answered 404 for this long moves to the dead set
        /// (default 24h)
        #[argh(option, default = "secs(24 * 3600)", from_str_fn(parse_duration))]
        dead_after_missing: Duration,
        /// serve GET /metrics (Prometheus text) on host:port
        #[argh(option)]
        listen: Option<String>,
    }
}

impl Command for ReplicatorCommand {
    fn run(self) -> Result<()> {
        if self.concurrency == 0 {
            return Err(Error::usage("concurrency must be at least 1"));
        }
        if self.batch == 0 || self.batch > 1000 {
            return Err(Error::usage("--batch must be between 1 and 1000"));
        }
        // One `may` worker runs the copies' coroutines (`copies`) and `/metrics`: a copy
        // costs it little, most of it waiting. may counts stack sizes in machine words;
        // 256 KiB is the coordinator's default, for the same ureq requests.
        may::config()
            .set_workers(1)
            .set_pool_capacity(self.concurrency.max(1))
            .set_stack_size(256 * 1024 / std::mem::size_of::<usize>());
        // Bound first: a port in use stops the replicator before it does anything. It
        // listens once it serves.
        let metrics_port = match &self.listen {
            Some(address) => Some(crate::http::bind(address)?),
            None => None,
        };
        let shared = Arc::new(Shared::default());
        let _sync = sync::start(self.sync_settings(None), &shared)?;
        crate::cluster::record_sweeper::start(Arc::clone(&shared.snapshot))?;
        // The sync thread sets the session before it publishes a snapshot.
        let (_, mut seen) = shared.snapshot.wait_newer(0);
        while shared.session.current().is_none() {
            // The session ended again in between: the next snapshot comes with a new one.
            seen = shared.snapshot.wait_newer(seen).1;
        }
        let token = format!("{}:{}", hostname(), std::process::id());
        log_line!(
            "backpack-replicator {token}: {} copies at once, {} workers, batches of {} at most",
            self.concurrency,
            round_workers(self.concurrency, self.batch),
            self.batch
        );

        // SIGTERM or SIGINT: each worker finishes its current copy, then the process
        // exits; a second signal exits at once.
        let shutdown = Shutdown::on_signals("finishing the copies in progress")?;
        let metrics = Arc::new(Metrics::default());
        let _endpoint = match metrics_port {
            Some(bound) => Some(serve_metrics(bound, &metrics, &shared)?),
            None => None,
        };
        let fence = Arc::new(Fence::new(Arc::clone(&metrics)));
        let sessions = Arc::clone(&shared);
        let _lease = keep_lease(
            Arc::clone(&fence),
            move || sessions.session.current(),
            self.zk_session_timeout,
            Arc::clone(&shutdown),
        )
        .map_err(|err| Error::invalid(format!("cannot start the lease thread: {err}")))?;
        let claims = Arc::new(Claims::default());
        let leftovers = Arc::new(super::locks::Leftovers::default());
        let limits = self.node_limits(self.node_timeout);
        let new_agent: Arc<dyn Fn(&Arc<CopyGate>) -> ureq::Agent + Send + Sync> =
            Arc::new(move |gate: &Arc<CopyGate>| {
                node_http::gated_copies_agent(limits, Arc::clone(gate) as Arc<dyn SendGate>)
            });
        let slots = (0..self.concurrency.max(1))
            .map(|_| {
                let gate = Arc::new(CopyGate::new(
                    Arc::clone(&fence),
                    self.node_progress_timeout,
                ));
                CopySlot {
                    agent: new_agent(&gate),
                    gate,
                    new_agent: Arc::clone(&new_agent),
                    session: 0,
                }
            })
            .collect();
        let copier = Arc::new(Copier::start(slots, Arc::clone(&metrics), self.quiet));
        let rounds = round_workers(self.concurrency, self.batch);
        let workers: Vec<_> = (0..rounds)
            .map(|i| {
                let worker = Worker {
                    shared: Arc::clone(&shared),
                    copier: Arc::clone(&copier),
                    fence: Arc::clone(&fence),
                    root: self.root.trim_end_matches('/').to_string(),
                    token: token.clone(),
                    metrics: Arc::clone(&metrics),
                    bounds: Bounds {
                        attempts: self.dead_after_attempts.max(1),
                        after: self.dead_after,
                        missing: self.dead_after_missing,
                    },
                    pace: RetryPace {
                        first: self.retry_pause,
                        most: self.max_retry_pause.max(self.retry_pause),
                    },
                    claims: Arc::clone(&claims),
                    leftovers: Arc::clone(&leftovers),
                    batch: self.batch,
                    workers: rounds,
                    round_time: self.round_time,
                    max_error_backoff: self.max_error_backoff,
                };
                let (shutdown, once) = (Arc::clone(&shutdown), self.once);
                std::thread::Builder::new()
                    .name(format!("replicator-{i}"))
                    .spawn(move || worker.run(&shutdown, once))
                    .map_err(|err| Error::invalid(format!("cannot start a worker: {err}")))
            })
            .collect::<Result<_>>()?;

        let started = Instant::now();
        let mut last_report = (Instant::now(), 0u64, 0u64);
        let mut last_progress = (Instant::now(), 0u64);
        loop {
            // Wakes at once on a stop; otherwise looks at the totals every 100 ms.
            let stopping = shutdown.wait_timeout(Duration::from_millis(100));
            let copied = metrics.copies.get();
            let failed = metrics.failures_total();
            if copied != last_progress.1 {
                last_progress = (Instant::now(), copied);
            }
            if last_report.0.elapsed() >= self.report_every
                && (copied, failed) != (last_report.1, last_report.2)
            {
                log_line!(
                    "totals: {copied} copied ({} bytes), {failed} failed, {} skipped (locked by another replicator), {} moved to the dead set",
                    metrics.copied_bytes.get(),
                    metrics.locked_elsewhere.get(),
                    metrics.moved_dead.get()
                );
                last_report = (Instant::now(), copied, failed);
            }
            if stopping || workers.iter().all(|w| w.is_finished()) {
                break;
            }
            if self.once && last_progress.0.elapsed() >= self.once_timeout {
                shutdown.request();
            }
        }
        shutdown.request();
        for worker in workers {
            let _ = worker.join();
        }
        let copied = metrics.copies.get();
        log_line!(
            "stopped after {:.1}s: {copied} copied",
            started.elapsed().as_secs_f64()
        );
        if self.once {
            let queue = shared.snapshot.current();
            let queue = queue.as_ref().and_then(|s| s.queue.as_ref());
            let left = queue.map(|q| q.lengths()).unwrap_or_default();
            if left.iter().any(|n| *n != Some(0)) {
                return Err(Error::invalid(format!(
                    "the queue is not empty ({}); the items left keep failing, see the log",
                    left.iter()
                        .map(|n| n.map_or("?".to_string(), |n| n.to_string()))
                        .collect::<Vec<_>>()
                        .join(" / ")
                )));
            }
            let dead = queue
                .map(|q| q.dead().counts())
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(0);
            log_line!(
                "the queue is empty; {dead} dead item(s) in {} (see backpack-replicator-dead)",
                queue.map_or("the dead set".to_string(), |q| q.dead().key())
            );
        }
        Ok(())
    }
}

/// How many workers run rounds for `lanes` copies at once with batches of `batch`: two
/// (one locks and picks while the other's items are copied), more when their batches
/// cannot keep the lanes busy, never more than the lanes.
fn round_workers(lanes: usize, batch: usize) -> usize {
    (2 * lanes).div_ceil(batch.max(1)).max(2).min(lanes.max(1))
}

/// Serves `GET /metrics` on `bound` from `may` coroutines (on the copies' thread).
fn serve_metrics(
    bound: crate::http::Bound,
    metrics: &Arc<Metrics>,
    shared: &Arc<crate::cluster::sync::Shared>,
) -> Result<crate::http::ServerHandle> {
    let listener = bound.listen()?;
    let endpoint = MetricsEndpoint {
        metrics: Arc::clone(metrics),
        shared: Arc::clone(shared),
    };
    let server = crate::http::serve(
        listener,
        Arc::new(endpoint),
        crate::http::Limits::default(),
        Arc::default(),
    )
    .map_err(|err| Error::invalid(format!("cannot serve /metrics: {err}")))?;
    log_line!("metrics at http://{}/metrics", server.addr);
    Ok(server)
}
