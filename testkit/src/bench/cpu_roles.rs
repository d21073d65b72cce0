//! Where the machine's CPU goes, by role: every process's CPU time read from `/proc`,
//! summed by what the process is (the coordinator, the replicators, the nodes, Redis,
//! ZooKeeper, this load generator, the rest). The replication benchmarks print it per
//! upload and per copy.

use crate::measure::cpu_seconds;
use std::collections::BTreeMap;

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
