//! Slow and idle clients: they are cut off after their timeouts and never hold up other
//! uploads; past the connection cap new connections get 503.

mod common;

use common::cluster::*;
use common::probes::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn slowloris_does_not_block_uploads_and_is_cut_off() {
    let cluster = example_cluster("slowloris");
    let coordinator = coordinator(&cluster, &["--header-timeout", "2s"]);
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
