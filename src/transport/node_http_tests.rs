//! The coordinator's node connections against a node that closes idle connections.

use super::{agent, Limits, Role};
use crate::transport::node_transport::Patience;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn limits(connect: u64, progress: u64, answer: u64, total: u64) -> Limits {
    let ms = Duration::from_millis;
    Limits {
        connect: ms(connect),
        patience: Patience {
            progress: ms(progress),
            answer: ms(answer),
        },
        total: ms(total),
    }
}

/// Answers each connection's first request with 201, then closes it after `linger`: a
/// node with a short keep-alive timeout. Returns how many connections it served.
fn closing_node(listener: TcpListener, connections: usize, linger: Duration) -> usize {
    let mut served = 0;
    for _ in 0..connections {
        let Ok((mut peer, _)) = listener.accept() else {
            break;
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // The test's requests are small: the head and its 5-byte body.
        while !request.ends_with(b"hello") {
            match peer.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = peer.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        served += 1;
        std::thread::sleep(linger);
    }
    served
}

/// A pooled connection the node closed a moment ago is not reused: the next upload
/// opens a new one instead of failing on the closed one. 300 ms after the close is
/// within the time the coordinator trusts `may`'s readiness flag without asking the
/// socket, so this checks that the close shows in the flag.
#[test]
fn a_connection_the_node_closed_is_not_reused() {
    may::config().set_workers(2);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/file", listener.local_addr().expect("addr"));
    let node = std::thread::spawn(move || closing_node(listener, 2, Duration::from_millis(50)));
    let statuses = may::go!(move || {
        let agent = agent(limits(2000, 5000, 5000, 5000), Role::Uploads);
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let answer = agent.put(&url).send(&b"hello"[..]);
            statuses.push(
                answer
                    .map(|a| a.status().as_u16())
                    .map_err(|e| e.to_string()),
            );
            may::coroutine::sleep(Duration::from_millis(300));
        }
        statuses
    })
    .join()
    .expect("coroutine");
    assert_eq!(statuses, vec![Ok(201), Ok(201)]);
    assert_eq!(
        node.join().expect("node"),
        2,
        "the second upload opened a connection"
    );
}

/// A node that reads `body` bytes of each request at `pace` per 10 ms, then answers 201
/// after `answer_after` (or never, when None).
fn node(pace: usize, answer_after: Option<Duration>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for peer in listener.incoming().flatten() {
            std::thread::spawn(move || serve_one(peer, pace, answer_after));
        }
    });
    format!("http://{address}/file")
}

fn serve_one(mut peer: TcpStream, pace: usize, answer_after: Option<Duration>) {
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; pace.max(1)];
    // The head, then the body by its Content-Length.
    let (head_end, length) = loop {
        let Ok(n) = peer.read(&mut chunk) else { return };
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&chunk[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut got = seen.len() - head_end;
    while got < length {
        match peer.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => got += n,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    match answer_after {
        Some(after) => {
            std::thread::sleep(after);
            let _ = peer.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
            std::thread::sleep(Duration::from_millis(200));
        }
        None => std::thread::sleep(Duration::from_secs(30)),
    }
}

/// PUTs `body` bytes to `url` with `limits`, with the replicator's agent and with the
/// coordinator's, each in a coroutine as they are used: each outcome and how long it took.
fn put_both_ways(url: &str, body: usize, limits: Limits) -> Vec<(Result<u16, String>, Duration)> {
    may::config().set_workers(2);
    let put = move |agent: ureq::Agent, url: String| {
        let started = Instant::now();
        let answer = agent
            .put(&url)
            .send(&vec![1u8; body][..])
            .map(|a| a.status().as_u16())
            .map_err(|e| e.to_string());
        (answer, started.elapsed())
    };
    let copies = {
        let url = url.to_string();
        may::go!(move || put(agent(limits, Role::Copies), url))
    };
    let url = url.to_string();
    let uploads = may::go!(move || put(agent(limits, Role::Uploads), url));
    vec![
        copies.join().expect("copies' coroutine"),
        uploads.join().expect("uploads' coroutine"),
    ]
}

/// A node that takes the whole request and never answers is given up after the answer
/// timeout, not the whole request's.
#[test]
fn a_node_that_never_answers_is_given_up_after_the_answer_timeout() {
    let url = node(64 * 1024, None);
    for (outcome, took) in put_both_ways(&url, 1000, limits(1000, 2000, 600, 20_000)) {
        let err = outcome.expect_err("no answer came");
        assert!(err.contains("no answer from the node"), "{err}");
        assert!(
            took >= Duration::from_millis(550) && took < Duration::from_millis(1500),
            "{took:?}"
        );
    }
}

/// A node that stops reading a large body is given up after the progress timeout.
#[test]
fn a_node_that_stops_reading_is_given_up_after_the_progress_timeout() {
    // Reads the head only (the body never), then never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/file", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut peers = Vec::new();
        for mut peer in listener.incoming().flatten() {
            let mut head = [0u8; 512];
            let _ = peer.read(&mut head);
            peers.push(peer);
        }
    });
    for (outcome, took) in put_both_ways(&url, 32 << 20, limits(1000, 700, 5000, 20_000)) {
        let err = outcome.expect_err("the body never went");
        assert!(err.contains("the node took nothing"), "{err}");
        assert!(took < Duration::from_millis(3000), "{took:?}");
    }
}

/// A slow node whose transfer moves is never cut by the progress timeout, however long
/// the whole takes.
#[test]
fn a_slow_node_that_keeps_reading_is_not_cut() {
    // 16 KiB per 10 ms: 1 MiB takes about 0.7 s, past a 300 ms progress timeout.
    let url = node(16 * 1024, Some(Duration::from_millis(100)));
    for (outcome, took) in put_both_ways(&url, 1 << 20, limits(1000, 300, 1000, 20_000)) {
        assert_eq!(outcome, Ok(201));
        assert!(took > Duration::from_millis(300), "{took:?}");
    }
}
