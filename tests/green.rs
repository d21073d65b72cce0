//! Green threads stay green; the coordinator is observable (/metrics, statsd) and stops
//! cleanly.

#[path = "common/cluster.rs"]
mod cluster;

use backpack_testkit::{DelayProxy, LocalCluster};
use cluster::*;
use std::time::{Duration, Instant};

/// Three single-node shards; node 1 answers `delay` late (behind a proxy).
fn cluster_with_a_slow_node(label: &str, delay: Duration) -> (LocalCluster, DelayProxy) {
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
fn concurrent_uploads(url: &str, n: usize, prefix: &str) -> Vec<(String, f64)> {
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

#[test]
fn a_slow_node_does_not_stall_other_uploads_on_one_worker() {
    let (cluster, _proxy) = cluster_with_a_slow_node("slow-node", Duration::from_secs(2));
    let coordinator = cluster
        .start_coordinator("coordinator", &["--workers", "1", "--quiet"])
        .unwrap();
    let results = concurrent_uploads(&coordinator.url(""), 30, "g");
    let slow: Vec<f64> = results
        .iter()
        .filter(|(s, _)| s == "1")
        .map(|(_, t)| *t)
        .collect();
    let fast: Vec<f64> = results
        .iter()
        .filter(|(s, _)| s != "1")
        .map(|(_, t)| *t)
        .collect();
    eprintln!("one worker: shard 1 (slow node) uploads {slow:.2?} s; others {fast:.3?} s");
    assert!(!slow.is_empty() && !fast.is_empty(), "{results:?}");
    assert!(slow.iter().all(|t| *t >= 1.9), "{slow:?}");
    let worst_fast = fast.iter().cloned().fold(0.0, f64::max);
    assert!(
        worst_fast < 0.5,
        "uploads to healthy shards waited {worst_fast:.2} s behind the slow node"
    );
}

#[test]
fn a_slow_redis_costs_at_most_the_redis_timeout() {
    let cluster = example_cluster("slow-redis");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--redis-timeout", "500ms"])
        .unwrap();
    let agent = client();
    assert_eq!(put(&agent, &coordinator.url("/warm"), b"w").0, 200);
    let sleeper_address = cluster.redis[0].address();
    let sleeper = std::thread::spawn(move || {
        let mut conn = redis::Client::open(format!("redis://{sleeper_address}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let started = Instant::now();
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query(&mut conn)
            .unwrap();
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        let started = Instant::now();
        let (status, answer) = put(
            &agent,
            &coordinator.url(&format!("/while-redis-sleeps/{i}")),
            b"s",
        );
        let took = started.elapsed();
        eprintln!("upload while one Redis sleeps: {status} in {took:?}");
        if took > Duration::from_millis(1500) {
            eprintln!("{}", coordinator.log());
        }
        assert_eq!(status, 200, "{answer}");
        assert!(
            took < Duration::from_millis(1000),
            "upload took {took:?}, the Redis timeout is 500 ms"
        );
    }
    assert!(
        sleeper.join().unwrap() >= Duration::from_millis(2900),
        "Redis really slept"
    );
}

#[test]
fn metrics_parse_and_count_uploads() {
    let cluster = example_cluster("metrics");
    let coordinator = cluster.start_coordinator("coordinator", &[]).unwrap();
    let agent = client();
    for i in 0..5 {
        assert_eq!(
            put(&agent, &coordinator.url(&format!("/m/{i}")), b"12345").0,
            200
        );
    }
    let refused = raw_exchange(
        coordinator.port,
        b"PUT /m/x HTTP/1.1\r\n\r\n",
        Duration::from_millis(300),
    );
    assert!(refused.starts_with("HTTP/1.1 411"), "{refused}");
    let text = agent
        .get(&coordinator.url("/metrics"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let samples = prometheus_samples(&text);
    let get = |key: &str| {
        *samples
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing: {samples:?}"))
    };
    assert_eq!(get("backpack_coordinator_uploads_total{result=ok}"), 5.0);
    assert_eq!(
        get("backpack_coordinator_uploads_total{result=client_error}"),
        1.0
    );
    assert_eq!(
        get("backpack_coordinator_upload_bytes_total{result=ok}"),
        25.0
    );
    assert_eq!(
        get("backpack_coordinator_upload_duration_seconds_count"),
        6.0
    );
    assert_eq!(
        get("backpack_coordinator_shard_capacity_bytes{shard=2}"),
        100.0 * (1u64 << 30) as f64
    );
    assert_eq!(get("backpack_coordinator_shard_writable{shard=3}"), 1.0);
    assert_eq!(get("backpack_coordinator_queue_length"), 5.0);
    assert_eq!(
        get("backpack_coordinator_zookeeper_state{state=connected}"),
        1.0
    );
    assert!(get("backpack_coordinator_open_connections") >= 1.0);
}

#[test]
fn statsd_gets_upload_counters_and_gauges() {
    let cluster = example_cluster("statsd");
    let listener = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let statsd = listener.local_addr().unwrap().to_string();
    let coordinator = cluster
        .start_coordinator("coordinator", &[&statsd, "--statsd-interval", "300ms"])
        .unwrap();
    assert_eq!(put(&client(), &coordinator.url("/statsd"), b"x").0, 200);
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let prefix = format!("backpack-coordinator.{hostname}");
    let mut received = String::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let wanted = [
        format!("{prefix}.add_photo.ok:1|c"),
        format!("{prefix}.add_photo.ok:"),
        format!("{prefix}.1.rw.capacity_size:107374182400|g"),
        format!("{prefix}.total_size:322122547200|g"),
        format!("{prefix}.total_shards:3|g"),
        format!("{prefix}.queue_length:1|g"),
    ];
    while Instant::now() < deadline && !wanted.iter().all(|w| received.contains(w.as_str())) {
        let mut datagram = [0u8; 2048];
        if let Ok(n) = listener.recv(&mut datagram) {
            received.push_str(&String::from_utf8_lossy(&datagram[..n]));
            received.push('\n');
        }
    }
    for line in &wanted {
        assert!(received.contains(line.as_str()), "{line} not in {received}");
    }
    assert!(received.contains("|ms"), "{received}");
}

#[test]
fn sigterm_finishes_uploads_in_flight_and_flushes_sizes() {
    let (cluster, _proxy) = cluster_with_a_slow_node("sigterm", Duration::from_millis(1500));
    for id in ["2", "3"] {
        cluster
            .admin("backpack-coordinator-disable-shard", &[id])
            .unwrap();
    }
    let mut coordinator = cluster
        .start_coordinator("coordinator", &["--size-flush", "60s", "--quiet"])
        .unwrap();
    let url = coordinator.url("");
    let uploads = std::thread::spawn(move || concurrent_uploads(&url, 20, "t"));
    std::thread::sleep(Duration::from_millis(500));
    coordinator.process.signal(libc::SIGTERM);
    let results = uploads.join().unwrap();
    assert_eq!(results.len(), 20);
    assert!(results.iter().all(|(shard, _)| shard == "1"));
    let status = coordinator
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("the coordinator exits");
    assert_eq!(status.code(), Some(0), "{}", coordinator.log());
    // The size flush interval is a minute: only the shutdown flush can have written this.
    assert_eq!(shard_current(&cluster, "1"), 20 * 5);
    assert!(!backpack_testkit::is_listening(coordinator.port));
}

/// The value of an unlabelled sample in a /metrics text.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// Concurrent uploads hold no more body bytes in memory than --memory-budget; the rest
/// are spooled, and every one is stored.
#[test]
fn bodies_in_memory_stay_within_the_budget() {
    let cluster = LocalCluster::start(bin(), "memory-budget", 1, 1).unwrap();
    let proxy = DelayProxy::start(cluster.node(1).port, Duration::from_millis(1500)).unwrap();
    cluster
        .admin("backpack-coordinator-add-server", &["1", &proxy.url()])
        .unwrap();
    cluster.add_enabled_shard("1", &[1], "10gb").unwrap();
    let coordinator = cluster
        .start_coordinator("coordinator", &["--memory-budget", "2mb"])
        .unwrap();
    let gauge = "backpack_coordinator_memory_body_bytes";
    let metrics = || {
        client()
            .get(&coordinator.url("/metrics"))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap()
    };
    let body: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let uploads: Vec<_> = (0..12)
        .map(|i| {
            let (url, body) = (coordinator.url(&format!("/budget/{i}")), body.clone());
            std::thread::spawn(move || put(&client(), &url, &body))
        })
        .collect();
    // All twelve wait on the slow node now, their bodies read.
    std::thread::sleep(Duration::from_millis(800));
    let held = sample(&metrics(), gauge);
    assert!(
        ((1 << 20) as f64..=(2 << 20) as f64).contains(&held),
        "{held} bytes of bodies in memory with a 2 MiB budget"
    );
    for upload in uploads {
        let (status, answer) = upload.join().unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    for i in 0..12 {
        assert_eq!(
            cluster.node(1).file(&format!("/budget/{i}")).as_deref(),
            Some(&body[..])
        );
    }
    assert_eq!(sample(&metrics(), gauge), 0.0);
}
