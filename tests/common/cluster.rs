//! Helpers for tests that run a whole cluster and upload through a coordinator.

use backpack::zk::ZkSession;
use backpack_testkit::scenario::{self, Ack, BodySizes, PHOTOS};
use backpack_testkit::{
    metrics, CoordinatorProcess, DelayProxy, LocalCluster, NodeKind, ServerProcess,
};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

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
    scenario::agent()
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

/// The shard id from a 200 answer. Panics, with the answer, when there is none.
pub fn shard_of(answer: &str) -> String {
    scenario::shard_of(answer).unwrap_or_else(|| panic!("shard_id in {answer}"))
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

/// `current` of a shard's size node.
pub fn shard_current(cluster: &LocalCluster, shard: &str) -> u64 {
    let zk = ZkSession::connect(&cluster.zk_by_address(), Duration::from_secs(5)).expect("zk");
    let (bytes, _) = zk
        .get(&format!("{}/shard-size-{shard}", cluster.root))
        .unwrap()
        .expect("size node");
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["current"].as_u64().unwrap_or(0)
}

/// Overwrites a shard's size node.
pub fn set_shard_size(cluster: &LocalCluster, shard: &str, capacity: u64, current: u64) {
    let zk = ZkSession::connect(&cluster.zk_by_address(), Duration::from_secs(5)).expect("zk");
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

/// Sum of every `node_failures` sample in a coordinator's /metrics.
pub fn node_failures(metrics_url: &str) -> f64 {
    let text = metrics::get_text(metrics_url).unwrap_or_else(|err| panic!("{err}"));
    metrics::family_sum(&text, "backpack_coordinator_node_failures_total")
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
    for server in 0..cluster.redis.len() {
        let items = cluster.queue_items(server);
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

/// Starts the coordinator `coordinator` on the cluster with `flags`, ready to serve.
pub fn coordinator(cluster: &LocalCluster, flags: &[&str]) -> CoordinatorProcess {
    cluster
        .start_coordinator("coordinator", flags)
        .unwrap_or_else(|err| panic!("start a coordinator with {flags:?}: {err}"))
}

/// The body of `path`, 1 KiB to 2 MiB: its length and bytes follow from the path, so
/// nothing is kept.
pub fn body_for(path: &str) -> Vec<u8> {
    scenario::body(path, PHOTOS)
}

/// Uploads `n` files of `sizes` under `/<label>/` through `url`, each answered 200.
pub fn upload_n(url: &str, n: usize, label: &str, sizes: BodySizes) -> Vec<Ack> {
    scenario::upload_n(url, n, label, sizes)
}

/// Every acknowledged upload is byte-identical on every node of its shard.
pub fn assert_replicated(cluster: &LocalCluster, acks: &[Ack]) {
    let missing = scenario::checks::missing_copies(cluster, acks).expect("read shards-map");
    assert!(
        missing.is_empty(),
        "{} copies missing or different: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// `<base>/metrics`, read by the reference parser (Python's prometheus_client).
pub fn scrape_metrics(base: &str) -> HashMap<String, f64> {
    metrics::scrape(base).unwrap_or_else(|err| panic!("{err}"))
}

/// Three single-node shards; node 1 answers `delay` late (behind a proxy).
pub fn cluster_with_a_slow_node(label: &str, delay: Duration) -> (LocalCluster, DelayProxy) {
    let cluster = LocalCluster::start(bin(), label, 2, 3).unwrap();
    let proxy = DelayProxy::start(cluster.node(1).port, delay).unwrap();
    cluster
        .admin("backpack-coordinator-add-server", &["1", &proxy.url()])
        .unwrap();
    for id in ["1", "2", "3"] {
        cluster
            .add_enabled_shard(id, &[id.parse().unwrap()], "10gb")
            .unwrap();
    }
    (cluster, proxy)
}

/// Uploads from `n` threads at once; (shard, seconds) per upload.
pub fn concurrent_uploads(url: &str, n: usize, prefix: &str) -> Vec<(String, f64)> {
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let url = format!("{url}/{prefix}/{i}");
            std::thread::spawn(move || {
                let started = Instant::now();
                let (status, answer) = put(&client(), &url, b"green");
                assert_eq!(status, 200, "{answer}");
                (shard_of(&answer), started.elapsed().as_secs_f64())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// What a daemon logged so far.
pub fn log_of(process: &ServerProcess) -> String {
    std::fs::read_to_string(process.log()).unwrap_or_default()
}

/// Waits until the queue is empty everywhere; how long that took. Panics after `within`,
/// with the ends of `logs`.
pub fn wait_until_drained(
    cluster: &LocalCluster,
    within: Duration,
    logs: &[&ServerProcess],
) -> Duration {
    let started = Instant::now();
    if let Err(err) = scenario::checks::wait_drained(cluster, within) {
        let tails: Vec<String> = logs.iter().map(|p| p.log_tail(8)).collect();
        panic!("{err}\n{}", tails.join("\n---\n"));
    }
    started.elapsed()
}

/// Waits until `done`, checking every 100 ms; panics with `what` after `within`.
pub fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the shards' sizes are exactly `expected` (shard -> bytes); panics after
/// 10 s.
pub fn wait_for_sizes(cluster: &LocalCluster, expected: &HashMap<String, u64>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let actual: HashMap<String, u64> = expected
            .keys()
            .map(|shard| (shard.clone(), shard_current(cluster, shard)))
            .collect();
        if &actual == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sizes {actual:?}, acknowledged {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
