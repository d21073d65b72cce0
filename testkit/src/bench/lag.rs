//! `bp-bench replication --open-loop`: how long a file has one copy, at loads the machine
//! carries.
//!
//! On the seed example it first measures the closed-loop capacity without replicators
//! (the ceiling the rates are fractions of), then starts the replicators and offers
//! open-loop uploads at each rate. Every acknowledged upload is watched from outside
//! (`lag_watch`) until both nodes of its shard hold the file: the time from the
//! acknowledgement to then is the upload's lag. Beside it, the lag the
//! replicators measured themselves (their `backpack_replicator_lag_seconds` histogram,
//! the difference over the rate's run), so the two can be compared bucket by bucket.

use super::cpu_roles::{cpu_by_role, minus, ROLES};
use super::lag_histogram::{scrape_lags, Buckets};
use super::lag_watch::{Watcher, WAIT_LIMIT};
use super::load::{percentile_ms, run, LoadSpec};
use super::replication::{empty_queue, queued, seed_example_with_coordinator, start_replicators};
use crate::{LocalCluster, NodeKind};
use backpack::size::format_size;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

/// Connections of the open-loop load: enough that none waits for a free one.
const OPEN_LOOP_CONNECTIONS: usize = 64;

/// A rate of uploads, as given: a share of the measured capacity or uploads per second.
#[derive(Clone, Copy, Debug)]
pub enum Rate {
    Percent(f64),
    PerSecond(f64),
}

impl Rate {
    /// `25%`, or `600` or `600/s`.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || format!("{text}: a rate is a percentage (25%) or uploads per second (600)");
        let text = text.trim();
        match text.strip_suffix('%') {
            Some(percent) => percent.parse().map(Rate::Percent).map_err(|_| bad()),
            None => text
                .strip_suffix("/s")
                .unwrap_or(text)
                .parse()
                .map(Rate::PerSecond)
                .map_err(|_| bad()),
        }
        .and_then(|rate| match rate {
            Rate::Percent(x) | Rate::PerSecond(x) if x > 0.0 && x.is_finite() => Ok(rate),
            _ => Err(bad()),
        })
    }

    fn per_second(self, capacity: f64) -> f64 {
        match self {
            Rate::Percent(percent) => capacity * percent / 100.0,
            Rate::PerSecond(rate) => rate,
        }
    }
}

pub struct OpenLoopSpec {
    pub kind: NodeKind,
    pub size: u64,
    /// Connections of the closed-loop capacity run.
    pub capacity_concurrency: usize,
    pub capacity_duration: Duration,
    /// Time of each rate's load.
    pub duration: Duration,
    pub rates: Vec<Rate>,
    pub replicators: usize,
    pub replicator_flags: Vec<String>,
}

/// What one rate measured.
struct RateRun {
    offered: f64,
    acked: u64,
    errors: u64,
    /// From outside: each acknowledged upload's lag, sorted, in microseconds.
    outside_us: Vec<u64>,
    /// Uploads the watcher never saw on both nodes within `WAIT_LIMIT`.
    never_seen: usize,
    histogram: Buckets,
    queued_at_end: u64,
    emptied: Option<Duration>,
    roles: BTreeMap<&'static str, f64>,
}

fn one_rate(
    cluster: &LocalCluster,
    coordinator: &str,
    replicators: &[String],
    spec: &OpenLoopSpec,
    rate: f64,
    label: &str,
) -> Result<RateRun, String> {
    let watcher = Watcher::for_prefix(cluster, label)?;
    let before = scrape_lags(replicators)?;
    let roles_before = cpu_by_role();
    let (told, acks) = channel();
    let (report, watched, queued_at_end, emptied) = std::thread::scope(|s| {
        let watcher = s.spawn(|| watcher.run(acks));
        let report = run(&LoadSpec {
            targets: vec![coordinator.to_string()],
            body_size: spec.size as usize,
            concurrency: OPEN_LOOP_CONNECTIONS,
            rate: Some(rate),
            duration: spec.duration,
            max_requests: u64::MAX,
            prefix: label.to_string(),
            acked: Some(told),
            headers: String::new(),
        });
        let ended = Instant::now();
        let queued_at_end = queued(cluster);
        let emptied = loop {
            match queued(cluster) {
                Ok(0) => break Some(ended.elapsed()),
                _ if ended.elapsed() > WAIT_LIMIT => break None,
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        let watched = watcher.join().unwrap_or_default();
        (report, watched, queued_at_end, emptied)
    });
    let report = report?;
    // The replicators' numbers settle with the queue: the last removal is counted.
    let histogram = scrape_lags(replicators)?.minus(&before);
    Ok(RateRun {
        offered: rate,
        acked: report.ok,
        errors: report.errors.values().sum(),
        outside_us: watched.lags_us,
        never_seen: watched.never_seen,
        histogram,
        queued_at_end: queued_at_end?,
        emptied,
        roles: minus(&cpu_by_role(), &roles_before),
    })
}

/// `0.042` s as `42 ms`.
fn ms(seconds: f64) -> String {
    format!("{:.0} ms", seconds * 1000.0)
}

pub fn run_open_loop(bin: &Path, spec: &OpenLoopSpec) -> Result<(), String> {
    let (cluster, coordinator, nodes) =
        seed_example_with_coordinator(bin, "bench-replication-lag", spec.kind)?;
    let url = coordinator.url("");

    eprintln!("closed-loop capacity without replicators...");
    let roles_before = cpu_by_role();
    let capacity = run(&LoadSpec {
        targets: vec![url.clone()],
        body_size: spec.size as usize,
        concurrency: spec.capacity_concurrency,
        rate: None,
        duration: spec.capacity_duration,
        max_requests: u64::MAX,
        prefix: "capacity".into(),
        acked: None,
        headers: String::new(),
    })?;
    let capacity_roles = minus(&cpu_by_role(), &roles_before);
    let coordinator_ms = capacity_roles.get("coordinator").copied().unwrap_or(0.0) * 1000.0
        / capacity.ok.max(1) as f64;
    empty_queue(&cluster)?;

    let (mut replicators, metrics) = start_replicators(
        &cluster,
        "replicator",
        spec.replicators,
        &spec.replicator_flags,
    )?;
    // Connected and idle before the load starts.
    std::thread::sleep(Duration::from_secs(1));

    let mut runs = Vec::new();
    for (i, rate) in spec.rates.iter().enumerate() {
        let per_second = rate.per_second(capacity.rps());
        eprintln!("open loop at {per_second:.0} uploads/s...");
        let label = format!("rate-{i}");
        runs.push((
            *rate,
            one_rate(&cluster, &url, &metrics, spec, per_second, &label)?,
        ));
    }
    for replicator in &mut replicators {
        replicator.stop();
    }
    print_tables(spec, nodes, capacity.rps(), coordinator_ms, &runs);
    Ok(())
}

fn print_tables(
    spec: &OpenLoopSpec,
    nodes: &str,
    capacity: f64,
    coordinator_ms: f64,
    runs: &[(Rate, RateRun)],
) {
    println!(
        "\nseed example on {nodes}; {} uploads; capacity without replicators (closed loop, c={}, {}s): {capacity:.0} uploads/s, coordinator {coordinator_ms:.3} ms CPU per upload; open loop for {}s per rate; {} replicator(s){}\n",
        format_size(spec.size),
        spec.capacity_concurrency,
        spec.capacity_duration.as_secs_f64(),
        spec.duration.as_secs_f64(),
        spec.replicators,
        match spec.replicator_flags.is_empty() {
            true => " with default settings".to_string(),
            false => format!(" with {}", spec.replicator_flags.join(" ")),
        }
    );
    println!("Lag: the replicators' histogram (the bucket holding the quantile) beside the same measured from outside for every upload.\n");
    println!("| rate | uploads/s | acknowledged | p50 histogram | p50 outside | p99 histogram | p99 outside | max histogram | max outside | agree within a bucket | queued at the end | emptied after |");
    println!(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
    );
    for (rate, run) in runs {
        let outside = |q: f64| percentile_ms(&run.outside_us, q) / 1000.0;
        let max = run
            .outside_us
            .last()
            .map_or(f64::NAN, |us| *us as f64 / 1e6);
        let agree = [0.5, 0.99]
            .iter()
            .all(|q| run.histogram.within_a_bucket(*q, outside(*q)));
        let mut notes = Vec::new();
        if run.errors > 0 {
            notes.push(format!("{} upload errors", run.errors));
        }
        if run.never_seen > 0 {
            notes.push(format!("{} never seen on both nodes", run.never_seen));
        }
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{}",
            match rate {
                Rate::Percent(p) => format!("{p}%"),
                Rate::PerSecond(r) => format!("{r}/s"),
            },
            run.offered,
            run.acked,
            run.histogram.quantile_bucket(0.5),
            ms(outside(0.5)),
            run.histogram.quantile_bucket(0.99),
            ms(outside(0.99)),
            run.histogram.quantile_bucket(1.0),
            ms(max),
            if agree { "yes" } else { "no" },
            run.queued_at_end,
            run.emptied
                .map_or("not emptied".into(), |d| format!("{:.2}s", d.as_secs_f64())),
            match notes.is_empty() {
                true => String::new(),
                false => format!(" {}", notes.join(", ")),
            }
        );
    }
    println!("\nCPU ms per upload by role, each rate's load and its drain (replicators: per copy; one copy an upload):\n");
    println!(
        "| rate | {} | total | replicators / coordinator without |",
        ROLES.join(" | ")
    );
    println!("| ---: |{} ---: | ---: |", " ---: |".repeat(ROLES.len()));
    for (rate, run) in runs {
        let per = |cpu: f64| cpu * 1000.0 / run.acked.max(1) as f64;
        let cells: Vec<String> = ROLES
            .iter()
            .map(|role| format!("{:.3}", per(run.roles.get(role).copied().unwrap_or(0.0))))
            .collect();
        let replicators = per(run.roles.get("replicators").copied().unwrap_or(0.0));
        println!(
            "| {:.0}/s | {} | {:.3} | {:.2}x |",
            rate.per_second(capacity),
            cells.join(" | "),
            per(run.roles.values().sum()),
            replicators / coordinator_ms.max(1e-9)
        );
    }
}
