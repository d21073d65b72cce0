//! bp-bench runs and reports numbers (the numbers themselves are for benchmarks, not
//! tests: machines here are noisy).

mod common;

use backpack_testkit::{LocalCluster, Sandbox, WebDavNode};
use common::cluster::{bin, coordinator};
use std::path::Path;
use std::process::Command;

/// bin/bp-bench, run as users run it. The binary is built beside the backpack binary,
/// from the workspace crate backpack-testkit.
fn bp_bench_command() -> Command {
    let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("bin/bp-bench"));
    command
        .env("BP_BENCH_BIN", bin().with_file_name("bp-bench"))
        .env("BACKPACK_BIN", bin());
    command
}

fn bp_bench(args: &[&str]) -> String {
    let output = bp_bench_command()
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
    let coordinator = coordinator(&cluster, &["--quiet"]);
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
    let stored = std::fs::read_dir(cluster.node(1).files_dir().unwrap().join("bench"))
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

/// With sink nodes, wrk drives the proxy and the coordinator too: its table has the
/// cell, with uploads counted on both sides and none failed.
#[test]
fn the_sink_matrix_drives_both_clients() {
    let said = bp_bench(&[
        "matrix",
        "--sink",
        "--sizes",
        "1kb",
        "--concurrency",
        "2",
        "--duration",
        "2s",
        "--big-upload",
        "0",
    ]);
    let (ours, wrk) = said
        .split_once("with wrk as the client")
        .unwrap_or_else(|| panic!("no wrk table: {said}"));
    assert!(ours.contains("| 1kb | 2 |"), "{said}");
    let row = wrk
        .lines()
        .find(|line| line.starts_with("| 1kb | 2 |"))
        .unwrap_or_else(|| panic!("{said}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let (proxy, coordinator): (f64, f64) = (cells[4].parse().unwrap(), cells[8].parse().unwrap());
    assert!(proxy > 100.0 && coordinator > 100.0, "{row}");
    assert!(!row.contains("errors"), "{row}");
}

/// `--tokens first`: the first coordinator requires upload tokens, the client signs one
/// per turn, and every upload is taken (a missing or refused token would show as errors).
#[test]
fn the_matrix_sends_upload_tokens_to_the_coordinator_that_requires_them() {
    let said = bp_bench(&[
        "matrix",
        "--sink",
        "--no-wrk",
        "--tokens",
        "first",
        "--sizes",
        "1kb",
        "--concurrency",
        "2",
        "--duration",
        "1s",
        "--big-upload",
        "0",
    ]);
    assert!(
        said.contains(
            "coordinator A (upload tokens required and sent) against coordinator B (default flags)"
        ),
        "{said}"
    );
    let rows: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("| 1kb | 2 |"))
        .collect();
    assert_eq!(rows.len(), 2, "{said}");
    for row in rows {
        assert!(!row.contains("errors"), "{row}");
    }
}

#[test]
fn replication_reports_backlog_drain_and_cpu_by_role() {
    let said = bp_bench(&[
        "replication",
        "--size",
        "4kb",
        "--concurrency",
        "4",
        "--duration",
        "1s",
    ]);
    let row = said
        .lines()
        .find(|l| l.starts_with("| 1 | ") && l.contains(" of "))
        .unwrap_or_else(|| panic!("{said}"));
    // Every upload's item was copied: the run drained.
    assert!(row.contains('s') && !row.contains("not drained"), "{row}");
    assert!(said.contains("| 1 | with | "), "{said}");
    let with = said
        .lines()
        .find(|l| l.starts_with("| 1 | with | "))
        .unwrap();
    let replicators: f64 = with.split('|').nth(4).unwrap().trim().parse().unwrap();
    assert!(replicators > 0.0, "the replicators' CPU is counted: {with}");
    // The run without replicators' items, copied afterwards with nothing else going on:
    // all of them, and what each cost the replicators.
    let alone = said
        .lines()
        .find(|l| l.starts_with("| 1 | ") && l.ends_with("x |"))
        .unwrap_or_else(|| panic!("no row for the copies alone: {said}"));
    let cells: Vec<&str> = alone.split('|').map(str::trim).collect();
    let copies: u64 = cells[2].parse().unwrap_or_else(|_| panic!("{alone}"));
    assert!(copies > 0, "{alone}");
    assert!(
        cells[3].ends_with('s') && cells[3] != "not drained",
        "{alone}"
    );
    let per_copy: f64 = cells[5].parse().unwrap_or_else(|_| panic!("{alone}"));
    assert!(per_copy > 0.0, "{alone}");
    assert!(said.contains("| 1 | copies alone, per copy | "), "{said}");
}

/// Open loop: every rate's row has the lag from the replicators' histogram and from
/// outside, and the queue emptied after the load.
#[test]
fn replication_open_loop_reports_the_lag_both_ways_at_each_rate() {
    let said = bp_bench(&[
        "replication",
        "--open-loop",
        "--size",
        "4kb",
        "--capacity-duration",
        "1s",
        "--duration",
        "2s",
        "--rates",
        "40/s,5%",
    ]);
    for rate in ["| 40/s | ", "| 5% | "] {
        let row = said
            .lines()
            .find(|l| l.starts_with(rate))
            .unwrap_or_else(|| panic!("no row for {rate}: {said}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let acknowledged: u64 = cells[3].parse().unwrap_or_else(|_| panic!("{row}"));
        assert!(acknowledged > 0, "{row}");
        // The histogram's bucket for the median, and the median measured from outside.
        assert!(cells[4].ends_with("] ms"), "{row}");
        assert!(cells[5].ends_with(" ms"), "{row}");
        assert!(
            !row.contains("not emptied") && !row.contains("never seen"),
            "{row}"
        );
    }
    assert!(said.contains("replicators / coordinator without"), "{said}");
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

/// What the load generator counts: a rewrite is a success,
/// a refusal is an error by status, an unreachable target an error by kind.
#[test]
fn load_counts_rewrites_refusals_and_unreachable_targets() {
    let sandbox = Sandbox::new("bench-errors").unwrap();
    let node = WebDavNode::start(&sandbox, "node").unwrap();
    let twice = ["load", &node.url(), "--count", "50", "--concurrency", "3"];
    assert!(bp_bench(&twice).starts_with("50 ok of 50 in "));
    // The same paths again: the stand-in answers 201 again, like a Backpack node.
    assert!(bp_bench(&twice).starts_with("50 ok of 50 in "));
    assert_eq!(
        std::fs::read_dir(node.files.join("bench")).unwrap().count(),
        50
    );
    // A PUT under a path that is a file cannot be stored (nginx answers 500).
    let refused = bp_bench(&[
        "load",
        &node.url(),
        "--count",
        "5",
        "--concurrency",
        "1",
        "--prefix",
        "bench/0",
    ]);
    assert!(refused.starts_with("0 ok of 5 in "), "{refused}");
    assert!(refused.contains("errors: HTTP 500: 5"), "{refused}");
    // Nothing listens there.
    let closed = format!(
        "http://127.0.0.1:{}",
        backpack_testkit::free_port().unwrap()
    );
    let unreachable = bp_bench(&["load", &closed, "--count", "4", "--concurrency", "2"]);
    assert!(unreachable.starts_with("0 ok of 4 in "), "{unreachable}");
    assert!(
        unreachable.contains("errors: io: ConnectionRefused: 4"),
        "{unreachable}"
    );
    // A target that is not an http://host:port URL is a one-line error.
    let output = bp_bench_command()
        .args(["load", "https://127.0.0.1:1", "--count", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("only http:// URLs are supported"),
        "{output:?}"
    );
}
