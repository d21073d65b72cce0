//! What `bp-bench scale` measured, and how it prints.

use super::fill::Fill;
use super::world::World;
use super::{Readings, ScaleSpec};
use backpack::zk::ZkCounts;

/// One real coordinator over the steady window.
#[derive(Debug, Clone, Default)]
pub struct RealCost {
    /// Share of one core.
    pub cpu: f64,
    pub reads_per_second: f64,
    pub writes_per_second: f64,
    pub watch_events_per_second: f64,
    pub snapshots_per_second: f64,
}

#[derive(Debug, Clone)]
pub struct ScaleReport {
    pub spec: ScaleSpec,
    pub start_seconds: f64,
    pub start_rss_kib: u64,
    /// ZooKeeper node writes and reads a second by all coordinators (the benchmark's own
    /// rewrites left out).
    pub zk_writes_per_second: f64,
    pub zk_reads_per_second: f64,
    /// Watch events a second per simulated coordinator that follows sizes.
    pub sim_watch_events_per_second: f64,
    pub real: Vec<RealCost>,
    /// Share of a core ZooKeeper used, and this process (the simulated coordinators).
    pub zookeeper_cpu: f64,
    pub simulation_cpu: f64,
    /// Bytes placed but not yet in the size nodes, sampled during the window.
    pub lags: Vec<u64>,
    /// Seconds for a shard disable (then enable, and so on) to reach the real coordinators.
    pub toggles: Vec<f64>,
    /// Bytes placed (and rewritten) in all, and how much the size nodes grew.
    pub placed: u64,
    pub grown: u64,
    pub fill: Option<Fill>,
}

impl ScaleReport {
    pub fn new(spec: &ScaleSpec, world: &World) -> ScaleReport {
        ScaleReport {
            spec: spec.clone(),
            start_seconds: world.start_seconds,
            start_rss_kib: world.start_rss_kib,
            zk_writes_per_second: 0.0,
            zk_reads_per_second: 0.0,
            sim_watch_events_per_second: 0.0,
            real: Vec::new(),
            zookeeper_cpu: 0.0,
            simulation_cpu: 0.0,
            lags: Vec::new(),
            toggles: Vec::new(),
            placed: 0,
            grown: 0,
            fill: None,
        }
    }

    /// Fills in the steady window's costs; `own`: the benchmark's own requests meanwhile,
    /// which are no coordinator's.
    pub(super) fn steady(&mut self, before: &Readings, after: &Readings, own: ZkCounts) {
        let seconds = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
        let sim = after.simulated.since(&before.simulated);
        let mut writes = sim.writes.saturating_sub(own.writes) as f64;
        let mut reads = sim.reads.saturating_sub(own.reads) as f64;
        let following = self
            .spec
            .coordinators
            .saturating_sub(2 + self.spec.old_style)
            .max(1);
        self.sim_watch_events_per_second = sim.watch_events as f64 / seconds / following as f64;
        self.real = before
            .real
            .iter()
            .zip(&after.real)
            .map(|(b, a)| {
                let counts = a.counts.since(&b.counts);
                writes += counts.writes as f64;
                reads += counts.reads as f64;
                RealCost {
                    cpu: (a.cpu - b.cpu) / seconds,
                    reads_per_second: counts.reads as f64 / seconds,
                    writes_per_second: counts.writes as f64 / seconds,
                    watch_events_per_second: counts.watch_events as f64 / seconds,
                    snapshots_per_second: (a.snapshots - b.snapshots) / seconds,
                }
            })
            .collect();
        self.zookeeper_cpu = (after.zookeeper_cpu - before.zookeeper_cpu) / seconds;
        self.simulation_cpu = (after.own_cpu - before.own_cpu) / seconds;
        self.zk_writes_per_second = writes / seconds;
        self.zk_reads_per_second = reads / seconds;
    }

    pub fn sizes_add_up(&self) -> bool {
        self.placed == self.grown
    }

    /// The most a shard can overflow, by the capacity model's formula (docs/scale.md): everything the cluster
    /// places during one flush interval and one size refresh, all on that shard (the
    /// worst case: it is the last shard with room, and every coordinator still sees room).
    pub fn overflow_bound_bytes(&self) -> u64 {
        let s = &self.spec;
        let lag = (s.sizes.flush_every + s.sizes.refresh_every).as_secs_f64();
        (s.rate * s.size as f64 * lag) as u64
    }

    pub fn print(&self) {
        let s = &self.spec;
        let mib = |bytes: f64| bytes / (1 << 20) as f64;
        println!(
            "\n{} shards, {} nodes; {} coordinators: 2 real (no uploads), {} simulated ({} flushing the old way); {:.0} uploads/s of {:.2} MiB; {:.0} extra size rewrites/s; {:.0} s window",
            s.shards,
            2 * s.shards,
            s.coordinators.max(2),
            s.coordinators.saturating_sub(2),
            s.old_style,
            s.rate,
            mib(s.size as f64),
            s.rewrites,
            s.duration.as_secs_f64()
        );
        println!(
            "size settings: --size-flush {:?} --size-flush-limit {} --size-refresh {:?}\n",
            s.sizes.flush_every, s.sizes.flush_most, s.sizes.refresh_every
        );
        println!("| measure | value |\n| --- | ---: |");
        let row = |name: &str, value: String| println!("| {name} | {value} |");
        row(
            "coordinator start with this configuration",
            format!(
                "{:.2} s, RSS {:.1} MiB",
                self.start_seconds,
                self.start_rss_kib as f64 / 1024.0
            ),
        );
        row(
            "ZooKeeper node writes/s, all coordinators",
            format!("{:.0}", self.zk_writes_per_second),
        );
        row(
            "ZooKeeper node reads/s, all coordinators",
            format!("{:.0}", self.zk_reads_per_second),
        );
        row(
            "watch events/s per simulated coordinator",
            format!("{:.1}", self.sim_watch_events_per_second),
        );
        for (i, real) in self.real.iter().enumerate() {
            row(
                &format!("real coordinator {}: CPU, share of a core", i + 1),
                format!("{:.2} %", real.cpu * 100.0),
            );
            row(
                &format!(
                    "real coordinator {}: reads/s, writes/s, watch events/s, snapshots/s",
                    i + 1
                ),
                format!(
                    "{:.1}, {:.1}, {:.1}, {:.2}",
                    real.reads_per_second,
                    real.writes_per_second,
                    real.watch_events_per_second,
                    real.snapshots_per_second
                ),
            );
        }
        row(
            "CPU of ZooKeeper; of the simulated coordinators (one process)",
            format!(
                "{:.0} %; {:.0} %",
                self.zookeeper_cpu * 100.0,
                self.simulation_cpu * 100.0
            ),
        );
        let byte_rate = (s.rate * s.size as f64).max(1.0);
        let lag_max = self.lags.iter().copied().max().unwrap_or(0) as f64;
        let lag_mean = self.lags.iter().sum::<u64>() as f64 / self.lags.len().max(1) as f64;
        row(
            "sizes lag (placed, not yet in ZooKeeper), mean and worst of samples",
            format!(
                "{:.1} MiB ({:.1} s of uploads), {:.1} MiB ({:.1} s)",
                mib(lag_mean),
                lag_mean / byte_rate,
                mib(lag_max),
                lag_max / byte_rate
            ),
        );
        let worst = self.toggles.iter().copied().fold(0.0, f64::max);
        row(
            "shard disable/enable reaches both real coordinators",
            format!("worst {:.3} s of {}", worst, self.toggles.len()),
        );
        row(
            "after the final flush, size nodes grew by the bytes placed",
            match self.sizes_add_up() {
                true => format!("yes ({} bytes)", self.placed),
                false => format!("NO: placed {}, grew {}", self.placed, self.grown),
            },
        );
        if let Some(fill) = &self.fill {
            row(
                "fill: room per shard at the start",
                format!("{:.1} MiB", mib(fill.room_per_shard as f64)),
            );
            row(
                "fill: overflow past capacity, worst and mean",
                format!(
                    "{:.2} MiB ({:.3} %), {:.4} %; bound {:.1} MiB",
                    mib(fill.max_overflow_bytes as f64),
                    fill.max_overflow * 100.0,
                    fill.mean_overflow * 100.0,
                    mib(self.overflow_bound_bytes() as f64)
                ),
            );
            row(
                "fill: shards past capacity; uploads refused (no writable shard)",
                format!("{}; {}", fill.full_shards, fill.refused),
            );
        }
    }
}
