//! What a scenario measures beyond its checks: upload latency in a window, split by the
//! shards a fault touches, and the resources a coordinator holds (bodies in memory, open
//! node connections, spool files), which must come back to their level after a heal.

use super::load::Ack;
use crate::cluster::CoordinatorProcess;
use crate::metrics;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Upload latency of some acknowledged uploads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: usize,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    /// `p99 / max (count)` in milliseconds, or `-` when there were none.
    pub fn text(&self) -> String {
        match self.count {
            0 => "-".to_string(),
            n => format!(
                "{} / {} ms ({n})",
                self.p99.as_millis(),
                self.max.as_millis()
            ),
        }
    }
}

/// The latency of the acknowledged uploads started in `[from, to)` that `keep` keeps.
pub fn latency(acks: &[Ack], from: Instant, to: Instant, keep: impl Fn(&Ack) -> bool) -> Latency {
    let mut times: Vec<Duration> = acks
        .iter()
        .filter(|ack| ack.started >= from && ack.started < to && keep(ack))
        .map(|ack| ack.latency)
        .collect();
    times.sort();
    let Some(max) = times.last().copied() else {
        return Latency::default();
    };
    let p99 = times[(times.len() * 99).div_ceil(100).saturating_sub(1)];
    Latency {
        count: times.len(),
        p99,
        max,
    }
}

/// What a coordinator holds now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Holdings {
    /// Its memory-budget gauge: bytes of bodies held in memory.
    pub memory_body_bytes: u64,
    /// Its established TCP connections to the given node addresses.
    pub node_connections: usize,
    /// Spool files it has open.
    pub spool_files: usize,
}

/// The established connections to `nodes` of the network namespace process `pid` is in
/// (on hosts, the coordinator's own host), from `/proc/<pid>/net/tcp`.
fn connections_to(pid: u32, nodes: &[Ipv4Addr]) -> usize {
    let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return 0;
    };
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // remote address "0100007F:1F90" (little-endian IPv4), state 01 = established.
            let (Some(remote), Some(state)) = (fields.get(2), fields.get(3)) else {
                return false;
            };
            let ip = remote
                .split(':')
                .next()
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .map(|raw| Ipv4Addr::from(raw.swap_bytes()));
            *state == "01" && ip.is_some_and(|ip| nodes.contains(&ip))
        })
        .count()
}

/// What `coordinator` holds now; its node connections counted to `nodes`.
pub fn holdings(coordinator: &CoordinatorProcess, nodes: &[Ipv4Addr]) -> Holdings {
    let text = metrics::get_text(&coordinator.url("/metrics")).unwrap_or_default();
    let memory = metrics::sample(&text, "backpack_coordinator_memory_body_bytes").unwrap_or(-1.0);
    // Spool files have no name (O_TMPFILE): count the process's open files in its spool
    // directory that are not its log.
    let dir = coordinator.dir.display().to_string();
    let spool_files = coordinator.process.pid().map_or(0, |pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten()
                    .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                    .map(|target| target.display().to_string())
                    .filter(|target| target.starts_with(&dir) && !target.ends_with(".log"))
                    .count()
            })
            .unwrap_or(0)
    });
    Holdings {
        memory_body_bytes: memory.max(0.0) as u64,
        node_connections: coordinator
            .process
            .pid()
            .map_or(0, |pid| connections_to(pid, nodes)),
        spool_files,
    }
}

/// Waits up to `limit` until `now()` is at most `level` in every field; the last reading.
pub fn back_to(
    level: Holdings,
    limit: Duration,
    now: impl Fn() -> Holdings,
) -> Result<Holdings, Holdings> {
    let deadline = Instant::now() + limit;
    loop {
        let reading = now();
        let back = reading.memory_body_bytes <= level.memory_body_bytes
            && reading.node_connections <= level.node_connections
            && reading.spool_files <= level.spool_files;
        if back {
            return Ok(reading);
        }
        if Instant::now() > deadline {
            return Err(reading);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
