//! `bp-bench console`: how long the coordinator's console (`GET /` and `/status.json`)
//! takes to answer on a cluster of many shards, each request alone on a keep-alive
//! connection.

use super::synthetic_cluster::{create_size_nodes, servers_map, shards_map};
use crate::cluster::LocalCluster;
use crate::free_port;
use argh::FromArgs;
use backpack::zk_state::ZkState;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(FromArgs)]
#[argh(subcommand, name = "console")]
/// How long the coordinator's console (GET / and /status.json) takes to answer on a
/// cluster of many shards.
pub struct ConsoleArgs {
    /// shards, two nodes each (default 1000)
    #[argh(option, default = "1000")]
    shards: usize,
    /// requests per page (default 200)
    #[argh(option, default = "200")]
    requests: usize,
}

impl ConsoleArgs {
    pub fn run(self, bin: &Path) -> Result<(), String> {
        run_console(bin, self.shards.max(1), self.requests.max(1))
    }
}

/// Sets up `shards` shards of two nodes each (no node listens: the page is what is
/// measured), starts one coordinator and times `requests` GETs of each page.
fn run_console(bin: &Path, shards: usize, requests: usize) -> Result<(), String> {
    let text = |err: std::io::Error| err.to_string();
    let cluster = LocalCluster::start(bin, "bench-console", 1, 0).map_err(text)?;
    let store = ZkState::open(
        &cluster.zk_by_address(),
        &cluster.root,
        Duration::from_secs(10),
    )
    .map_err(|e| e.to_string())?;
    let set = |path: String, value: Value| {
        store
            .update(&path, |doc| {
                *doc = value.clone();
                Ok(())
            })
            .map_err(|e| e.to_string())
    };
    let port = free_port().map_err(text)?;
    set(store.paths().servers_map(), servers_map(2 * shards, port))?;
    create_size_nodes(&store, shards, 100 << 30, 37 << 30)?;
    set(store.paths().shards_map(), shards_map(shards))?;
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .map_err(text)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let get = |path: &str| -> Result<usize, String> {
        let mut answer = agent
            .get(&coordinator.url(path))
            .call()
            .map_err(|e| format!("GET {path}: {e}"))?;
        let body = answer
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| format!("GET {path}: {e}"))?;
        Ok(body.len())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = serde_json::from_str(
            &agent
                .get(&coordinator.url("/status.json"))
                .call()
                .map_err(|e| e.to_string())?
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        if status["totals"]["shards"].as_u64() == Some(shards as u64) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the coordinator did not show {shards} shards in 60 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "\n{shards} shards, {} nodes; {requests} requests each, one at a time\n",
        2 * shards
    );
    println!("| page | bytes | p50 ms | p99 ms | max ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for path in ["/", "/status.json"] {
        let mut times = Vec::with_capacity(requests);
        let mut size = 0;
        for _ in 0..10 {
            get(path)?;
        }
        for _ in 0..requests {
            let started = Instant::now();
            size = get(path)?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "| `GET {path}` | {size} | {:.2} | {:.2} | {:.2} |",
            at(0.5),
            at(0.99),
            times[times.len() - 1]
        );
    }
    Ok(())
}
