//! A private network leaves nothing behind, however its test ends: killed with SIGKILL,
//! its namespaces (the lab, every host, the mount namespace with its `/etc/hosts`), the
//! links and rules in them, and the servers on its hosts are gone within seconds, and the
//! machine's own network is as it was.

use backpack_testkit::{RedisServer, Sandbox, WebDavNode};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "BACKPACK_NETWORK_CHILD";

/// Run by the test below in a process of its own: makes a network with servers on two
/// hosts and a fault in force, says what it made, and waits to be killed.
#[test]
#[ignore = "run by private_networks_are_gone_after_a_sigkill"]
fn holds_a_network_until_killed() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let sandbox = Sandbox::with_network("held").expect("make a network");
    let redis = RedisServer::start(&sandbox, "redis-1").expect("redis on a host");
    let node = WebDavNode::start(&sandbox, "node-1").expect("node on a host");
    let network = sandbox.network().expect("network");
    network.cut(&redis.host, &node.host).expect("cut");
    let inodes = network.namespace_inodes().expect("inodes");
    let pids = [redis.pid(), node.pid()].map(|p| p.unwrap_or(0));
    println!("namespaces {inodes:?}");
    println!("servers {pids:?}");
    println!("ready");
    std::thread::sleep(Duration::from_secs(120));
}

fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Every namespace inode (network and mount) some task on the machine is in.
fn namespaces_in_use() -> Vec<u64> {
    let mut found = Vec::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return found;
    };
    for process in processes.flatten() {
        let Ok(tasks) = std::fs::read_dir(process.path().join("task")) else {
            continue;
        };
        for task in tasks.flatten() {
            for kind in ["net", "mnt"] {
                if let Ok(link) = std::fs::read_link(task.path().join("ns").join(kind)) {
                    found.extend(numbers(&link.to_string_lossy()));
                }
            }
        }
    }
    found
}

fn machine_links() -> Vec<String> {
    let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    links.sort();
    links
}

#[test]
fn private_networks_are_gone_after_a_sigkill() {
    let links_before = machine_links();
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "holds_a_network_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut inodes, mut servers) = (Vec::new(), Vec::new());
    for line in lines.by_ref() {
        let line = line.expect("read the child");
        if let Some(rest) = line.strip_prefix("namespaces ") {
            inodes = numbers(rest);
        } else if let Some(rest) = line.strip_prefix("servers ") {
            servers = numbers(rest);
        } else if line.ends_with("ready") {
            break;
        }
    }
    assert!(inodes.len() >= 4, "lab, mount, two hosts: {inodes:?}");
    assert_eq!(servers.len(), 2);
    assert!(servers.iter().all(|pid| *pid > 0));
    let in_use = namespaces_in_use();
    assert!(
        inodes.iter().all(|i| in_use.contains(i)),
        "the network is up"
    );

    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    let killed = Instant::now();
    loop {
        let in_use = namespaces_in_use();
        let left: Vec<&u64> = inodes.iter().filter(|i| in_use.contains(i)).collect();
        let running: Vec<&u64> = servers
            .iter()
            .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            .collect();
        if left.is_empty() && running.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "10 s after the SIGKILL: namespaces {left:?} and servers {running:?} remain"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("all gone {:?} after the SIGKILL", killed.elapsed());
    assert_eq!(
        machine_links(),
        links_before,
        "the machine's own links changed"
    );
}
