//! Hostile and broken clients against a running coordinator on a real cluster.

#[path = "common/cluster.rs"]
mod cluster;

use backpack_testkit::{CoordinatorProcess, LocalCluster};
use cluster::*;
use rand::Rng;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(400);

fn ask(coordinator: &CoordinatorProcess, request: &[u8]) -> String {
    raw_exchange(coordinator.port, request, QUIET)
}

/// The server still serves a normal client.
fn still_serves(coordinator: &CoordinatorProcess) {
    let stats = get_json(&client(), &coordinator.url("/stats"));
    assert!(stats["uptime"].is_number(), "{stats}");
}

/// A cluster of one node in one enabled 1gb shard, and a coordinator run with `flags`.
fn one_node_coordinator(label: &str, flags: &[&str]) -> (LocalCluster, CoordinatorProcess) {
    let cluster = LocalCluster::start(bin(), label, 1, 1).unwrap();
    cluster.add_enabled_shard("1", &[1], "1gb").unwrap();
    let coordinator = cluster.start_coordinator("coordinator", flags).unwrap();
    (cluster, coordinator)
}

fn vm_rss_kib(pid: u32) -> u64 {
    backpack_testkit::bench::load::memory_kib(pid, "VmRSS").expect("VmRSS")
}

/// Files in the coordinator's directory other than its log (spool files would show here
/// if they were named).
fn stray_files(coordinator: &CoordinatorProcess) -> Vec<String> {
    std::fs::read_dir(&coordinator.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".log"))
        .collect()
}

#[test]
fn a_smuggled_request_in_a_rejected_body_is_never_executed() {
    let cluster = example_cluster("smuggle");
    let coordinator = cluster.start_coordinator("coordinator", &[]).unwrap();
    let hidden = "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n";
    for length in ["abc", "-1", "1e3", "18446744073709551616"] {
        let request = format!("PUT /s HTTP/1.1\r\nContent-Length: {length}\r\n\r\n{hidden}");
        let answer = ask(&coordinator, request.as_bytes());
        assert_eq!(
            answer.matches("HTTP/1.1").count(),
            1,
            "one answer only: {answer}"
        );
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
        assert!(!answer.contains("uptime"), "the hidden GET ran: {answer}");
    }
    // A body the handler refuses unread (too large) is not parsed either.
    let coordinator = cluster
        .start_coordinator("small-max", &["--max-body", "10"])
        .unwrap();
    let request = format!("PUT /s HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n{hidden}");
    let answer = ask(&coordinator, request.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(!answer.contains("uptime"), "the hidden GET ran: {answer}");
}

#[test]
fn malformed_framing_and_oversized_heads_get_documented_answers() {
    let cluster = example_cluster("framing");
    let coordinator = cluster.start_coordinator("coordinator", &[]).unwrap();
    let many_headers: String = (0..100).map(|i| format!("X-Proxy-{i}: v\r\n")).collect();
    let too_many_headers: String = (0..200).map(|i| format!("X-Proxy-{i}: v\r\n")).collect();
    let cases: Vec<(String, &str)> = vec![
        (
            "PUT /f HTTP/1.1\r\nContent-Length: -5\r\n\r\n".into(),
            "400",
        ),
        (
            "PUT /f HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n".into(),
            "400",
        ),
        (
            "PUT /f HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".into(),
            "400",
        ),
        (
            "PUT /f HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".into(),
            "400",
        ),
        (
            "PUT /f HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc".into(),
            "400",
        ),
        (
            "PUT /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".into(),
            "411",
        ),
        (
            "PUT /f HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc".into(),
            "200",
        ),
        (
            format!("PUT /f100 HTTP/1.1\r\n{many_headers}Content-Length: 1\r\n\r\nx"),
            "200",
        ),
        (
            format!("PUT /f HTTP/1.1\r\n{too_many_headers}Content-Length: 1\r\n\r\nx"),
            "431",
        ),
        (
            format!(
                "GET /stats HTTP/1.1\r\nX-Long: {}\r\n\r\n",
                "a".repeat(8 * 1024)
            ),
            "200",
        ),
        (
            format!(
                "GET /stats HTTP/1.1\r\nX-Long: {}\r\n\r\n",
                "a".repeat(20 * 1024)
            ),
            "431",
        ),
        (
            format!(
                "PUT /{} HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
                "p".repeat(2000)
            ),
            "400",
        ),
        (
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03garbage\r\n\r\n".into(),
            "400",
        ),
        (
            "PUT /f HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx".into(),
            "417",
        ),
    ];
    for (request, status) in &cases {
        let answer = ask(&coordinator, request.as_bytes());
        let shown = &request[..request.len().min(80)];
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{shown:?} -> {answer}"
        );
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{shown:?} -> {answer}"
        );
        // Framing that cannot be trusted closes the connection; a refused request whose
        // small body was read may keep it.
        let keeps = *status == "200" || request.starts_with("PUT /pp");
        assert_eq!(
            answer.contains("Connection: close"),
            !keeps,
            "{shown:?} -> {answer}"
        );
        still_serves(&coordinator);
    }
    // Connection: close from the client is honoured.
    let answer = ask(
        &coordinator,
        b"GET /stats HTTP/1.1\r\nConnection: close\r\n\r\nGET /stats HTTP/1.1\r\n\r\n",
    );
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 1, "{answer}");
}

#[test]
fn a_client_that_vanishes_mid_body_leaves_nothing_behind() {
    let cluster = example_cluster("vanish");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--size-flush", "200ms", "--quiet"])
        .unwrap();
    // A load of good uploads meanwhile.
    let url = coordinator.url("");
    let load = std::thread::spawn(move || {
        let agent = client();
        for i in 0..200 {
            let (status, answer) = put(&agent, &format!("{url}/load/{i}"), &vec![b'l'; 5000]);
            assert_eq!(status, 200, "{answer}");
        }
    });
    // Small bodies (held in memory) and large ones (streamed to a node) that break off.
    for (i, (announced, sent)) in [(1000usize, 10usize), (5 << 20, 3 << 20), (2 << 20, 1)]
        .iter()
        .enumerate()
    {
        let mut stream = TcpStream::connect(("127.0.0.1", coordinator.port)).unwrap();
        let head = format!("PUT /broken/{i} HTTP/1.1\r\nContent-Length: {announced}\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&vec![b'b'; *sent]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(stream);
    }
    load.join().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    for i in 0..3 {
        let path = format!("/broken/{i}");
        assert_eq!(
            holders(&cluster, &path),
            Vec::<usize>::new(),
            "{path} stored"
        );
        for redis in &cluster.redis {
            assert!(!queue_items(&redis.address())
                .iter()
                .any(|item| item.contains("/broken/")));
        }
    }
    let counted: u64 = ["1", "2", "3"]
        .iter()
        .map(|s| shard_current(&cluster, s))
        .sum();
    assert_eq!(counted, 200 * 5000, "only the good uploads count");
    assert_eq!(stray_files(&coordinator), Vec::<String>::new());
    still_serves(&coordinator);
}

#[test]
fn slowloris_does_not_block_uploads_and_is_cut_off() {
    let cluster = example_cluster("slowloris");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--header-timeout", "2s"])
        .unwrap();
    let mut trickling: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", coordinator.port)).unwrap();
            stream.write_all(b"PUT /slow HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    for second in 0..4 {
        for stream in &mut trickling {
            let _ = stream.write_all(b"X");
        }
        let begun = Instant::now();
        let (status, answer) = put(
            &client(),
            &coordinator.url(&format!("/normal/{second}")),
            b"ok",
        );
        assert_eq!(status, 200, "{answer}");
        assert!(
            begun.elapsed() < Duration::from_secs(1),
            "a normal upload waited {:?}",
            begun.elapsed()
        );
        std::thread::sleep(Duration::from_millis(1000).saturating_sub(begun.elapsed()));
    }
    // Past the header timeout every trickling connection got a 408 and was closed.
    assert!(started.elapsed() >= Duration::from_secs(3));
    for stream in &mut trickling {
        let answer = read_until_quiet(stream, Duration::from_millis(500));
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).unwrap_or(0), 0, "closed");
    }
}

#[test]
fn idle_and_stalled_connections_are_closed() {
    let (cluster, coordinator) = one_node_coordinator(
        "timeouts",
        &["--idle-timeout", "1s", "--body-timeout", "1s"],
    );
    let mut idle = TcpStream::connect(("127.0.0.1", coordinator.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap_or(0), 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "idle connection closed after ~1s"
    );

    let mut stalled = TcpStream::connect(("127.0.0.1", coordinator.port)).unwrap();
    stalled
        .write_all(b"PUT /stall HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly-some")
        .unwrap();
    let answer = read_until_quiet(&mut stalled, Duration::from_secs(4));
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("body"), "{answer}");
    assert_eq!(holders(&cluster, "/stall"), Vec::<usize>::new());
}

/// The idle timeout holds on its own even when it is longer than the body timeout (the
/// socket keeps the shorter one and waits again).
#[test]
fn an_idle_timeout_longer_than_the_body_timeout_is_kept() {
    let (_cluster, coordinator) = one_node_coordinator(
        "long-idle",
        &["--idle-timeout", "3s", "--body-timeout", "1s"],
    );
    let mut kept = TcpStream::connect(("127.0.0.1", coordinator.port)).unwrap();
    kept.write_all(b"GET /stats HTTP/1.1\r\n\r\n").unwrap();
    assert!(read_until_quiet(&mut kept, QUIET).starts_with("HTTP/1.1 200 "));
    // Idle for twice the body timeout: still open.
    std::thread::sleep(Duration::from_millis(2000));
    kept.write_all(b"GET /stats HTTP/1.1\r\n\r\n").unwrap();
    let answer = read_until_quiet(&mut kept, QUIET);
    assert!(
        answer.starts_with("HTTP/1.1 200 "),
        "closed early: {answer:?}"
    );
    // And closed once the idle timeout has passed.
    let idle_since = Instant::now();
    kept.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    assert_eq!(kept.read(&mut [0u8; 16]).unwrap_or(0), 0);
    let idle = idle_since.elapsed();
    assert!(
        idle > Duration::from_millis(1800) && idle < Duration::from_millis(5000),
        "closed after {idle:?} idle, not about 3s"
    );
}

#[test]
fn too_many_connections_get_503() {
    let (_cluster, coordinator) = one_node_coordinator("conn-cap", &["--max-connections", "5"]);
    let held: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", coordinator.port)).unwrap())
        .collect();
    // The five are accepted in the background; within a few seconds a sixth is refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = ask(&coordinator, b"GET /stats HTTP/1.1\r\n\r\n");
        if answer.starts_with("HTTP/1.1 503 ") {
            assert!(answer.contains("too many open connections"), "{answer}");
            break;
        }
        assert!(Instant::now() < deadline, "never refused: {answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    still_serves(&coordinator);
}

#[test]
fn thousands_of_malformed_requests_change_nothing() {
    let cluster = example_cluster("fuzz-loop");
    let coordinator = cluster
        .start_coordinator("coordinator", &["--quiet"])
        .unwrap();
    let pid = coordinator.process.pid().unwrap();
    still_serves(&coordinator);
    let rss_start = vm_rss_kib(pid);
    let mut rng = rand::rng();
    let pieces: [&[u8]; 12] = [
        b"PUT ",
        b"GET ",
        b"/x",
        b" HTTP/1.1\r\n",
        b"Content-Length: ",
        b"-1",
        b"99999999999999999999",
        b"\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\x00\xff\xfe",
        b"Expect: 100-continue\r\n",
        b"\r\n\r\n",
    ];
    for _ in 0..2000 {
        let mut request = Vec::new();
        for _ in 0..rng.random_range(1..12) {
            if rng.random_bool(0.2) {
                request.extend((0..rng.random_range(1..40)).map(|_| rng.random::<u8>()));
            } else {
                request.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            }
        }
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", coordinator.port)) else {
            continue;
        };
        let _ = stream.write_all(&request);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = stream.read(&mut [0u8; 4096]);
    }
    still_serves(&coordinator);
    let rss_end = vm_rss_kib(pid);
    eprintln!("RSS before {rss_start} KiB, after 2000 malformed requests {rss_end} KiB");
    assert!(
        rss_end < rss_start + 64 * 1024,
        "RSS grew from {rss_start} to {rss_end} KiB"
    );
    assert_eq!(stray_files(&coordinator), Vec::<String>::new());
    assert!(
        !coordinator.log().contains("panicked"),
        "{}",
        coordinator.log()
    );
}
