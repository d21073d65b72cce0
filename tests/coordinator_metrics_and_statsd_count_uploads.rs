//! The coordinator is observable: `/metrics` parses (by Prometheus' own parser) and counts
//! uploads by result, and statsd gets the old coordinator's counters and gauges.

mod common;

use common::cluster::*;
use std::time::{Duration, Instant};

#[test]
fn metrics_parse_and_count_uploads() {
    let cluster = example_cluster("metrics");
    let coordinator = coordinator(&cluster, &[]);
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
    let samples = scrape_metrics(&coordinator.url(""));
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
    let coordinator = coordinator(&cluster, &[&statsd, "--statsd-interval", "300ms"]);
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
