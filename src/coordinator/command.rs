//! `backpack-coordinator <zk_servers> </zk/root> <listen_host> <listen_port> [statsd]`.

use super::observers::statsd::Statsd;
use super::observers::{queue_length, Observers};
use super::upload::{UploadEvents, UploadSettings, Uploads};
use super::Coordinator;
use crate::cluster::snapshot::SnapshotCell;
use crate::cluster::sync::{self as cluster_sync, Shared, SizeAccounting};
use crate::command::args::daemon_command;
use crate::command::Command;
use crate::duration_arg::{parse_duration, secs};
use crate::error::{Error, Result};
use crate::http::{self, Limits, ServerStatus};
use crate::log_line;
use crate::shutdown::Shutdown;
use crate::size::parse_size;
use crate::upload_auth::key_ring::{self, KeyEvents, KeyRing};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|err| err.to_string())
}

daemon_command! {
    /// Take PUT uploads and place them on the cluster's shards: each file is stored on one node
    /// of a writable shard (chosen by free space) and replication to the others is queued.
    /// Answers {"shard_id": "<id>"}; GET /stats reports the cluster.
    pub struct CoordinatorCommand {
        /// address to listen on, e.g. 127.0.0.1 or 0.0.0.0
        #[argh(positional)]
        listen_host: String,
        /// port to listen on, e.g. 12001
        #[argh(positional)]
        listen_port: u16,
        /// statsd server host[:port] (port 8125 by default)
        #[argh(positional)]
        statsd: Option<String>,
        /// largest upload accepted (default 1gb); larger ones get 413
        #[argh(option, default = "1 << 30", from_str_fn(size_arg))]
        max_body: u64,
        /// uploads up to this size are buffered in memory; larger ones stream to the first node
        /// while a spool file keeps them for the next (default 1mb)
        #[argh(option, default = "1 << 20", from_str_fn(size_arg))]
        memory_body: u64,
        /// bodies held in memory at once, all uploads together; a body that does not fit is
        /// spooled like a large one (default 64mb)
        #[argh(option, default = "64 << 20", from_str_fn(size_arg))]
        memory_budget: u64,
        /// directory for spool files (default: the system's temporary directory)
        #[argh(option)]
        spool_dir: Option<PathBuf>,
        /// time for a whole PUT to a node, body included (default 120s)
        #[argh(option, default = "secs(120)", from_str_fn(parse_duration))]
        node_timeout: Duration,
        /// how long a failed node is tried last (default 5s)
        #[argh(option, default = "secs(5)", from_str_fn(parse_duration))]
        node_cooldown: Duration,
        /// shards an upload may try before it fails (default 3)
        #[argh(option, default = "3")]
        shard_attempts: usize,
        /// nodes of one shard that must store an upload before it is acknowledged; the
        /// body goes to them at once and the shard's other nodes get queue items (default
        /// 1: one node stores it, the rest is queued)
        #[argh(option, default = "1")]
        sync_copies: usize,
        /// how often size increments are written to ZooKeeper (default 3s)
        #[argh(option, default = "secs(3)", from_str_fn(parse_duration))]
        size_flush: Duration,
        /// shard-size nodes written per flush at most; more pending wait for the next flush,
        /// those with the most pending bytes relative to their free space first (default 16)
        #[argh(option, default = "16")]
        size_flush_limit: usize,
        /// how often every shard size is read from ZooKeeper, all in one batch (default 3s)
        #[argh(option, default = "secs(3)", from_str_fn(parse_duration))]
        size_refresh: Duration,
        /// time for a request's head to arrive (default 10s)
        #[argh(option, default = "secs(10)", from_str_fn(parse_duration))]
        header_timeout: Duration,
        /// longest pause inside a request body (default 30s)
        #[argh(option, default = "secs(30)", from_str_fn(parse_duration))]
        body_timeout: Duration,
        /// how long an idle keep-alive connection stays open (default 60s)
        #[argh(option, default = "secs(60)", from_str_fn(parse_duration))]
        idle_timeout: Duration,
        /// open client connections at most; more get 503 (default 10000)
        #[argh(option, default = "10_000")]
        max_connections: usize,
        /// worker threads for coroutines (default: the number of cores); as many of them
        /// take clients as the load needs
        #[argh(option)]
        workers: Option<usize>,
        /// coroutines kept ready for new connections (default 100); each costs a few KiB of
        /// memory even when idle (may's own default, 1000, is about 8 MiB)
        #[argh(option, default = "100")]
        coroutine_pool: usize,
        /// coroutine stack size in KiB (default 256; 32 overflows)
        #[argh(option, default = "256")]
        stack_kib: usize,
        /// on SIGTERM, how long uploads in flight may take to finish (default 30s)
        #[argh(option, default = "secs(30)", from_str_fn(parse_duration))]
        drain_timeout: Duration,
        /// how often statsd gets the cluster gauges (default 10s)
        #[argh(option, default = "secs(10)", from_str_fn(parse_duration))]
        statsd_interval: Duration,
        /// require a signed upload token on every upload, signed by a key of this file
        /// (lines of `<key-id> <secret in base64>`; not readable by other users); it is
        /// re-read on SIGHUP and when it changes
        #[argh(option)]
        upload_keys: Option<PathBuf>,
        /// do not log successful uploads (failures are always logged)
        #[argh(switch)]
        quiet: bool,
    }
}

impl Command for CoordinatorCommand {
    fn run(self) -> Result<()> {
        if self.sync_copies == 0 {
            return Err(Error::Usage(
                "--sync-copies must be at least 1 (the node that stores the upload)".into(),
            ));
        }
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        // may counts stack sizes in machine words.
        may::config()
            .set_workers(workers.max(1))
            .set_pool_capacity(self.coroutine_pool.max(1))
            .set_stack_size(self.stack_kib.max(64) * 1024 / std::mem::size_of::<usize>());
        let statsd = match &self.statsd {
            Some(address) => Some(Arc::new(Statsd::new(address).map_err(Error::Invalid)?)),
            None => None,
        };

        let upload_keys = self.upload_keys.as_deref().map(KeyRing::load).transpose()?;

        // Bound first: a port in use stops the coordinator before it does anything. It
        // listens once it can serve (connections are refused until then).
        let address = format!("{}:{}", self.listen_host, self.listen_port);
        let bound = http::bind(&address)?;
        let shared = Shared::default();
        let sync = cluster_sync::start(
            self.sync_settings(Some(SizeAccounting {
                flush_every: self.size_flush,
                flush_most: self.size_flush_limit.max(1),
                refresh_every: self.size_refresh,
            })),
            &shared,
        )?;
        let snapshot = Arc::clone(&shared.snapshot);
        // Serve nothing before the configuration is loaded (the sync thread logs what it
        // waits for).
        snapshot.wait_newer(0);

        let server_status = Arc::new(ServerStatus::default());
        let observers = Arc::new(Observers::new(
            Arc::clone(&snapshot),
            Arc::clone(&shared.health),
            Arc::clone(&server_status),
            statsd.clone(),
        ));
        let mut uploads = Uploads::new(
            UploadSettings {
                max_body: self.max_body,
                memory_body: self.memory_body.min(self.max_body),
                memory_budget: self.memory_budget,
                spool_dir: self.spool_dir.clone().unwrap_or_else(std::env::temp_dir),
                shard_attempts: self.shard_attempts.max(1),
                node_limits: self.node_limits(self.node_timeout),
                node_cooldown: self.node_cooldown,
                log_uploads: !self.quiet,
                sync_copies: self.sync_copies,
            },
            Arc::clone(&snapshot),
            Arc::clone(&shared.sizes),
            Arc::clone(&observers) as Arc<dyn UploadEvents>,
        );
        match upload_keys {
            Some(ring) => {
                ring.watch(Arc::clone(&observers) as Arc<dyn KeyEvents>)?;
                uploads = uploads.requiring_tokens(ring);
            }
            None => key_ring::ignore_hangups()?,
        }
        let coordinator = Coordinator { uploads, observers };
        let limits = Limits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            ..Limits::default()
        };
        let coordinator = Arc::new(coordinator);
        crate::cluster::record_sweeper::start(Arc::clone(&snapshot))?;
        if let Some(statsd) = statsd {
            start_statsd_gauges(statsd, snapshot, self.statsd_interval)?;
        }
        let server = http::serve(bound.listen()?, coordinator, limits, server_status)
            .map_err(|err| Error::invalid(format!("cannot serve on {address}: {err}")))?;
        log_line!(
            "backpack-coordinator listening on {} ({workers} workers)",
            server.addr
        );

        // SIGTERM or SIGINT: stop taking connections, let uploads in flight finish (for at
        // most --drain-timeout), apply pending size increments, exit 0. A second signal
        // exits at once.
        Shutdown::on_signals("no new connections; finishing uploads in flight")?.wait();
        let left = server.shutdown(self.drain_timeout);
        if left > 0 {
            log_line!(
                "{left} requests still in flight after {:?}; stopping anyway",
                self.drain_timeout
            );
        }
        if !sync.flush(Duration::from_secs(10)) {
            log_line!("could not apply the pending size increments");
        }
        log_line!("stopped");
        Ok(())
    }
}

/// Sends the cluster gauges to statsd every `interval`, from a thread of its own.
fn start_statsd_gauges(
    statsd: Arc<Statsd>,
    snapshots: Arc<SnapshotCell>,
    interval: Duration,
) -> Result<()> {
    std::thread::Builder::new()
        .name("statsd".into())
        .spawn(move || loop {
            if let Some(snapshot) = snapshots.current() {
                statsd.gauges(&snapshot, queue_length(Some(&snapshot)));
            }
            std::thread::sleep(interval);
        })
        .map(|_| ())
        .map_err(|err| Error::invalid(format!("cannot start the statsd thread: {err}")))
}
