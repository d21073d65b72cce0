//! Probes of a coordinator under hostile and slow clients.

use super::cluster::*;
use backpack_testkit::{CoordinatorProcess, LocalCluster};
use std::time::Duration;

pub const QUIET: Duration = Duration::from_millis(400);

pub fn ask(coordinator: &CoordinatorProcess, request: &[u8]) -> String {
    raw_exchange(coordinator.port, request, QUIET)
}

/// The server still serves a normal client.
pub fn still_serves(coordinator: &CoordinatorProcess) {
    let stats = get_json(&client(), &coordinator.url("/stats"));
    assert!(stats["uptime"].is_number(), "{stats}");
}

/// A cluster of one node in one enabled 1gb shard, and a coordinator run with `flags`.
pub fn one_node_coordinator(label: &str, flags: &[&str]) -> (LocalCluster, CoordinatorProcess) {
    let cluster = LocalCluster::start(bin(), label, 1, 1).unwrap();
    cluster.add_enabled_shard("1", &[1], "1gb").unwrap();
    let coordinator = coordinator(&cluster, flags);
    (cluster, coordinator)
}

pub fn vm_rss_kib(pid: u32) -> u64 {
    backpack_testkit::measure::memory_kib(pid, "VmRSS").expect("VmRSS")
}

/// Files in the coordinator's directory other than its log (spool files would show here
/// if they were named).
pub fn stray_files(coordinator: &CoordinatorProcess) -> Vec<String> {
    std::fs::read_dir(&coordinator.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".log"))
        .collect()
}
