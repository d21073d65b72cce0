//! The cluster `bp-bench scale` runs against: a real ZooKeeper holding thousands of shards
//! and nodes, two real coordinators, and the simulated ones; reading its sizes and timing
//! a shard toggle.

use super::sim::SimCoordinator;
use super::ScaleSpec;
use crate::bench::synthetic_cluster::{create_size_nodes, servers_map, shards_map};
use crate::cluster::{CoordinatorProcess, LocalCluster};
use crate::free_port;
use crate::measure::rss_kib;
use crate::metrics::get_text;
use backpack::zk_state::ZkState;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct World {
    pub zk: String,
    pub root: String,
    pub shards: usize,
    pub capacity: u64,
    /// The benchmark's own session, for admin edits and reading sizes.
    store: ZkState,
    pub real: Vec<CoordinatorProcess>,
    sims: Mutex<Vec<SimCoordinator>>,
    /// Sum of `current` over the shards when the run began.
    pub initial_total: u64,
    /// Time for the slower real coordinator to start and serve, and its RSS then.
    pub start_seconds: f64,
    pub start_rss_kib: u64,
    // Dropped last: its servers stop after the coordinators.
    cluster: LocalCluster,
}

impl World {
    pub fn start(bin: &Path, spec: &ScaleSpec) -> Result<World, String> {
        let text = |err: std::io::Error| err.to_string();
        eprintln!(
            "setting up {} shards and {} nodes on a real ZooKeeper...",
            spec.shards,
            2 * spec.shards
        );
        let cluster = LocalCluster::start(bin, "bench-scale", 1, 0).map_err(text)?;
        let (zk, root) = (cluster.zk(), cluster.root.clone());
        let store =
            ZkState::open(&zk, &root, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        // No node listens there: the real coordinators take no uploads.
        let port = free_port().map_err(text)?;
        let set = |path: String, value: Value| {
            store
                .update(&path, |doc| {
                    *doc = value.clone();
                    Ok(())
                })
                .map_err(|e| e.to_string())
        };
        set(
            store.paths().servers_map(),
            servers_map(2 * spec.shards, port),
        )?;
        create_size_nodes(&store, spec.shards, spec.capacity, spec.capacity / 2)?;
        set(store.paths().shards_map(), shards_map(spec.shards))?;

        let s = &spec.sizes;
        let flags = [
            "--quiet".to_string(),
            "--size-flush".to_string(),
            format!("{}ms", s.flush_every.as_millis()),
            "--size-flush-limit".to_string(),
            s.flush_most.to_string(),
            "--size-refresh".to_string(),
            format!("{}ms", s.refresh_every.as_millis()),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut real = Vec::new();
        let mut start_seconds: f64 = 0.0;
        for i in 1..=spec.coordinators.min(2) {
            let started = Instant::now();
            let coordinator = cluster
                .start_coordinator(&format!("coordinator-{i}"), &flags)
                .map_err(text)?;
            start_seconds = start_seconds.max(started.elapsed().as_secs_f64());
            real.push(coordinator);
        }
        let start_rss_kib = real
            .iter()
            .filter_map(|c| c.process.pid())
            .map(rss_kib)
            .max()
            .unwrap_or(0);

        let simulated = spec.coordinators.saturating_sub(2);
        eprintln!("starting {simulated} simulated coordinators...");
        let mut sims = Vec::new();
        for i in 0..simulated {
            sims.push(match i < spec.old_style {
                true => SimCoordinator::old(&zk, &root)?,
                false => SimCoordinator::current(&zk, &root, spec.sizes.clone())?,
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while sims
            .iter()
            .any(|sim| sim.is_current() && sim.snapshot().is_none())
        {
            if Instant::now() > deadline {
                return Err("simulated coordinators got no configuration in 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(World {
            zk,
            root,
            shards: spec.shards,
            capacity: spec.capacity,
            store,
            real,
            sims: Mutex::new(sims),
            initial_total: spec.shards as u64 * (spec.capacity / 2),
            start_seconds,
            start_rss_kib,
            cluster,
        })
    }

    /// The simulated coordinators, for a generator (once per phase).
    pub fn take_sims(&self) -> Vec<SimCoordinator> {
        std::mem::take(&mut *self.sims.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn put_sims(&self, sims: Vec<SimCoordinator>) {
        *self.sims.lock().unwrap_or_else(|p| p.into_inner()) = sims;
    }

    /// ZooKeeper's process id, for its CPU.
    pub fn zookeeper_pid(&self) -> Option<u32> {
        self.cluster.zookeeper.pid()
    }

    /// Every shard's `current`, in one pipelined batch (no watches), so the total is
    /// close to one moment's.
    pub fn currents(&self) -> Result<Vec<u64>, String> {
        let paths: Vec<String> = (1..=self.shards)
            .map(|id| self.store.paths().shard_size(&id.to_string()))
            .collect();
        let nodes = self
            .store
            .session()
            .get_many(&paths)
            .map_err(|e| e.to_string())?;
        paths
            .iter()
            .zip(nodes)
            .map(|(path, node)| {
                let (bytes, _) = node.ok_or(format!("{path} is missing"))?;
                let doc = serde_json::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))?;
                backpack::state::shard_size::parse(path, &doc)
                    .map(|size| size.current)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Sets every shard's size node to `current` of the world's capacity.
    pub fn set_every_current(&self, current: u64) -> Result<(), String> {
        for id in 1..=self.shards {
            let path = self.store.paths().shard_size(&id.to_string());
            self.store
                .update(&path, |doc| {
                    *doc = json!({"capacity": self.capacity, "current": current});
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub fn total_current(&self) -> Result<u64, String> {
        Ok(self.currents()?.iter().sum())
    }

    /// Disables shard 1 and enables it again, `times` times: how long until both real
    /// coordinators' `/stats` show the change (uploads use the same snapshot), seconds.
    pub fn toggle_latencies(&self, times: usize) -> Result<Vec<f64>, String> {
        let path = self.store.paths().shards_map();
        let mut latencies = Vec::new();
        for _ in 0..times {
            for disable in [true, false] {
                let started = Instant::now();
                self.store
                    .update(&path, |doc| {
                        if let Some(Value::Object(shard)) = doc.get_mut("1") {
                            match disable {
                                true => shard.insert("read_only".into(), Value::Bool(true)),
                                false => shard.remove("read_only"),
                            };
                        }
                        Ok(())
                    })
                    .map_err(|e| e.to_string())?;
                let want = self.shards - usize::from(disable);
                for coordinator in &self.real {
                    wait_for_writable(coordinator, want)?;
                }
                latencies.push(started.elapsed().as_secs_f64());
            }
        }
        Ok(latencies)
    }
}

fn wait_for_writable(coordinator: &CoordinatorProcess, want: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = get_text(&coordinator.url("/stats"))?;
        let doc: Value = serde_json::from_str(&stats).map_err(|e| e.to_string())?;
        if doc["writable_shards"].as_u64() == Some(want as u64) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("a coordinator never showed {want} writable shards"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
