//! Bodies and connections through a coordinator: a 200 MiB upload in bounded memory,
//! concurrent bodies within `--memory-budget`, keep-alive and pipelining, and the status
//! code of every kind of answer.

mod common;

use backpack_testkit::{DelayProxy, LocalCluster};
use common::cluster::*;
use std::io::Write;
use std::time::Duration;

/// A reader that makes `len` bytes without holding them.
struct Pattern {
    left: u64,
}

impl std::io::Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 251) as u8);
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn a_200_mib_upload_keeps_memory_bounded() {
    let mut cluster = example_cluster("big-upload");
    let coordinator = coordinator(&cluster, &[]);
    let size: u64 = 200 << 20;
    let response = client()
        .put(&coordinator.url("/big/200m.bin"))
        .header("Content-Length", size.to_string())
        .send(ureq::SendBody::from_owned_reader(Pattern { left: size }))
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let peak = backpack_testkit::measure::peak_rss_kib(coordinator.process.pid().unwrap());
    eprintln!("200 MiB upload: coordinator peak RSS {peak} KiB");
    assert!(peak < 64 * 1024, "coordinator peak RSS {peak} KiB");
    let held = holders(&cluster, "/big/200m.bin");
    assert_eq!(held.len(), 1);
    let path = cluster
        .node(held[0])
        .files_dir()
        .unwrap()
        .join("big/200m.bin");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    // A failing first node costs nothing: the spool takes over. Stop one node of every
    // shard... and all shards' second nodes answer.
    for id in [1, 2, 3] {
        cluster.node_mut(id).stop();
    }
    let response = client()
        .put(&coordinator.url("/big/second.bin"))
        .header("Content-Length", (8u64 << 20).to_string())
        .send(ureq::SendBody::from_owned_reader(Pattern { left: 8 << 20 }))
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let held = holders(&cluster, "/big/second.bin");
    assert!(held.len() == 1 && held[0] >= 4, "{held:?}");
    assert_eq!(
        std::fs::read_dir(&coordinator.dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.path().extension().is_none_or(|x| x != "log"))
                    .unwrap_or(false)
            })
            .count(),
        0,
        "no spool file left"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn keep_alive_and_pipelining() {
    let cluster = example_cluster("keep-alive");
    let coordinator = coordinator(&cluster, &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", coordinator.port)).unwrap();
    for i in 0..20 {
        let request = format!("PUT /ka/{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
        stream.write_all(request.as_bytes()).unwrap();
        let answer = read_one_response(&mut stream);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "request {i}: {answer}"
        );
    }
    let pipelined = "PUT /pl/1 HTTP/1.1\r\nContent-Length: 1\r\n\r\naPUT /pl/2 HTTP/1.1\r\nContent-Length: 1\r\n\r\nbGET /stats HTTP/1.1\r\n\r\n";
    let answers = raw_exchange(
        coordinator.port,
        pipelined.as_bytes(),
        Duration::from_millis(700),
    );
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 3, "{answers}");
    let stats_at = answers.find("processed_uploads").unwrap();
    assert!(
        answers[..stats_at].matches("shard_id").count() == 2,
        "answers in order: {answers}"
    );
    assert_eq!(holders(&cluster, "/pl/2").len(), 1);
}

/// Reads one response with a Content-Length body.
fn read_one_response(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "connection closed");
        bytes.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&bytes).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[test]
fn answers_have_honest_codes() {
    let cluster = example_cluster("answers");
    let coordinator = coordinator(&cluster, &["--max-body", "1kb"]);
    let port = coordinator.port;
    let ask = |request: &str| raw_exchange(port, request.as_bytes(), Duration::from_millis(500));
    let cases = [
        ("GET /nope HTTP/1.1\r\n\r\n", "404 Not Found"),
        ("DELETE /x HTTP/1.1\r\n\r\n", "405 Method Not Allowed"),
        ("PUT /x HTTP/1.1\r\n\r\n", "411 Length Required"),
        (
            "PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "400 Bad Request",
        ),
        (
            "PUT /x HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            "501 Not Implemented",
        ),
        (
            "PUT /x HTTP/1.1\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n",
            "413 Payload Too Large",
        ),
        (
            "PUT /a/../b HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            "400 Bad Request",
        ),
        (
            "PUT /a/%2E%2e/b HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            "400 Bad Request",
        ),
        (
            "PUT /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            "400 Bad Request",
        ),
        (
            "PUT /photos/ HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            "400 Bad Request",
        ),
    ];
    for (request, status) in cases {
        let answer = ask(request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{request:?} -> {answer}"
        );
        assert!(
            answer.contains("Content-Type: application/json"),
            "{answer}"
        );
        assert!(answer.contains(r#"{"error":""#), "{answer}");
    }
    assert!(ask("DELETE /x HTTP/1.1\r\n\r\n").contains("Allow: GET, HEAD, PUT\r\n"));
    let long = format!(
        "PUT /{} HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
        "a".repeat(1100)
    );
    assert!(ask(&long).starts_with("HTTP/1.1 400 "));
    let head = ask("HEAD /stats HTTP/1.1\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"),
        "HEAD has no body: {head}"
    );
    // No shard writable: 503.
    for shard in ["1", "2", "3"] {
        cluster
            .admin("backpack-coordinator-disable-shard", &[shard])
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, answer) = put(&client(), &coordinator.url("/x"), b"x");
    assert_eq!(
        (status, answer.as_str()),
        (503, "{\"error\":\"no writable shard\"}\n")
    );
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
    let coordinator = coordinator(&cluster, &["--memory-budget", "2mb"]);
    let gauge = "backpack_coordinator_memory_body_bytes";
    let bytes_held = || scrape_metrics(&coordinator.url(""))[gauge];
    let body: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let uploads: Vec<_> = (0..12)
        .map(|i| {
            let (url, body) = (coordinator.url(&format!("/budget/{i}")), body.clone());
            std::thread::spawn(move || put(&client(), &url, &body))
        })
        .collect();
    // All twelve wait on the slow node now, their bodies read.
    std::thread::sleep(Duration::from_millis(800));
    let held = bytes_held();
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
    assert_eq!(bytes_held(), 0.0);
}
