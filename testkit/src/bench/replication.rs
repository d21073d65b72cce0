//! `bp-bench replication`: does replication keep pace with ingest?
//!
//! On the seed example (six nodes, three shards of two, two Redis) one coordinator takes
//! closed-loop uploads. Each turn runs the same load twice: first with no replicator (the
//! ingest ceiling on this machine), then with replicators copying while the uploads come
//! in. For the second run it prints how many items were still queued when the load ended,
//! how long the queue then took to drain, and the replicators' CPU per copy. Each upload
//! queues exactly one item (shards of two nodes), so copies = uploads acknowledged.

use super::load::{run, LoadReport, LoadSpec};
use super::turns::median;
use crate::measure::cpu_seconds;
use crate::{CoordinatorProcess, LocalCluster, NodeKind, ServerProcess, QUEUE_KEY};
use backpack::size::format_size;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The roles `cpu_by_role` sums by, in table order.
pub(super) const ROLES: [&str; 7] = [
    "coordinator",
    "replicators",
    "nodes",
    "redis",
    "zookeeper",
    "load generator",
    "other",
];

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
    /// CPU seconds by role during the run without replicators, and during the run with
    /// them plus the drain.
    roles_without: BTreeMap<&'static str, f64>,
    roles_with: BTreeMap<&'static str, f64>,
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

/// Every process on the machine now: pid -> (role, CPU seconds used so far). Roles: the
/// coordinator, the replicators, the nodes (nginx or Node.js), Redis, ZooKeeper, this
/// load generator, and the rest.
pub(super) type Processes = BTreeMap<u32, (&'static str, f64)>;

pub(super) fn cpu_by_role() -> Processes {
    let mut roles = Processes::new();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return roles;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(cpu) = cpu_seconds(pid) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let arg0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let arg0 = String::from_utf8_lossy(arg0);
        let name = arg0.rsplit('/').next().unwrap_or_default();
        let role = if pid == me {
            "load generator"
        } else if name.starts_with("backpack-coordinator") {
            "coordinator"
        } else if name.starts_with("backpack-replicator") {
            "replicators"
        } else if name.starts_with("nginx") || name == "node" {
            "nodes"
        } else if name.starts_with("redis-server") {
            "redis"
        } else if name == "java" {
            "zookeeper"
        } else {
            "other"
        };
        roles.insert(pid, (role, cpu));
    }
    roles
}

/// CPU seconds by role between two looks, counting only the processes seen both times
/// (one that ended in between, or changed its name while exiting, would count its whole
/// life, or minus it).
pub(super) fn minus(after: &Processes, before: &Processes) -> BTreeMap<&'static str, f64> {
    let mut roles = BTreeMap::new();
    for (pid, (role, cpu)) in after {
        if let Some((_, earlier)) = before.get(pid) {
            *roles.entry(*role).or_insert(0.0) += cpu - earlier;
        }
    }
    roles
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
    // Its items are not copied: the run with replicators starts from an empty queue.
    empty_queue(cluster)?;

    let flags: Vec<&str> = std::iter::once("--quiet")
        .chain(spec.replicator_flags.iter().map(String::as_str))
        .collect();
    let mut replicators = (0..spec.replicators)
        .map(|i| cluster.start_replicator(&format!("replicator-{turn}-{i}"), &flags))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|err| format!("cannot start a replicator: {err}"))?;
    // Connected and idle before the load starts.
    std::thread::sleep(Duration::from_secs(1));
    let cpu_before = process_cpu(&replicators);
    let roles_before = cpu_by_role();
    let with = run(&load(format!("with-{turn}")))?;
    let load_ended = Instant::now();
    let queued_at_end = queued(cluster)?;
    let drain = loop {
        if queued(cluster)? == 0 {
            break Some(load_ended.elapsed());
        }
        if load_ended.elapsed() > DRAIN_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
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
    // Where the machine's CPU went, per upload: the extra work replication costs the
    // nodes and the rest shows how much ingest any replicator can leave on these cores.
    println!("\nCPU ms per upload by role (the run with replicators includes its drain):\n");
    println!("| turn | run | {} | total |", ROLES.join(" | "));
    println!("| ---: | --- |{} ---: |", " ---: |".repeat(ROLES.len()));
    for (i, t) in turns.iter().enumerate() {
        for (run, roles, uploads) in [
            ("without", &t.roles_without, t.without.ok),
            ("with", &t.roles_with, t.with.ok),
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
