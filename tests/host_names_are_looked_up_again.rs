//! Host names follow changes: a node configured by name is looked up again in the
//! background (`--resolve-every`), a name that did not resolve is retried, and an address
//! that changes is followed, all without a restart and never on the upload path.
//!
//! The test changes a line of its own in /etc/hosts and restores the file afterwards
//! (also when it fails). It needs root, as CI has.

mod common;

use backpack_testkit::LocalCluster;
use common::cluster::*;
use std::time::{Duration, Instant};

const HOSTS: &str = "/etc/hosts";

/// Puts /etc/hosts back as it was when dropped.
struct HostsGuard {
    original: String,
}

impl HostsGuard {
    fn new() -> HostsGuard {
        let original = std::fs::read_to_string(HOSTS).expect("read /etc/hosts");
        HostsGuard { original }
    }

    /// /etc/hosts as it was, plus `line` (None: as it was).
    fn set(&self, line: Option<&str>) {
        let mut text = self.original.clone();
        if let Some(line) = line {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(line);
            text.push('\n');
        }
        // Written in place: /etc/hosts may be a mount point that cannot be replaced.
        std::fs::write(HOSTS, text).expect("this test needs to write /etc/hosts (root)");
    }
}

impl Drop for HostsGuard {
    fn drop(&mut self) {
        let _ = std::fs::write(HOSTS, &self.original);
    }
}

/// Uploads until one answers `status`, for at most `within`; how long it took.
fn until_status(url: &str, status: u16, within: Duration) -> Duration {
    let started = Instant::now();
    let agent = client();
    let mut n = 0;
    loop {
        n += 1;
        let (got, answer) = put(&agent, &format!("{url}/resolve/{n}.txt"), b"resolved");
        if got == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "no {status} within {within:?}; last answer {got}: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_named_by_host_follows_its_address() {
    let cluster = LocalCluster::start(bin(), "resolution", 1, 1).unwrap();
    let name = format!("bp-resolve-{}.test", std::process::id());
    let hosts = HostsGuard::new();
    hosts.set(None);
    // Node 1 by a name that does not resolve yet.
    let port = cluster.node(1).port;
    cluster
        .admin(
            "backpack-coordinator-add-server",
            &["1", &format!("http://{name}:{port}")],
        )
        .unwrap();
    cluster.add_enabled_shard("1", &[1], "1gb").unwrap();
    let coordinator = coordinator(&cluster, &["--resolve-every", "500ms"]);
    let url = coordinator.url("");
    let (status, answer) = put(&client(), &format!("{url}/resolve/first.txt"), b"x");
    assert_eq!(status, 503, "{answer}");

    // The name appears: it is retried and the node takes uploads.
    hosts.set(Some(&format!("127.0.0.1 {name}")));
    let took = until_status(&url, 200, Duration::from_secs(10));
    eprintln!("a name that appeared was followed in {took:?}");

    // It moves to an address where nothing listens: uploads stop reaching the old one.
    hosts.set(Some(&format!("127.0.0.2 {name}")));
    let took = until_status(&url, 503, Duration::from_secs(10));
    eprintln!("a changed address was followed in {took:?}");

    // And back.
    hosts.set(Some(&format!("127.0.0.1 {name}")));
    until_status(&url, 200, Duration::from_secs(10));
    let log = coordinator.log();
    assert!(
        log.contains(&format!("{name}:{port} now resolves to 127.0.0.1:{port}")),
        "{log}"
    );
    drop(hosts);
    assert!(!std::fs::read_to_string(HOSTS).unwrap().contains(&name));
}
