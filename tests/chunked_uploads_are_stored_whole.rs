//! Uploads of unknown length: `Transfer-Encoding: chunked` bodies are taken, stored with a
//! `Content-Length`, and anything malformed is refused with nothing stored, queued or
//! counted. On the WebDAV stand-in and on real Backpack nodes.

mod common;

use backpack_testkit::{CoordinatorProcess, LocalCluster, NodeKind};
use common::cluster::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One shard on two nodes of `kind`, and a coordinator with a 4 MiB `--max-body` beside
/// the default one.
fn setup(label: &str, kind: NodeKind) -> (LocalCluster, CoordinatorProcess, CoordinatorProcess) {
    let cluster = LocalCluster::start_with(bin(), label, 2, 2, kind).expect("start the cluster");
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    let coordinator = coordinator(&cluster, &["--size-flush", "200ms"]);
    let capped = cluster
        .start_coordinator(
            "coordinator-capped",
            &[
                "--max-body",
                "4mb",
                "--memory-body",
                "64kb",
                "--size-flush",
                "200ms",
            ],
        )
        .unwrap();
    (cluster, coordinator, capped)
}

/// `curl -T -` with `data` on its standard input (a pipe): the status and the answer.
fn curl_pipe(url: &str, data: &[u8]) -> (u16, String) {
    let mut curl = Command::new("curl")
        .args(["-sS", "-T", "-", "-w", "\n%{http_code}", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run curl");
    let mut stdin = curl.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let output = curl.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (answer, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), answer.to_string())
}

/// Python's `http.client` with `encode_chunked=True`, sending `size` bytes of `body_for`
/// in 10 000-byte pieces: the status.
fn python_chunked(port: u16, path: &str) -> u16 {
    let body = body_for(path);
    let script = format!(
        r#"
import http.client, sys
data = sys.stdin.buffer.read()
pieces = (data[i:i + 10000] for i in range(0, len(data), 10000))
conn = http.client.HTTPConnection("127.0.0.1", {port}, timeout=60)
conn.request("PUT", "{path}", body=pieces, encode_chunked=True)
print(conn.getresponse().status)
"#
    );
    let mut python = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    python.stdin.take().unwrap().write_all(&body).unwrap();
    let output = python.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn stored_anywhere(cluster: &LocalCluster, path: &str) -> bool {
    [1, 2].iter().any(|&n| cluster.node(n).file(path).is_some())
}

/// A raw chunked request for `path` with `body` as sent, on its own connection.
fn raw_chunked(port: u16, path: &str, body: &str) -> String {
    raw_exchange(
        port,
        format!("PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
            .as_bytes(),
        Duration::from_millis(500),
    )
}

fn streams_are_stored_with_their_length(kind: NodeKind, label: &str) {
    let (cluster, coordinator, capped) = setup(label, kind);
    let (status, answer) = curl_pipe(&coordinator.url("/pipe/small.txt"), b"hello, pipe\n");
    assert_eq!(status, 200, "{answer}");
    let shard = shard_of(&answer);
    assert_eq!(shard, "1");
    let holder = holders(&cluster, "/pipe/small.txt");
    assert_eq!(holder.len(), 1, "on one node, replication queued");
    assert_eq!(
        cluster.node(holder[0]).file("/pipe/small.txt").as_deref(),
        Some(&b"hello, pipe\n"[..])
    );

    // 50 MiB through a pipe: spooled, then stored byte-identical.
    let big = body_for("/pipe/big.bin")
        .into_iter()
        .cycle()
        .take(50 << 20)
        .collect::<Vec<u8>>();
    let (status, answer) = curl_pipe(&coordinator.url("/pipe/big.bin"), &big);
    assert_eq!(status, 200, "{answer}");
    let holder = holders(&cluster, "/pipe/big.bin");
    assert!(
        cluster.node(holder[0]).file("/pipe/big.bin") == Some(big.clone()),
        "50 MiB byte-identical on the node"
    );
    let items = cluster.queue_items(0);
    assert_eq!(items.len(), 2, "{items:?}");

    // Python's http.client, in pieces; in memory (default) and spooled (64 KiB cap).
    assert_eq!(python_chunked(coordinator.port, "/py/a.bin"), 200);
    assert_eq!(python_chunked(capped.port, "/py/b.bin"), 200);
    for path in ["/py/a.bin", "/py/b.bin"] {
        let holder = holders(&cluster, path);
        assert_eq!(cluster.node(holder[0]).file(path), Some(body_for(path)));
    }

    // Sizes count the real length.
    std::thread::sleep(Duration::from_millis(1500));
    let counted = shard_current(&cluster, "1");
    let expected = 12 + (50 << 20) + body_for("/py/a.bin").len() + body_for("/py/b.bin").len();
    assert!(counted >= expected as u64, "{counted} < {expected}");
}

#[test]
fn chunked_uploads_are_stored_on_the_stand_in() {
    streams_are_stored_with_their_length(NodeKind::WebDav, "chunked-webdav");
}

#[test]
fn chunked_uploads_are_stored_on_real_nodes() {
    streams_are_stored_with_their_length(NodeKind::Backpack, "chunked-real");
}

#[test]
fn malformed_cut_off_oversized_and_empty_streams_store_nothing() {
    let (cluster, coordinator, capped) = setup("chunked-refusals", NodeKind::WebDav);
    let port = coordinator.port;

    let answer = raw_chunked(port, "/bad/size", "zz\r\nhello\r\n0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("malformed chunk size"), "{answer}");
    let answer = raw_chunked(port, "/bad/lf", "5\nhello\n0\n\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = raw_chunked(port, "/bad/long", "3\r\nhello\r\n0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // Cut off mid-chunk: the client is gone; nothing is stored.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"PUT /bad/cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nonly a few bytes")
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let answer = read_until_quiet(&mut stream, Duration::from_millis(500));
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );

    // Past --max-body (4 MiB): 413, as soon as the stream passes it.
    let (status, answer) = curl_pipe(&capped.url("/bad/big"), &vec![b'b'; 5 << 20]);
    assert_eq!(status, 413, "{answer}");
    assert_eq!(python_chunked_big(capped.port, "/bad/big2"), 413);
    // A chunk that declares more than --max-body allows is answered at once, before any
    // of its data: the client never sends it, and must not wait out the body timeout.
    for declared in ["FFFFFFFFFFFFFFFF", "400001"] {
        let started = std::time::Instant::now();
        let answer = raw_exchange(
            capped.port,
            format!("PUT /bad/declared HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{declared}\r\n").as_bytes(),
            Duration::from_secs(3),
        );
        assert!(answer.starts_with("HTTP/1.1 413"), "{declared}: {answer}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{declared}: {:?}",
            started.elapsed()
        );
    }

    // An empty chunked body is refused like an empty upload.
    let answer = raw_chunked(port, "/bad/empty", "0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("empty"), "{answer}");

    // Other transfer codings, and both framings at once.
    let answer = raw_exchange(
        port,
        b"PUT /bad/gz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        Duration::from_millis(500),
    );
    assert!(answer.starts_with("HTTP/1.1 501"), "{answer}");
    let answer = raw_exchange(
        port,
        b"PUT /bad/both HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        Duration::from_millis(500),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    for path in [
        "/bad/size",
        "/bad/lf",
        "/bad/long",
        "/bad/cut",
        "/bad/big",
        "/bad/big2",
        "/bad/empty",
        "/bad/gz",
        "/bad/both",
    ] {
        assert!(!stored_anywhere(&cluster, path), "{path} was stored");
    }
    assert!(cluster.queue_is_empty(), "nothing queued");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(shard_current(&cluster, "1"), 0, "nothing counted");

    // A chunked body read to its end leaves the connection usable: two on one.
    let two = "PUT /ok/one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n\
               PUT /ok/two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n";
    let answers = raw_exchange(port, two.as_bytes(), Duration::from_millis(500));
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 2, "{answers}");

    // Trailers are read and ignored.
    let answer = raw_chunked(
        port,
        "/ok/trailers.txt",
        "5\r\nhello\r\n6;ext=1\r\n, you!\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let holder = holders(&cluster, "/ok/trailers.txt");
    assert_eq!(
        cluster.node(holder[0]).file("/ok/trailers.txt").as_deref(),
        Some(&b"hello, you!"[..])
    );
}

/// Python's http.client sending 5 MiB chunked to a coordinator with a 4 MiB limit.
fn python_chunked_big(port: u16, path: &str) -> u16 {
    let script = format!(
        r#"
import http.client
pieces = (b"x" * 65536 for _ in range(80))
conn = http.client.HTTPConnection("127.0.0.1", {port}, timeout=60)
try:
    conn.request("PUT", "{path}", body=pieces, encode_chunked=True)
    print(conn.getresponse().status)
except (BrokenPipeError, ConnectionResetError):
    print(conn.getresponse().status)
"#
    );
    let output = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}
