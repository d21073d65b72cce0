//! Helpers for tests that run a whole cluster and upload through a coordinator.
#![allow(dead_code)]

use backpack::testkit::{LocalCluster, QUEUE_KEY};
use backpack::zk::ZkSession;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_backpack"))
}

/// The example cluster: six nodes, shards 1 = 1,4; 2 = 2,5; 3 = 3,6; 100gb, enabled.
pub fn example_cluster(label: &str) -> LocalCluster {
    let cluster = LocalCluster::start(bin(), label, 2, 6).expect("start the cluster");
    for (id, nodes) in [("1", [1, 4]), ("2", [2, 5]), ("3", [3, 6])] {
        cluster
            .add_enabled_shard(id, &nodes, "100gb")
            .expect("add shard");
    }
    cluster
}

/// A plain HTTP client (std sockets) that returns every status as a value.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// PUTs `body` and returns the status and the answer's text.
pub fn put(agent: &ureq::Agent, url: &str, body: &[u8]) -> (u16, String) {
    let response = agent
        .put(url)
        .send(body)
        .expect("PUT reaches the coordinator");
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    (status, text)
}

/// The shard id from a 200 answer.
pub fn shard_of(answer: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(answer).unwrap_or_else(|_| panic!("JSON answer: {answer}"));
    value["shard_id"]
        .as_str()
        .unwrap_or_else(|| panic!("shard_id in {answer}"))
        .to_string()
}

pub fn get_json(agent: &ureq::Agent, url: &str) -> serde_json::Value {
    let text = agent
        .get(url)
        .call()
        .expect("GET")
        .into_body()
        .read_to_string()
        .expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON from {url}: {text}"))
}

/// The members of the queue set on one Redis server.
pub fn queue_items(redis_address: &str) -> Vec<String> {
    let client = redis::Client::open(format!("redis://{redis_address}/")).expect("redis url");
    let mut conn = client.get_connection().expect("connect to redis");
    let mut items: Vec<String> = redis::cmd("SMEMBERS")
        .arg(QUEUE_KEY)
        .query(&mut conn)
        .expect("SMEMBERS");
    items.sort();
    items
}

/// `current` of a shard's size node.
pub fn shard_current(cluster: &LocalCluster, shard: &str) -> u64 {
    let zk = ZkSession::connect(&cluster.zk(), Duration::from_secs(5)).expect("zk");
    let (bytes, _) = zk
        .get(&format!("{}/shard-size-{shard}", cluster.root))
        .unwrap()
        .expect("size node");
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["current"].as_u64().unwrap_or(0)
}

/// Overwrites a shard's size node.
pub fn set_shard_size(cluster: &LocalCluster, shard: &str, capacity: u64, current: u64) {
    let zk = ZkSession::connect(&cluster.zk(), Duration::from_secs(5)).expect("zk");
    let path = format!("{}/shard-size-{shard}", cluster.root);
    let (_, version) = zk.get(&path).unwrap().expect("size node");
    let text = format!(r#"{{"capacity":{capacity},"current":{current}}}"#);
    assert!(zk.set(&path, text.into_bytes(), version).unwrap());
}

/// Writes `bytes` on a new connection and reads until the server closes it or goes quiet
/// for `quiet`.
pub fn raw_exchange(port: u16, bytes: &[u8], quiet: Duration) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(bytes).expect("write");
    read_until_quiet(&mut stream, quiet)
}

pub fn read_until_quiet(stream: &mut TcpStream, quiet: Duration) -> String {
    stream.set_read_timeout(Some(quiet)).unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Which nodes (ids) hold `path`.
pub fn holders(cluster: &LocalCluster, path: &str) -> Vec<usize> {
    (1..=cluster.nodes.len())
        .filter(|id| cluster.node(*id).file(path).is_some())
        .collect()
}

/// Peak resident memory of a process, in KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> u64 {
    backpack::bench::load::memory_kib(pid, "VmHWM").expect("VmHWM")
}
