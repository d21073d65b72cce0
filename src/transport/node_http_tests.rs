//! The coordinator's node connections against a node that closes idle connections.

use super::{agent, Role};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

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
        let agent = agent(
            Duration::from_secs(2),
            Duration::from_secs(5),
            Role::Uploads,
        );
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
