//! `bp-bench replication`'s arguments: the closed-loop comparison (`replication`) or, with
//! `--open-loop`, the lag at fixed rates (`lag`).

use super::lag::{run_open_loop, OpenLoopSpec, Rate};
use super::replication::{run_replication, ReplicationSpec};
use super::size_arg;
use crate::NodeKind;
use argh::FromArgs;
use backpack::duration_arg::parse_duration;
use std::path::Path;
use std::time::Duration;

#[derive(FromArgs)]
#[argh(subcommand, name = "replication")]
/// Uploads through one coordinator on the seed example, without and then with
/// replicators: ingest both ways, items queued when the load ends, drain time, and the
/// replicators' CPU per copy. With --open-loop: the closed-loop capacity without
/// replicators, then open-loop uploads at each of --rates with the replicators on, and
/// the lag of every upload, measured from outside and by the replicators.
pub struct ReplicationArgs {
    /// real Backpack nodes instead of nginx WebDAV nodes
    #[argh(switch)]
    real: bool,
    /// body size (default 64kb)
    #[argh(option, default = "64 << 10", from_str_fn(size_arg))]
    size: u64,
    /// upload connections of the closed-loop runs (default 16)
    #[argh(option, default = "16")]
    concurrency: usize,
    /// time per run (default 15s; with --open-loop, per rate, default 60s)
    #[argh(option, from_str_fn(parse_duration))]
    duration: Option<Duration>,
    /// turns, each a run without and a run with replicators (default 1)
    #[argh(option, default = "1")]
    turns: u32,
    /// replicator processes (default 2)
    #[argh(option, default = "2")]
    replicators: usize,
    /// more arguments for each replicator, space-separated (e.g. "8" for 8 copies at once)
    #[argh(option, default = "String::new()")]
    replicator_flags: String,
    /// open-loop uploads at fixed rates, with the lag of each
    #[argh(switch)]
    open_loop: bool,
    /// with --open-loop: the rates, comma-separated, as percentages of the capacity
    /// measured in the same run or as uploads per second (default 10%,25%,40%,55%)
    #[argh(option, default = "String::from(\"10%,25%,40%,55%\")")]
    rates: String,
    /// with --open-loop: time of the closed-loop capacity run (default 15s)
    #[argh(
        option,
        default = "Duration::from_secs(15)",
        from_str_fn(parse_duration)
    )]
    capacity_duration: Duration,
}

impl ReplicationArgs {
    pub fn run(&self, bin: &Path) -> Result<(), String> {
        let kind = match self.real {
            true => NodeKind::Backpack,
            false => NodeKind::WebDav,
        };
        let replicator_flags: Vec<String> = self
            .replicator_flags
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !self.open_loop {
            return run_replication(
                bin,
                &ReplicationSpec {
                    kind,
                    size: self.size,
                    concurrency: self.concurrency,
                    duration: self.duration.unwrap_or(Duration::from_secs(15)),
                    turns: self.turns.max(1),
                    replicators: self.replicators,
                    replicator_flags,
                },
            );
        }
        let rates = self
            .rates
            .split(',')
            .map(Rate::parse)
            .collect::<Result<Vec<_>, _>>()?;
        run_open_loop(
            bin,
            &OpenLoopSpec {
                kind,
                size: self.size,
                capacity_concurrency: self.concurrency,
                capacity_duration: self.capacity_duration,
                duration: self.duration.unwrap_or(Duration::from_secs(60)),
                rates,
                replicators: self.replicators,
                replicator_flags,
            },
        )
    }
}
