//! Helpers for tests that run a whole cluster and upload through a coordinator.
#![allow(dead_code)]

use backpack::zk::ZkSession;
use backpack_testkit::{LocalCluster, NodeKind, ServerProcess, QUEUE_KEY};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_backpack"))
}

/// The example cluster: six WebDAV nodes, shards 1 = 1,4; 2 = 2,5; 3 = 3,6; 100gb, enabled.
pub fn example_cluster(label: &str) -> LocalCluster {
    example_cluster_of(label, NodeKind::WebDav)
}

/// The example cluster on nodes of `kind`.
pub fn example_cluster_of(label: &str, kind: NodeKind) -> LocalCluster {
    LocalCluster::seed_example(bin(), label, kind).expect("start the seed example")
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
    backpack_testkit::bench::load::memory_kib(pid, "VmHWM").expect("VmHWM")
}

/// Sum of every `node_failures` sample in a coordinator's /metrics.
pub fn node_failures(coordinator_url: &str) -> f64 {
    let text = client()
        .get(coordinator_url)
        .call()
        .expect("GET /metrics")
        .into_body()
        .read_to_string()
        .expect("metrics text");
    text.lines()
        .filter(|line| line.contains("node_failures") && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends one raw request and returns the answer's status line and body.
fn raw_status_and_body(port: u16, request: &[u8]) -> (String, String) {
    let answer = raw_exchange(port, request, Duration::from_millis(1500));
    let status = answer.lines().next().unwrap_or("").to_string();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// What no Backpack node can store or serve is refused by the coordinator with 400 and a
/// reason, before any node is asked: nothing stored, nothing queued, no node's health
/// touched. The same on real nodes and on the stand-in.
pub fn refuses_what_no_node_can_store(cluster: &LocalCluster, port: u16) {
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let before = node_failures(&url("/metrics"));
    let long = format!("/{}", "k".repeat(300));
    let cases: Vec<(String, &[u8], &str)> = vec![
        ("/empty.jpg".into(), b"", "empty"),
        ("/files".into(), b"x", "reserved"),
        ("/files_counter".into(), b"x", "reserved"),
        ("/stats".into(), b"x", "reserved"),
        (long, b"x", "255 bytes"),
        ("/a%00b.jpg".into(), b"x", "NUL"),
        ("/caf\u{e9}.jpg".into(), b"x", "percent-encode"),
    ];
    for (path, body, why) in &cases {
        let mut request = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let (status, answer) = raw_status_and_body(port, &request);
        assert!(status.starts_with("HTTP/1.1 400 "), "{path}: {status}");
        let error: serde_json::Value = serde_json::from_str(&answer)
            .unwrap_or_else(|_| panic!("{path}: JSON error, got {answer}"));
        let message = error["error"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{path}: {message}");
    }
    // A missing length stays 411.
    let (status, _) = raw_status_and_body(
        port,
        b"PUT /no-length.jpg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(status.starts_with("HTTP/1.1 411 "), "{status}");
    // Names next to the reserved ones are fine.
    let agent = client();
    for path in ["/stats.jpg", "/files/1.jpg"] {
        let (status, answer) = put(&agent, &url(path), b"fine");
        assert_eq!(status, 200, "{path}: {answer}");
    }
    assert_eq!(
        node_failures(&url("/metrics")),
        before,
        "node health touched"
    );
    for node in 1..=cluster.nodes.len() {
        assert_eq!(cluster.node(node).file("/empty.jpg"), None);
        assert_eq!(cluster.node(node).file("/a%00b.jpg"), None);
    }
    for redis in &cluster.redis {
        let items = queue_items(&redis.address());
        assert!(
            items
                .iter()
                .all(|item| item.contains("stats.jpg") || item.contains("files/1.jpg")),
            "{items:?}"
        );
    }
}

/// Starts a replicator (a daemon, or with `--once`) with `args` after ZooKeeper and root.
pub fn replicator(cluster: &LocalCluster, name: &str, args: &[&str]) -> ServerProcess {
    cluster
        .start_replicator(name, args)
        .expect("start a replicator")
}

/// True when the queue set is empty on every Redis server.
pub fn queue_empty_everywhere(cluster: &LocalCluster) -> bool {
    cluster
        .redis
        .iter()
        .all(|redis| queue_items(&redis.address()).is_empty())
}

/// The body of `path`: its length and bytes follow from the path, so nothing is kept.
pub fn body_for(path: &str) -> Vec<u8> {
    let mut state = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Log-uniform from 1 KiB to 2 MiB.
    let exponent = 10.0 + (next() % 1000) as f64 / 1000.0 * 11.0;
    let length = 2f64.powf(exponent) as usize;
    (0..length).map(|_| next() as u8).collect()
}

/// Prometheus text read by the reference parser (Python's prometheus_client, from Debian):
/// sample name and labels (`name{k=v}{k2=v2}`, labels sorted) -> value. Panics, with the
/// text, when the parser refuses it.
pub fn prometheus_samples(text: &str) -> std::collections::HashMap<String, f64> {
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        key = s.name + "".join("{%s=%s}" % kv for kv in sorted(s.labels.items()))
        out[key] = s.value
print(json.dumps(out))
"#;
    let mut python = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to the parser");
    let output = python.wait_with_output().expect("the parser's answer");
    assert!(
        output.status.success(),
        "the Prometheus parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the parser's JSON")
}

/// `<base>/metrics`, read by the reference parser.
pub fn scrape_metrics(base: &str) -> std::collections::HashMap<String, f64> {
    let text = client()
        .get(&format!("{base}/metrics"))
        .call()
        .expect("GET /metrics")
        .into_body()
        .read_to_string()
        .expect("the metrics text");
    prometheus_samples(&text)
}

/// Adds `items` to the queue set on every Redis server, as pushed by hand.
pub fn push_items(cluster: &LocalCluster, items: &[String]) {
    for server in &cluster.redis {
        let mut conn = redis::Client::open(format!("redis://{}/", server.address()))
            .and_then(|c| c.get_connection())
            .expect("connect to Redis");
        let _: i64 = redis::cmd("SADD")
            .arg(QUEUE_KEY)
            .arg(items)
            .query(&mut conn)
            .expect("SADD");
    }
}
