//! `bp-bench replication`: does replication keep pace with ingest?
//!
//! On the seed example (six nodes, three shards of two, two Redis) one coordinator takes
//! closed-loop uploads. Each turn runs the same load twice: first with no replicator (the
//! ingest ceiling on this machine), then with replicators copying while the uploads come
//! in. For the second run it prints how many items were still queued when the load ended,
//! how long the queue then took to drain, and the replicators' CPU per copy. Each upload
//! queues exactly one item (shards of two nodes), so copies = uploads acknowledged.
//!
//! Between the two runs the replicators copy the first run's items with no upload coming
//! in: what a copy costs each role when copies are the machine's only work, beside what
//! an upload cost in the run without replicators. (During the second run the two share
//! the cores, and every role's CPU per operation rises with the load, the coordinator's
//! too.)

use super::cpu_roles::{cpu_by_role, minus, ROLES};
use super::load::{run, LoadReport, LoadSpec};
use super::turns::median;
use crate::measure::cpu_seconds;
use crate::metrics::{get_text, sample};
use crate::{CoordinatorProcess, LocalCluster, NodeKind, ServerProcess, QUEUE_KEY};
use backpack::size::format_size;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest drain the benchmark waits for.
const DRAIN_LIMIT: Duration = Duration::from_secs(180);

pub struct ReplicationSpec {
    pub kind: NodeKind,
    pub size: u64,
    pub concurrency: usize,
    pub duration: Duration,
    pub turns: u32,
    pub replicators: usize,
    /// Added to each replicator's command line (e.g. a concurrency).
    pub replicator_flags: Vec<String>,
}

/// What one turn measured.
struct Turn {
    without: LoadReport,
    with: LoadReport,
    queued_at_end: u64,
    drain: Option<Duration>,
    cpu_ms_per_copy: f64,
    /// The first run's items, copied with no upload coming in: the copies the replicators
    /// counted, how long that took, and CPU seconds by role meanwhile.
    alone: Alone,
    /// CPU seconds by role during the run without replicators, and during the run with
    /// them plus the drain.
    roles_without: BTreeMap<&'static str, f64>,
    roles_with: BTreeMap<&'static str, f64>,
}

/// Copies made while nothing else ran.
struct Alone {
    copies: u64,
    took: Option<Duration>,
    roles: BTreeMap<&'static str, f64>,
}

/// The queue's length on every Redis server, the largest.
pub(super) fn queued(cluster: &LocalCluster) -> Result<u64, String> {
    let mut most = 0;
    for redis in &cluster.redis {
        let mut conn = redis::Client::open(format!("redis://{}/", redis.address()))
            .and_then(|c| c.get_connection())
            .map_err(|err| format!("Redis {}: {err}", redis.address()))?;
        let length: u64 = redis::cmd("SCARD")
            .arg(QUEUE_KEY)
            .query(&mut conn)
            .map_err(|err| format!("Redis {}: {err}", redis.address()))?;
        most = most.max(length);
    }
    Ok(most)
}

/// Empties the queue and its lag records on every Redis server.
pub(super) fn empty_queue(cluster: &LocalCluster) -> Result<(), String> {
    for redis in &cluster.redis {
        let mut conn = redis::Client::open(format!("redis://{}/", redis.address()))
            .and_then(|c| c.get_connection())
            .map_err(|err| format!("Redis {}: {err}", redis.address()))?;
        redis::cmd("DEL")
            .arg(QUEUE_KEY)
            .arg(format!("{QUEUE_KEY}-queued"))
            .query::<()>(&mut conn)
            .map_err(|err| format!("Redis {}: {err}", redis.address()))?;
    }
    Ok(())
}

/// Renames the queue and its lag records on every Redis server (`hold`: to a key no
/// replicator reads; else back), so that replicators can start and settle before they
/// see the items.
fn hold_queue(cluster: &LocalCluster, hold: bool) -> Result<(), String> {
    let held = |key: &str| format!("{key}-held-by-bench");
    for redis in &cluster.redis {
        let mut conn = redis::Client::open(format!("redis://{}/", redis.address()))
            .and_then(|c| c.get_connection())
            .map_err(|err| format!("Redis {}: {err}", redis.address()))?;
        for key in [QUEUE_KEY.to_string(), format!("{QUEUE_KEY}-queued")] {
            let (from, to) = match hold {
                true => (key.clone(), held(&key)),
                false => (held(&key), key.clone()),
            };
            // A key that is not there (no lag records, say) has nothing to move.
            let exists: bool = redis::cmd("EXISTS")
                .arg(&from)
                .query(&mut conn)
                .map_err(|err| format!("Redis {}: {err}", redis.address()))?;
            if exists {
                redis::cmd("RENAME")
                    .arg(&from)
                    .arg(&to)
                    .query::<()>(&mut conn)
                    .map_err(|err| format!("Redis {}: {err}", redis.address()))?;
            }
        }
    }
    Ok(())
}

/// Waits for the queue to empty: how long it took, or None past `DRAIN_LIMIT`.
fn wait_for_drain(cluster: &LocalCluster) -> Result<Option<Duration>, String> {
    let started = Instant::now();
    loop {
        if queued(cluster)? == 0 {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > DRAIN_LIMIT {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `count` quiet replicators named `<name>-<i>` with `flags`, each serving
/// `/metrics` on a port of its own: the processes, and the base URL of each one's metrics.
pub(super) fn start_replicators(
    cluster: &LocalCluster,
    name: &str,
    count: usize,
    flags: &[String],
) -> Result<(Vec<ServerProcess>, Vec<String>), String> {
    let mut replicators = Vec::new();
    let mut bases = Vec::new();
    for i in 0..count {
        let port = crate::free_port().map_err(|e| e.to_string())?;
        let listen = format!("127.0.0.1:{port}");
        let all: Vec<&str> = ["--quiet", "--listen", &listen]
            .into_iter()
            .chain(flags.iter().map(String::as_str))
            .collect();
        replicators.push(
            cluster
                .start_replicator(&format!("{name}-{i}"), &all)
                .map_err(|err| format!("cannot start a replicator: {err}"))?,
        );
        bases.push(format!("http://{listen}"));
    }
    Ok((replicators, bases))
}

/// The files the replicators say they copied so far (`backpack_replicator_copies_total`).
fn copies_made(bases: &[String]) -> Result<u64, String> {
    let mut copies = 0.0;
    for base in bases {
        let url = format!("{base}/metrics");
        let text = get_text(&url)?;
        copies += sample(&text, "backpack_replicator_copies_total")
            .ok_or_else(|| format!("{url} has no backpack_replicator_copies_total"))?;
    }
    Ok(copies as u64)
}

fn process_cpu(processes: &[ServerProcess]) -> f64 {
    processes
        .iter()
        .filter_map(|p| p.pid().and_then(cpu_seconds))
        .sum()
}

fn one_turn(
    cluster: &LocalCluster,
    coordinator: &str,
    spec: &ReplicationSpec,
    turn: u32,
) -> Result<Turn, String> {
    let load = |prefix: String| LoadSpec {
        targets: vec![coordinator.to_string()],
        body_size: spec.size as usize,
        concurrency: spec.concurrency,
        rate: None,
        duration: spec.duration,
        max_requests: u64::MAX,
        prefix,
        acked: None,
        headers: String::new(),
    };
    let roles_before = cpu_by_role();
    let without = run(&load(format!("without-{turn}")))?;
    let roles_without = minus(&cpu_by_role(), &roles_before);
    // Its items wait aside until the replicators are up, then are copied with nothing
    // else going on; the run with replicators starts from an empty queue.
    hold_queue(cluster, true)?;

    let (mut replicators, metrics) = start_replicators(
        cluster,
        &format!("replicator-{turn}"),
        spec.replicators,
        &spec.replicator_flags,
    )?;
    // Connected and idle before the items come back.
    std::thread::sleep(Duration::from_secs(1));
    let copied_before = copies_made(&metrics)?;
    let roles_before = cpu_by_role();
    hold_queue(cluster, false)?;
    let took = wait_for_drain(cluster)?;
    let roles = minus(&cpu_by_role(), &roles_before);
    let alone = Alone {
        copies: copies_made(&metrics)? - copied_before,
        took,
        roles,
    };
    if took.is_none() {
        empty_queue(cluster)?;
    }
    let cpu_before = process_cpu(&replicators);
    let roles_before = cpu_by_role();
    let with = run(&load(format!("with-{turn}")))?;
    let load_ended = Instant::now();
    let queued_at_end = queued(cluster)?;
    let drain = wait_for_drain(cluster)?.map(|_| load_ended.elapsed());
    let cpu = process_cpu(&replicators) - cpu_before;
    let roles_with = minus(&cpu_by_role(), &roles_before);
    for replicator in &mut replicators {
        replicator.stop();
    }
    Ok(Turn {
        cpu_ms_per_copy: cpu * 1000.0 / with.ok.max(1) as f64,
        without,
        with,
        queued_at_end,
        drain,
        alone,
        roles_without,
        roles_with,
    })
}

/// The seed example on nodes of `kind` with one quiet coordinator; also the nodes' name
/// for the tables.
pub(super) fn seed_example_with_coordinator(
    bin: &Path,
    label: &str,
    kind: NodeKind,
) -> Result<(LocalCluster, CoordinatorProcess, &'static str), String> {
    let nodes = match kind {
        NodeKind::Backpack => "real Backpack nodes",
        NodeKind::WebDav => "nginx WebDAV nodes",
        NodeKind::Sink => "sink nodes",
    };
    eprintln!("starting the seed example: six {nodes}, three shards of two, two Redis...");
    let cluster = LocalCluster::seed_example(bin, label, kind).map_err(|e| e.to_string())?;
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .map_err(|e| e.to_string())?;
    Ok((cluster, coordinator, nodes))
}

pub fn run_replication(bin: &Path, spec: &ReplicationSpec) -> Result<(), String> {
    let (cluster, coordinator, nodes) =
        seed_example_with_coordinator(bin, "bench-replication", spec.kind)?;
    let url = coordinator.url("");
    println!(
        "\nseed example on {nodes}; {} uploads at c={}, {}s per run; {} replicator(s){}\n",
        format_size(spec.size),
        spec.concurrency,
        spec.duration.as_secs_f64(),
        spec.replicators,
        if spec.replicator_flags.is_empty() {
            " with default settings".to_string()
        } else {
            format!(" with {}", spec.replicator_flags.join(" "))
        }
    );
    println!("| turn | uploads/s without replicators | uploads/s with | ratio | queued when the load ended | drain | replicator CPU ms/copy |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut turns = Vec::new();
    for turn in 0..spec.turns {
        let t = one_turn(&cluster, &url, spec, turn)?;
        let errors: u64 =
            t.without.errors.values().sum::<u64>() + t.with.errors.values().sum::<u64>();
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {} of {} ({:.1} %) | {} | {:.3} |{}",
            turn + 1,
            t.without.rps(),
            t.with.rps(),
            t.with.rps() / t.without.rps().max(1e-9),
            t.queued_at_end,
            t.with.ok,
            100.0 * t.queued_at_end as f64 / t.with.ok.max(1) as f64,
            t.drain.map_or("not drained".to_string(), |d| format!(
                "{:.2}s",
                d.as_secs_f64()
            )),
            t.cpu_ms_per_copy,
            if errors > 0 {
                format!(" {errors} upload errors")
            } else {
                String::new()
            }
        );
        turns.push(t);
    }
    if turns.len() > 1 {
        let m = |f: &dyn Fn(&Turn) -> f64| median(turns.iter().map(f).collect());
        println!(
            "| median | {:.0} | {:.0} | {:.2} | {:.1} % | {:.2}s | {:.3} |",
            m(&|t| t.without.rps()),
            m(&|t| t.with.rps()),
            m(&|t| t.with.rps() / t.without.rps().max(1e-9)),
            m(&|t| 100.0 * t.queued_at_end as f64 / t.with.ok.max(1) as f64),
            m(&|t| t.drain.map_or(f64::INFINITY, |d| d.as_secs_f64())),
            m(&|t| t.cpu_ms_per_copy),
        );
    }
    print_alone(&turns);
    // Where the machine's CPU went, per upload: the extra work replication costs the
    // nodes and the rest shows how much ingest any replicator can leave on these cores.
    println!("\nCPU ms per upload by role (the run with replicators includes its drain):\n");
    println!("| turn | run | {} | total |", ROLES.join(" | "));
    println!("| ---: | --- |{} ---: |", " ---: |".repeat(ROLES.len()));
    for (i, t) in turns.iter().enumerate() {
        for (run, roles, uploads) in [
            ("without", &t.roles_without, t.without.ok),
            ("with", &t.roles_with, t.with.ok),
            ("copies alone, per copy", &t.alone.roles, t.alone.copies),
        ] {
            let per = |cpu: f64| cpu * 1000.0 / uploads.max(1) as f64;
            let cells: Vec<String> = ROLES
                .iter()
                .map(|role| format!("{:.3}", per(roles.get(role).copied().unwrap_or(0.0))))
                .collect();
            println!(
                "| {} | {run} | {} | {:.3} |",
                i + 1,
                cells.join(" | "),
                per(roles.values().sum())
            );
        }
    }
    Ok(())
}

/// The copies made with nothing else running, against the uploads without replicators.
fn print_alone(turns: &[Turn]) {
    println!("\nthe run without replicators' items, copied with no upload coming in:\n");
    println!("| turn | copies | took | copies/s | replicator CPU ms/copy | coordinator CPU ms/upload without replicators | ratio |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let per = |roles: &BTreeMap<&str, f64>, role: &str, count: u64| {
        roles.get(role).copied().unwrap_or(0.0) * 1000.0 / count.max(1) as f64
    };
    let mut ratios = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        let copy = per(&t.alone.roles, "replicators", t.alone.copies);
        let upload = per(&t.roles_without, "coordinator", t.without.ok);
        let ratio = copy / upload.max(1e-9);
        ratios.push(ratio);
        let (took, rate) = match t.alone.took {
            Some(took) => (
                format!("{:.2}s", took.as_secs_f64()),
                format!(
                    "{:.0}",
                    t.alone.copies as f64 / took.as_secs_f64().max(1e-9)
                ),
            ),
            None => ("not drained".to_string(), "-".to_string()),
        };
        println!(
            "| {} | {} | {took} | {rate} | {copy:.3} | {upload:.3} | {ratio:.2}x |",
            i + 1,
            t.alone.copies
        );
    }
    if ratios.len() > 1 {
        println!("| median | | | | | | {:.2}x |", median(ratios));
    }
}
