//! `bp-bench scale`: what a big cluster costs ZooKeeper and the coordinators following it.
//!
//! On a real ZooKeeper: `shards` shards of two nodes each (`2 x shards` nodes in the
//! servers-map), two real coordinator processes, and `coordinators - 2` simulated ones
//! (`sim`) placing `rate` made-up uploads a second between them. The real ones take no
//! uploads: what they spend is the cost of following the cluster. Printed: ZooKeeper
//! requests a second from size accounting and following, watch events per coordinator,
//! the real coordinators' CPU, how fast a shard disable reaches them, how far sizes lag,
//! whether every placed byte is in the size nodes after a final flush, and (with `--fill`)
//! how far shards overflow when the whole cluster fills up.

use crate::metrics::{get_text, sample};
use backpack::cluster::sync::SizeAccounting;
use backpack::zk::{counts, ZkCounts};
use std::path::Path;
use std::time::{Duration, Instant};

mod fill;
mod generator;
mod report;
mod sim;
mod world;

use generator::Generator;
pub use report::ScaleReport;
use world::World;

/// How often the size lag is sampled during the window.
const LAG_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ScaleSpec {
    pub shards: usize,
    /// All coordinators: two real ones, the rest simulated.
    pub coordinators: usize,
    /// Simulated coordinators that flush the old way (among the simulated ones).
    pub old_style: usize,
    /// Simulated uploads a second, all coordinators together.
    pub rate: f64,
    /// Bytes of a simulated upload.
    pub size: u64,
    /// Capacity of a shard; shards start half full.
    pub capacity: u64,
    pub duration: Duration,
    /// Extra size-node rewrites a second, spread evenly over the shards (+1 byte each).
    pub rewrites: f64,
    /// Size settings of every coordinator, real and simulated.
    pub sizes: SizeAccounting,
    /// Also run the fill phase: the cluster fills up, and overflow is measured.
    pub fill: bool,
}

/// Runs the benchmark; prints and returns what it measured.
pub fn run_scale(bin: &Path, spec: &ScaleSpec) -> Result<ScaleReport, String> {
    let world = World::start(bin, spec)?;
    let mut report = ScaleReport::new(spec, &world);

    // The steady window: what following and accounting cost.
    let generator = Generator::start(&world, spec.rate, spec.size, spec.rewrites);
    // Every 2 s, how many placed bytes the size nodes do not show yet.
    let before = Readings::take(&world)?;
    let end = before.at + spec.duration;
    while Instant::now() < end {
        std::thread::sleep(end.saturating_duration_since(Instant::now()).min(LAG_EVERY));
        let placed = world.initial_total + generator.placed() + generator.rewritten();
        report
            .lags
            .push(placed.saturating_sub(world.total_current()?));
    }
    let after = Readings::take(&world)?;
    // The benchmark's own requests are no coordinator's: the rewriter's (a read and a
    // write per attempt) and the lag samples' reads.
    let own = ZkCounts {
        reads: generator.rewrite_attempts() + (report.lags.len() * spec.shards) as u64,
        writes: generator.rewrite_attempts(),
        watch_events: 0,
    };
    report.steady(&before, &after, own);

    // Shard disable and enable, while the load goes on.
    report.toggles = world.toggle_latencies(3)?;

    // The final flush: every placed byte must be in the size nodes.
    let (mut sims, rewritten) = generator.stop();
    for sim in sims.iter_mut() {
        sim.flush_all()?;
    }
    report.placed = sims.iter().map(|s| s.placed).sum::<u64>() + rewritten;
    report.grown = world.total_current()?.saturating_sub(world.initial_total);

    if spec.fill {
        let (fill, after) = fill::fill(&world, spec, sims)?;
        report.fill = Some(fill);
        sims = after;
    }
    for sim in &sims {
        sim.stop();
    }
    report.print();
    Ok(report)
}

/// Counters at one moment: this process's (the simulated coordinators) and the real
/// coordinators' own.
struct Readings {
    at: Instant,
    simulated: ZkCounts,
    real: Vec<RealReading>,
    /// CPU seconds of ZooKeeper and of this process (the simulated coordinators).
    zookeeper_cpu: f64,
    own_cpu: f64,
}

struct RealReading {
    counts: ZkCounts,
    snapshots: f64,
    cpu: f64,
}

impl Readings {
    fn take(world: &World) -> Result<Readings, String> {
        let real = world
            .real
            .iter()
            .map(|coordinator| {
                let text = get_text(&coordinator.url("/metrics"))?;
                let metric = |name: &str| {
                    sample(&text, &format!("backpack_coordinator_{name}")).unwrap_or(0.0)
                };
                let pid = coordinator
                    .process
                    .pid()
                    .ok_or("a coordinator is not running")?;
                Ok(RealReading {
                    counts: ZkCounts {
                        reads: metric(r#"zookeeper_node_requests_total{kind="read"}"#) as u64,
                        writes: metric(r#"zookeeper_node_requests_total{kind="write"}"#) as u64,
                        watch_events: metric("zookeeper_watch_events_total") as u64,
                    },
                    snapshots: metric("configuration_snapshots_total"),
                    cpu: crate::measure::cpu_seconds(pid).unwrap_or(0.0),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let cpu = |pid: Option<u32>| pid.and_then(crate::measure::cpu_seconds).unwrap_or(0.0);
        Ok(Readings {
            at: Instant::now(),
            simulated: counts(),
            real,
            zookeeper_cpu: cpu(world.zookeeper_pid()),
            own_cpu: cpu(Some(std::process::id())),
        })
    }
}
