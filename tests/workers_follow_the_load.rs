//! The coordinator's worker threads follow the load: one serves while it keeps up, a
//! second starts taking clients when the first is busy, and no upload is lost while kept-
//! alive clients move from one worker to the other.

mod common;

use backpack_testkit::bench::load::{run, LoadReport, LoadSpec};
use backpack_testkit::{LocalCluster, NodeKind};
use common::cluster::*;
use std::time::{Duration, Instant};

fn load(url: &str, prefix: &str, concurrency: usize, rate: Option<f64>) -> LoadReport {
    let report = run(&LoadSpec {
        targets: vec![url.to_string()],
        body_size: 1024,
        concurrency,
        rate,
        duration: Duration::from_secs(2),
        max_requests: 1_000_000,
        prefix: prefix.to_string(),
        acked: None,
        headers: String::new(),
    })
    .expect("the load generator");
    assert!(report.requests > 0, "{prefix}: no request was made");
    assert_eq!(
        report.ok, report.requests,
        "{prefix}: every upload is answered 200 ({:?})",
        report.errors
    );
    report
}

#[test]
fn a_busy_coordinator_takes_its_second_worker_and_no_upload_is_lost_moving_clients() {
    let cluster = LocalCluster::start_with(bin(), "workers", 2, 2, NodeKind::Sink).unwrap();
    cluster.add_enabled_shard("1", &[1, 2], "100gb").unwrap();
    let coordinator = coordinator(&cluster, &["--quiet", "--workers", "2"]);
    let url = coordinator.url("");
    let active = || {
        scrape_metrics(&url)
            .get("backpack_coordinator_active_workers")
            .copied()
    };
    assert_eq!(
        active(),
        Some(1.0),
        "an idle coordinator serves with one worker"
    );

    // A light load (200 uploads/s) keeps it at one.
    load(&url, "light", 4, Some(200.0));
    assert_eq!(active(), Some(1.0), "200 uploads/s need one worker only");

    // 64 clients as fast as they can go, on sink nodes: the coordinator itself is the
    // limit, and a second core is there. Each round moves clients between workers.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let mut uploads = 0;
    let mut rounds = 0;
    while active() != Some(2.0) && started.elapsed() < Duration::from_secs(30) {
        uploads += load(&url, &format!("busy-{rounds}"), 64, None).ok;
        rounds += 1;
    }
    if cores >= 2 {
        assert_eq!(
            active(),
            Some(2.0),
            "{uploads} uploads in {rounds} rounds of 2 s did not bring in the second worker"
        );
        // With both workers taking clients, uploads still all succeed.
        load(&url, "both", 64, None);
        assert_eq!(active(), Some(2.0));
    }
    let log = std::fs::read_to_string(coordinator.process.log()).unwrap_or_default();
    if cores >= 2 {
        assert!(
            log.contains("2 of 2 workers take clients"),
            "the change is logged:\n{log}"
        );
    }
}
