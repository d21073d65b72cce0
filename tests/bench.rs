//! bp-bench runs and reports numbers (the numbers themselves are for benchmarks, not
//! tests: machines here are noisy).

#[path = "common/cluster.rs"]
mod cluster;

use backpack::testkit::{LocalCluster, Sandbox, WebDavNode};
use cluster::bin;
use std::process::Command;

fn bp_bench(args: &[&str]) -> String {
    let output = Command::new(bin())
        .arg("bp-bench")
        .args(args)
        .output()
        .expect("run bp-bench");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

#[test]
fn load_reports_rate_latency_and_process_cost() {
    let cluster = LocalCluster::start(bin(), "bench-load", 1, 1).unwrap();
    cluster.add_enabled_shard("1", &[1], "1gb").unwrap();
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .unwrap();
    let pid = coordinator.process.pid().unwrap().to_string();
    let said = bp_bench(&[
        "load",
        &coordinator.url(""),
        "--count",
        "300",
        "--concurrency",
        "4",
        "--size",
        "2kb",
        "--pid",
        &pid,
    ]);
    assert!(said.starts_with("300 ok of 300 in "), "{said}");
    assert!(
        said.contains("requests/s; latency p50 ") && said.contains("ms CPU per request, peak RSS"),
        "{said}"
    );
    // Every PUT stored a 2 KiB file with a unique path.
    let stored = std::fs::read_dir(cluster.node(1).files.join("bench"))
        .unwrap()
        .count();
    assert_eq!(stored, 300);
    // Open loop: paced at the rate.
    let said = bp_bench(&[
        "load",
        &coordinator.url(""),
        "--rate",
        "200",
        "--duration",
        "1s",
        "--prefix",
        "open",
    ]);
    let ok: u64 = said.split(' ').next().unwrap().parse().unwrap();
    assert!((150..=200).contains(&ok), "{said}");
    assert!(said.contains("(from when each request was due)"), "{said}");
}

#[test]
fn the_matrix_prints_its_table() {
    let said = bp_bench(&[
        "matrix",
        "--sizes",
        "1kb",
        "--concurrency",
        "2",
        "--duration",
        "300ms",
        "--big-upload",
        "1mb",
    ]);
    assert!(said.contains("| 1kb | 2 |"), "{said}");
    assert!(said.contains("one 1mb upload: direct "), "{said}");
    assert!(said.contains("coordinator RSS: idle "), "{said}");
    // Sink nodes store nothing.
    let sandbox = Sandbox::new("sink").unwrap();
    let sink = WebDavNode::start_sink(&sandbox, "sink").unwrap();
    let status = ureq::put(&format!("{}/x", sink.url()))
        .send(&b"body"[..])
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 201);
    assert!(sink.file("/x").is_none());
}

#[test]
fn slow_node_compares_the_other_shards_latency() {
    let said = bp_bench(&[
        "slow-node",
        "--rate",
        "60",
        "--duration",
        "1s",
        "--delay",
        "200ms",
    ]);
    assert!(said.contains("| 2 | ") && said.contains("| 3 | "), "{said}");
    let shard_1 = said.lines().find(|l| l.starts_with("| 1 | ")).unwrap();
    // Its median with the slow node is the proxy's delay.
    let p50: f64 = shard_1.split('|').nth(6).unwrap().trim().parse().unwrap();
    assert!(p50 >= 200.0, "{shard_1}");
}
