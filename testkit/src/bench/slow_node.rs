//! One slow node must not slow the others: open-loop uploads at a fixed rate over three
//! single-node shards, first healthy, then with node 1 answering `delay` late (behind a
//! delaying proxy). Uploads that land on shards 2 and 3 should keep their latency.

use super::load::{percentile_ms, run, LoadReport, LoadSpec};
use crate::{DelayProxy, LocalCluster, NodeKind};
use std::path::Path;
use std::time::Duration;

fn row(shard: &str, healthy: &LoadReport, slow: &LoadReport) -> String {
    let empty = Vec::new();
    let h = healthy.by_shard.get(shard).unwrap_or(&empty);
    let s = slow.by_shard.get(shard).unwrap_or(&empty);
    let (h50, h99, s50, s99) = (
        percentile_ms(h, 0.5),
        percentile_ms(h, 0.99),
        percentile_ms(s, 0.5),
        percentile_ms(s, 0.99),
    );
    format!(
        "| {shard} | {} | {h50:.2} | {h99:.2} | {} | {s50:.2} | {s99:.2} | {:.2}x | {:.2}x |",
        h.len(),
        s.len(),
        s50 / h50,
        s99 / h99
    )
}

pub fn run_slow_node(
    bin: &Path,
    rate: f64,
    duration: Duration,
    delay: Duration,
) -> Result<(), String> {
    eprintln!("starting a local cluster: three sink nodes, a shard on each, two Redis, one coordinator...");
    let cluster = LocalCluster::start_with(bin, "bench-slow-node", 2, 3, NodeKind::Sink)
        .map_err(|e| e.to_string())?;
    for id in 1..=3usize {
        cluster
            .add_enabled_shard(&id.to_string(), &[id], "100tb")
            .map_err(|e| e.to_string())?;
    }
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .map_err(|e| e.to_string())?;
    let spec = |prefix: &str| LoadSpec {
        targets: vec![coordinator.url("")],
        body_size: 1024,
        // Enough connections to keep the rate while a third of the uploads wait `delay`.
        concurrency: ((rate * delay.as_secs_f64()) as usize * 2).max(64),
        rate: Some(rate),
        duration,
        max_requests: u64::MAX,
        prefix: prefix.to_string(),
        acked: None,
        headers: String::new(),
    };
    let healthy = run(&spec("healthy"))?;
    let proxy = DelayProxy::start(cluster.node(1).port, delay).map_err(|e| e.to_string())?;
    cluster
        .admin("backpack-coordinator-add-server", &["1", &proxy.url()])
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(1));
    let slow = run(&spec("slow"))?;
    println!(
        "\nopen loop at {rate} uploads/s of 1 KiB for {}s each; node 1 then answers {} ms late; latency from when each upload was due\n",
        duration.as_secs_f64(),
        delay.as_millis()
    );
    println!("| shard | healthy uploads | p50 ms | p99 ms | with a slow node 1 | p50 ms | p99 ms | p50 ratio | p99 ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for shard in ["1", "2", "3"] {
        println!("{}", row(shard, &healthy, &slow));
    }
    let errors: u64 = healthy.errors.values().sum::<u64>() + slow.errors.values().sum::<u64>();
    if errors > 0 {
        println!(
            "errors: healthy {:?}, slow {:?}",
            healthy.errors, slow.errors
        );
    }
    Ok(())
}
