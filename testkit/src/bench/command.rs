//! `bp-bench load ...` and `bp-bench matrix ...`.

use super::load::{run, LoadSpec};
use super::matrix::{run_matrix, MatrixSpec};
use super::size_arg;
use super::turns::Side;
use crate::measure::{cpu_seconds, peak_rss_kib};
use argh::FromArgs;
use backpack::command::Command;
use backpack::duration_arg::parse_duration;
use backpack::error::{Error, Result};
use backpack::size::parse_size;
use std::path::PathBuf;
use std::time::Duration;

/// The `backpack` binary whose coordinators the benchmarks start: `$BACKPACK_BIN`, or the
/// one built beside `bp-bench` (cargo puts both in `target/release`).
fn backpack_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("BACKPACK_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let beside = std::env::current_exe()
        .map_err(|err| Error::invalid(err.to_string()))?
        .with_file_name("backpack");
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(Error::invalid(format!(
            "no backpack binary at {}: run cargo build --release, or set BACKPACK_BIN",
            beside.display()
        )))
    }
}

fn list<T: std::str::FromStr>(
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    text.split(',')
        .map(|item| parse(item.trim()).ok_or_else(|| format!("invalid list item {item:?}")))
        .collect()
}

#[derive(FromArgs)]
/// Benchmarks: `load` puts load on any URL; `matrix` runs the standard table on a local
/// cluster it starts (direct to the nodes vs through a coordinator, same run).
pub struct Bench {
    #[argh(subcommand)]
    action: Action,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Action {
    Load(LoadArgs),
    Matrix(MatrixArgs),
    SlowNode(SlowNodeArgs),
    Replication(super::replication_command::ReplicationArgs),
    Scale(ScaleArgs),
    Check(CheckArgs),
    Wakeups(super::wakeups::WakeupsArgs),
    Console(super::console::ConsoleArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "check")]
/// check-shard over synthetic index keys in two real Redis servers (a whole shard): keys
/// judged per second and the command's peak RSS.
struct CheckArgs {
    /// index records on each node (default 1000000)
    #[argh(option, default = "1_000_000")]
    keys: u64,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "scale")]
/// Thousands of shards and many coordinators on a real ZooKeeper: two real coordinators
/// and simulated ones (the production sync code, no HTTP); what size accounting and
/// following the configuration cost ZooKeeper and a coordinator.
struct ScaleArgs {
    /// shards (default 1000), each on two nodes of their own
    #[argh(option, default = "1000")]
    shards: usize,
    /// coordinators in all, two of them real (default 100)
    #[argh(option, default = "100")]
    coordinators: usize,
    /// simulated coordinators that flush sizes the old coordinator's way (default 1)
    #[argh(option, default = "1")]
    old_style: usize,
    /// simulated uploads per second, all coordinators together (default 2000)
    #[argh(option, default = "2000.0")]
    rate: f64,
    /// bytes per simulated upload (default 64kb)
    #[argh(option, default = "64 << 10", from_str_fn(size_arg))]
    size: u64,
    /// capacity of a shard (default 100gb); shards start half full
    #[argh(option, default = "100_000_000_000", from_str_fn(size_arg))]
    capacity: u64,
    /// length of the measured window, and of the fill phase (default 20s)
    #[argh(
        option,
        default = "Duration::from_secs(20)",
        from_str_fn(parse_duration)
    )]
    duration: Duration,
    /// extra size-node rewrites per second, evenly spread over the shards (default 0)
    #[argh(option, default = "0.0")]
    rewrites: f64,
    /// every coordinator's --size-flush (default 3s)
    #[argh(
        option,
        default = "Duration::from_secs(3)",
        from_str_fn(parse_duration)
    )]
    size_flush: Duration,
    /// every coordinator's --size-flush-limit (default 16)
    #[argh(option, default = "16")]
    size_flush_limit: usize,
    /// every coordinator's --size-refresh (default 3s)
    #[argh(
        option,
        default = "Duration::from_secs(3)",
        from_str_fn(parse_duration)
    )]
    size_refresh: Duration,
    /// also fill the cluster up and measure how far shards overflow
    #[argh(switch)]
    fill: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "slow-node")]
/// Open-loop uploads over three single-node shards, healthy and then with node 1 slow:
/// the latency of uploads to the other shards, side by side.
struct SlowNodeArgs {
    /// uploads per second (default 300)
    #[argh(option, default = "300.0")]
    rate: f64,
    /// time per phase (default 10s)
    #[argh(
        option,
        default = "Duration::from_secs(10)",
        from_str_fn(parse_duration)
    )]
    duration: Duration,
    /// how late the slow node answers (default 500ms)
    #[argh(
        option,
        default = "Duration::from_millis(500)",
        from_str_fn(parse_duration)
    )]
    delay: Duration,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "load")]
/// PUT bodies of one size with unique paths to the given base URLs (round-robin).
struct LoadArgs {
    /// base URLs, comma-separated, e.g. http://127.0.0.1:12001
    #[argh(positional)]
    targets: String,
    /// body size (default 1kb)
    #[argh(option, default = "1024", from_str_fn(size_arg))]
    size: u64,
    /// connections (default 16)
    #[argh(option, default = "16")]
    concurrency: usize,
    /// open loop at this many requests per second (default: closed loop)
    #[argh(option)]
    rate: Option<f64>,
    /// how long (default 10s)
    #[argh(
        option,
        default = "Duration::from_secs(10)",
        from_str_fn(parse_duration)
    )]
    duration: Duration,
    /// at most this many requests (default 1000000)
    #[argh(option, default = "1_000_000")]
    count: u64,
    /// report this process's CPU seconds per request and peak RSS (e.g. a coordinator)
    #[argh(option)]
    pid: Option<u32>,
    /// path prefix (default bench)
    #[argh(option, default = "String::from(\"bench\")")]
    prefix: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "matrix")]
/// The standard matrix on a local cluster: sizes x concurrencies, direct vs coordinator.
struct MatrixArgs {
    /// nodes that discard bodies (nginx answering 201) instead of WebDAV nodes, to show
    /// the coordinator's own ceiling
    #[argh(switch)]
    sink: bool,
    /// body sizes (default 1kb,64kb,1mb)
    #[argh(option, default = "String::from(\"1kb,64kb,1mb\")")]
    sizes: String,
    /// concurrencies (default 1,16,64)
    #[argh(option, default = "String::from(\"1,16,64\")")]
    concurrency: String,
    /// time per cell and target (default 3s)
    #[argh(
        option,
        default = "Duration::from_secs(3)",
        from_str_fn(parse_duration)
    )]
    duration: Duration,
    /// bytes per cell and target at most (default 512mb with WebDAV nodes, none with
    /// sink nodes, which store nothing); what a cell stores is deleted
    #[argh(option, from_str_fn(size_arg))]
    cap: Option<u64>,
    /// write every turn's numbers to this file, one tab-separated line each
    #[argh(option)]
    turn_log: Option<PathBuf>,
    /// more flags for the coordinator, space-separated (e.g. "--workers 1")
    #[argh(option, default = "String::new()")]
    coordinator_flags: String,
    /// a second coordinator with these flags instead (space-separated; "" for the
    /// defaults; of the build $BACKPACK_VERSUS_BIN if set) takes turns with the
    /// first, and a table compares the two
    #[argh(option)]
    versus: Option<String>,
    /// turns each side takes per cell, in a balanced order (default 2)
    #[argh(option, default = "2")]
    turns: u32,
    /// which coordinator requires upload tokens (--upload-keys), sent by the client with
    /// every upload to it: first, or second (--versus; its flags "" when not given)
    #[argh(option, from_str_fn(token_side))]
    tokens: Option<Side>,
    /// with --sink, do not also drive the proxy and the coordinator with wrk (it does
    /// not with --versus either)
    #[argh(switch)]
    no_wrk: bool,
    /// also one upload of this size, direct and through the coordinator (default 512mb; 0: none)
    #[argh(option, default = "512 << 20", from_str_fn(size_arg))]
    big_upload: u64,
}

fn token_side(text: &str) -> std::result::Result<Side, String> {
    match text {
        "first" => Ok(Side::First),
        "second" => Ok(Side::Second),
        _ => Err(format!("--tokens {text:?}: first or second")),
    }
}

impl Command for Bench {
    fn run(self) -> Result<()> {
        match self.action {
            Action::Load(args) => {
                let targets: Vec<String> = args
                    .targets
                    .split(',')
                    .map(|t| t.trim_end_matches('/').to_string())
                    .collect();
                let cpu_before = args.pid.and_then(cpu_seconds);
                let report = run(&LoadSpec {
                    targets,
                    body_size: args.size as usize,
                    concurrency: args.concurrency,
                    rate: args.rate,
                    duration: args.duration,
                    max_requests: args.count,
                    prefix: args.prefix,
                    acked: None,
                    headers: String::new(),
                })
                .map_err(Error::invalid)?;
                println!(
                    "{} ok of {} in {:.2}s: {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms{}",
                    report.ok,
                    report.requests,
                    report.elapsed.as_secs_f64(),
                    report.rps(),
                    report.percentile_ms(0.5),
                    report.percentile_ms(0.99),
                    report.percentile_ms(0.999),
                    if args.rate.is_some() { " (from when each request was due)" } else { "" }
                );
                for (kind, count) in &report.errors {
                    println!("errors: {kind}: {count}");
                }
                if let (Some(pid), Some(before)) = (args.pid, cpu_before) {
                    let cpu = cpu_seconds(pid).unwrap_or(before) - before;
                    println!(
                        "process {pid}: {:.3} ms CPU per request, peak RSS {} KiB",
                        cpu * 1000.0 / report.ok.max(1) as f64,
                        peak_rss_kib(pid)
                    );
                }
                Ok(())
            }
            Action::SlowNode(args) => super::slow_node::run_slow_node(
                &backpack_binary()?,
                args.rate,
                args.duration,
                args.delay,
            )
            .map_err(Error::Invalid),
            Action::Replication(args) => args.run(&backpack_binary()?).map_err(Error::Invalid),
            Action::Console(args) => args.run(&backpack_binary()?).map_err(Error::Invalid),
            Action::Wakeups(args) => args.run().map_err(Error::Invalid),
            Action::Check(args) => {
                let report = super::check::run_check(&backpack_binary()?, args.keys.max(1))
                    .map_err(Error::Invalid)?;
                super::check::print(&report);
                Ok(())
            }
            Action::Scale(args) => {
                if args.shards == 0 || args.capacity == 0 {
                    return Err(Error::invalid("--shards and --capacity must be above 0"));
                }
                let spec = super::scale::ScaleSpec {
                    shards: args.shards,
                    coordinators: args.coordinators,
                    old_style: args.old_style.min(args.coordinators.saturating_sub(3)),
                    rate: args.rate.max(0.0),
                    size: args.size,
                    capacity: args.capacity,
                    duration: args.duration,
                    rewrites: args.rewrites.max(0.0),
                    sizes: backpack::cluster::sync::SizeAccounting {
                        flush_every: args.size_flush,
                        flush_most: args.size_flush_limit.max(1),
                        refresh_every: args.size_refresh,
                    },
                    fill: args.fill,
                };
                super::scale::run_scale(&backpack_binary()?, &spec)
                    .map(|_| ())
                    .map_err(Error::Invalid)
            }
            Action::Matrix(args) => {
                let spec = MatrixSpec {
                    sink: args.sink,
                    sizes: list(&args.sizes, |s| parse_size(s).ok()).map_err(Error::Invalid)?,
                    concurrencies: list(&args.concurrency, |s| s.parse().ok())
                        .map_err(Error::Invalid)?,
                    duration: args.duration,
                    cap_bytes: args
                        .cap
                        .unwrap_or(if args.sink { u64::MAX } else { 512 << 20 }),
                    coordinator_flags: args
                        .coordinator_flags
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                    versus: args
                        .versus
                        .or(args.tokens.map(|_| String::new()))
                        .map(|flags| flags.split_whitespace().map(str::to_string).collect()),
                    big_upload: args.big_upload,
                    turns: args.turns.max(1),
                    turn_log: args.turn_log,
                    wrk: args.sink && !args.no_wrk,
                    tokens: args.tokens,
                };
                run_matrix(&backpack_binary()?, &spec).map_err(Error::Invalid)
            }
        }
    }
}
