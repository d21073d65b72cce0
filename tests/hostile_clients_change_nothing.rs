//! Hostile and broken clients against a running coordinator on a real cluster.

mod common;

use common::cluster::*;
use common::probes::*;
use rand::Rng;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn a_smuggled_request_in_a_rejected_body_is_never_executed() {
    let cluster = example_cluster("smuggle");
    let coordinator = coordinator(&cluster, &[]);
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
    let coordinator = coordinator(&cluster, &[]);
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
            "200",
        ),
        (
            "PUT /f HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                .into(),
            "501",
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
    let coordinator = coordinator(&cluster, &["--size-flush", "200ms", "--quiet"]);
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
        for server in 0..cluster.redis.len() {
            assert!(!cluster
                .queue_items(server)
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
fn thousands_of_malformed_requests_change_nothing() {
    let cluster = example_cluster("fuzz-loop");
    let coordinator = coordinator(&cluster, &["--quiet"]);
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
