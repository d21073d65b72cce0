//! `bp-bench check`: check-shard over many synthetic index keys in real Redis servers, for
//! its speed (keys judged per second) and its peak memory.

use crate::cluster::LocalCluster;
use crate::RedisServer;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// What a check run measured.
pub struct CheckReport {
    pub keys: u64,
    pub seconds: f64,
    pub peak_rss_kib: u64,
}

/// Fills two node indexes with `keys` file records each (the same keys, the same lengths:
/// a whole shard), then runs `backpack-coordinator-check-shard` on them.
pub fn run_check(bin: &Path, keys: u64) -> Result<CheckReport, String> {
    let text = |e: std::io::Error| e.to_string();
    let cluster = LocalCluster::start(bin, "bench-check", 1, 0).map_err(text)?;
    let indexes = [
        RedisServer::start(&cluster.sandbox, "index-1").map_err(text)?,
        RedisServer::start(&cluster.sandbox, "index-2").map_err(text)?,
    ];
    eprintln!("writing {keys} index records on each of two Redis servers...");
    for (i, index) in indexes.iter().enumerate() {
        fill(&index.address(), keys)?;
        let id = (i + 1).to_string();
        cluster
            .admin(
                "backpack-coordinator-add-server",
                &[&id, "http://127.0.0.1:9"],
            )
            .map_err(text)?;
        cluster
            .admin(
                "backpack-coordinator-set-node-index",
                &[&id, &index.address()],
            )
            .map_err(text)?;
    }
    cluster
        .admin("backpack-coordinator-add-shard", &["1", "1,2", "100gb"])
        .map_err(text)?;
    eprintln!("checking...");
    let started = Instant::now();
    let output = Command::new(bin)
        .arg0("backpack-coordinator-check-shard")
        .args([&cluster.zk(), &cluster.root, "1", "--grace", "0s"])
        .output()
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !said.contains(&format!("shard 1: {keys} files")) {
        return Err(format!(
            "check-shard did not find the shard whole: {said}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(CheckReport {
        keys,
        seconds,
        peak_rss_kib: children_peak_rss_kib(),
    })
}

/// `keys` records `k<i>` -> `1:<offset>:<length>`, in `MSET`s of a thousand.
fn fill(address: &str, keys: u64) -> Result<(), String> {
    let mut conn = redis::Client::open(format!("redis://{address}/"))
        .and_then(|c| c.get_connection())
        .map_err(|e| e.to_string())?;
    let mut i = 0;
    while i < keys {
        let mut mset = redis::cmd("MSET");
        for k in i..(i + 1000).min(keys) {
            mset.arg(format!("k{k}"))
                .arg(format!("1:{}:{}", k * 4096, 1000 + k % 5000));
        }
        mset.query::<()>(&mut conn).map_err(|e| e.to_string())?;
        i += 1000;
    }
    Ok(())
}

/// The largest RSS of any child this process has waited for, KiB (check-shard is the big
/// one: the admin commands before it are small).
fn children_peak_rss_kib() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss.max(0) as u64
}

pub fn print(report: &CheckReport) {
    println!(
        "check-shard over {} keys on each of two nodes: {:.1} s, {:.0} keys/s, peak RSS {:.1} MiB",
        report.keys,
        report.seconds,
        report.keys as f64 / report.seconds.max(1e-9),
        report.peak_rss_kib as f64 / 1024.0
    );
}
