//! A daemon started on a port that something already listens on refuses to start: one
//! line on stderr, exit 1, before it connects to anything. Otherwise the kernel would
//! split new connections between the two, and clients would get the wrong daemon's
//! answers, silently.

mod common;

use backpack_testkit::LocalCluster;
use common::cluster::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `name args...` (the `backpack` binary under that name), which must exit within
/// 10 s; its output.
fn run_briefly(name: &str, args: &[String]) -> Output {
    let mut child = Command::new(bin())
        .arg0(name)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let output = child.wait_with_output().expect("its output");
            panic!(
                "{name} is still running on a port in use: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("its output")
}

/// Exit 1 and one line that names the port as in use.
fn refused(name: &str, output: &Output, port: u16) {
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{name}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line: {err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("the port is in use"),
        "{name}: {err}"
    );
}

#[test]
fn a_second_coordinator_or_replicator_on_a_used_port_exits_at_once() {
    let cluster = LocalCluster::start(bin(), "port-in-use", 1, 1).unwrap();
    cluster.add_enabled_shard("1", &[1], "1gb").unwrap();
    let first = coordinator(&cluster, &["--quiet"]);
    let port = first.port;
    let (zk, root) = (cluster.zk(), cluster.root.clone());
    let spool = cluster.sandbox.subdir("second").unwrap();

    // A second coordinator on the first one's port.
    let args: Vec<String> = [&zk, &root, "127.0.0.1", &port.to_string(), "--spool-dir"]
        .iter()
        .map(|a| a.to_string())
        .chain([spool.display().to_string()])
        .collect();
    refused(
        "backpack-coordinator",
        &run_briefly("backpack-coordinator", &args),
        port,
    );

    // A replicator whose metrics would listen there.
    let listen = format!("127.0.0.1:{port}");
    let args = vec![zk.clone(), root.clone(), "--listen".into(), listen.clone()];
    let output = run_briefly("backpack-replicator", &args);
    refused("backpack-replicator", &output, port);
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("workers"),
        "refused before it starts workers"
    );

    // The first coordinator still answers every request itself.
    let agent = client();
    for _ in 0..10 {
        let stats = get_json(&agent, &first.url("/stats"));
        assert!(stats["uptime"].is_number(), "{stats}");
    }

    // Two replicators on one metrics port: the second is refused.
    let metrics_port = backpack_testkit::free_port().unwrap();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let _serving = replicator(&cluster, "replicator-a", &["--listen", &metrics]);
    wait_for(
        "the first replicator's metrics",
        Duration::from_secs(10),
        || backpack_testkit::is_listening(metrics_port),
    );
    let args = vec![zk, root, "--listen".into(), metrics];
    refused(
        "backpack-replicator",
        &run_briefly("backpack-replicator", &args),
        metrics_port,
    );
}
