//! The read front that bp-nginx-gen writes, for tests that read through it.
#![allow(dead_code)]

use super::cluster::{bin, client};
use backpack_testkit::{free_port, LocalCluster, NginxFront};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The front bp-nginx-gen writes for the cluster, started on a free port.
pub fn generated_front(cluster: &LocalCluster) -> NginxFront {
    let port = free_port().unwrap();
    let output = Command::new(bin())
        .arg0("bp-nginx-gen")
        .args([&cluster.zk(), &cluster.root, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = cluster.sandbox.path().join("front.conf");
    std::fs::write(&config, &output.stdout).unwrap();
    NginxFront::start(&cluster.sandbox, "front", &config, port).unwrap()
}

/// GET or HEAD through a front: status, Content-Length, body.
pub fn read(url: &str, head: bool) -> (u16, Option<String>, Vec<u8>) {
    let agent = client();
    let answer = if head {
        agent.head(url).call()
    } else {
        agent.get(url).call()
    }
    .unwrap_or_else(|err| panic!("{url}: {err}"));
    let status = answer.status().as_u16();
    let length = answer
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = answer
        .into_body()
        .with_config()
        .limit(8 << 20)
        .read_to_vec()
        .unwrap_or_default();
    (status, length, body)
}
