//! `--upload-keys`: every upload carries a token signed by a key in force, checked from
//! the request head before the body is read. A hostile suite on real Backpack nodes,
//! each case with its exact answer and nothing stored, queued or counted against a node.

mod common;

use backpack_testkit::{metrics, CoordinatorProcess, LocalCluster, NodeKind};
use common::cluster::*;
use common::tokens::*;
use std::collections::BTreeSet;
use std::time::Duration;

/// One request and the answer it must get.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    /// The `reason` it is counted under in `uploads_refused_auth_total`, if any.
    reason: Option<&'static str>,
}

fn request(target: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "PUT {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A chunked upload of `pieces` chunks of `size` bytes.
fn chunked(target: &str, headers: &str, pieces: usize, size: usize) -> Vec<u8> {
    let mut bytes = format!(
        "PUT {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..pieces {
        bytes.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        bytes.extend(std::iter::repeat_n(b'c', size));
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn case(name: &'static str, request: Vec<u8>, status: u16, reason: Option<&'static str>) -> Case {
    Case {
        name,
        request,
        status,
        reason,
    }
}

/// Status, head and body of the answer to `request`.
fn exchange(port: u16, request: &[u8]) -> (u16, String, String) {
    let answer = raw_exchange(port, request, Duration::from_secs(5));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The keys a real node's index holds: one per stored file.
fn stored_keys(cluster: &LocalCluster) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for node in &cluster.nodes {
        let mut redis = node
            .index_redis()
            .expect("a real node")
            .connection()
            .unwrap();
        let all: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis).unwrap();
        keys.extend(
            all.into_iter()
                .filter(|key| key != "files" && key != "files_counter"),
        );
    }
    keys
}

fn start(label: &str) -> (LocalCluster, std::path::PathBuf, [CoordinatorProcess; 2]) {
    let cluster = LocalCluster::start_with(bin(), label, 1, 2, NodeKind::Backpack)
        .expect("start the cluster");
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    let keys = cluster.sandbox.path().join("upload-keys");
    write_keys(&keys, &[&TestKey::new("k1", 1), &TestKey::new("k2", 2)]);
    let path = keys.to_str().unwrap();
    let first = coordinator(&cluster, &["--upload-keys", path]);
    let second = cluster
        .start_coordinator("second", &["--upload-keys", path, "--max-body", "2kb"])
        .unwrap();
    (cluster, keys, [first, second])
}

#[test]
fn hostile_tokens_get_their_exact_answer_and_store_nothing() {
    let (cluster, _keys, [first, second]) = start("tokens-hostile");
    let k1 = TestKey::new("k1", 1);
    let k9 = TestKey::new("k9", 9);
    let body = vec![b'x'; 100];
    let good = k1.sign(for_key("/h/a.jpg", 1000));
    let (payload, mac) = good.split_once('.').unwrap();
    let forged_payload = k1.sign(for_key("/h/other.jpg", 1000));
    let forged_payload = forged_payload.split_once('.').unwrap().0;
    let mut flipped = mac.as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let prefix = k1.sign(for_prefix("/p", 1000));
    let grant_only_kid = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(br#"{"kid":"k1"}"#);
        // A correct MAC over a payload that is no grant.
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&k1.secret).unwrap();
        mac.update(payload.as_bytes());
        format!("{payload}.{}", b64.encode(mac.finalize().into_bytes()))
    };
    let mut expired = for_key("/h/expired.jpg", 1000);
    expired.exp = unix_now() - 60;
    let mut lenient = for_key("/h/leeway.jpg", 1000);
    lenient.exp = unix_now() - 10;
    let mut exact = for_key("/h/exact.jpg", 1000);
    exact.len = Some(100);
    let exact = k1.sign(exact);
    let root = k1.sign(for_prefix("/", 10_000));
    #[rustfmt::skip]
    let cases = vec![
        case("no token", request("/h/r1.jpg", "", &body), 401, Some("missing")),
        case("basic auth", request("/h/r2.jpg", "Authorization: Basic dXNlcjpwYXNz\r\n", &body), 401, Some("malformed")),
        case("bearer without token", request("/h/r3.jpg", "Authorization: Bearer\r\n", &body), 401, Some("malformed")),
        case("no dot", request("/h/a.jpg", &bearer(&good.replace('.', "")), &body), 401, Some("malformed")),
        case("truncated", request("/h/a.jpg", &bearer(&good[..good.len() - 10]), &body), 401, Some("malformed")),
        case("payload only", request("/h/a.jpg", &bearer(&format!("{payload}.")), &body), 401, Some("malformed")),
        case("not base64", request("/h/a.jpg", &bearer("!!!!.????"), &body), 401, Some("malformed")),
        case("signed, but no grant", request("/h/a.jpg", &bearer(&grant_only_kid), &body), 401, Some("malformed")),
        case("12 KB token", request("/h/a.jpg", &bearer(&"A".repeat(12_000)), &body), 401, Some("malformed")),
        case("60 KB token", request("/h/a.jpg", &bearer(&"A".repeat(60_000)), &body), 431, None),
        case("60 KB token in the query", request(&format!("/h/a.jpg?token={}", "A".repeat(60_000)), "", &body), 431, None),
        case("tampered payload", request( "/h/other.jpg", &bearer(&format!("{forged_payload}.{mac}")), &body, ), 403, Some("bad_signature")),
        case("tampered MAC", request("/h/a.jpg", &bearer(&format!("{payload}.{flipped}")), &body), 403, Some("bad_signature")),
        case("unknown key id", request( "/h/a.jpg", &bearer(&k9.sign(for_key("/h/a.jpg", 1000))), &body, ), 403, Some("unknown_key")),
        case("expired", request("/h/expired.jpg", &bearer(&k1.sign(expired)), &body), 403, Some("expired")),
        case("a token for another key", request("/h/b.jpg", &bearer(&good), &body), 403, Some("other_key")),
        case("a query string the token lacks", request("/h/a.jpg?v=2", &bearer(&good), &body), 403, Some("other_key")),
        case("prefix escape ..", request("/p/../r4.jpg", &bearer(&prefix), &body), 403, Some("other_key")),
        case("prefix escape .", request("/p/./r5.jpg", &bearer(&prefix), &body), 403, Some("other_key")),
        case("prefix escape //", request("/p//r6.jpg", &bearer(&prefix), &body), 403, Some("other_key")),
        case("prefix escape %2e%2e", request("/p/%2e%2e/r7.jpg", &bearer(&prefix), &body), 403, Some("other_key")),
        case("prefix escape %2F", request("/p/..%2Fr8.jpg", &bearer(&prefix), &body), 403, Some("other_key")),
        case("prefix escape %00", request("/p/r9.jpg%00.txt", &bearer(&prefix), &body), 403, Some("other_key")),
        case("a longer name starting with the prefix", request("/pp/r10.jpg", &bearer(&prefix), &body), 403, Some("other_key")),
        case("declared over the limit", request("/h/a.jpg", &bearer(&good), &[b'x'; 1001]), 403, Some("too_large")),
        case("streamed over the limit", chunked("/h/a.jpg", &bearer(&good), 3, 600), 413, Some("too_large")),
        case("another length than the token's", request("/h/exact.jpg", &bearer(&exact), &[b'x'; 99]), 403, Some("length")),
        case("the token's length, chunked", chunked("/h/exact.jpg", &bearer(&exact), 1, 100), 403, Some("length")),
        case("header and query", request(&format!("/h/a.jpg?token={good}"), &bearer(&good), &body), 400, Some("ambiguous")),
        case("two token parameters", request(&format!("/h/a.jpg?token={good}&token={good}"), "", &body), 400, Some("ambiguous")),
        case("two Authorization headers", request( "/h/a.jpg", &format!("{}{}", bearer(&good), bearer(&good)), &body, ), 400, Some("ambiguous")),
        case("framing comes first", b"PUT /h/r11.jpg HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), 411, None),
        case("key rules come after the token", request("/files", &bearer(&root), &body), 400, None),
        case("an empty body after the token", request("/h/a.jpg", &bearer(&good), b""), 400, None),
    ];
    assert!(cases.len() >= 25);
    let before = stored_keys(&cluster);
    assert!(before.is_empty(), "{before:?}");
    for case in &cases {
        let (status, head, body) = exchange(first.port, &case.request);
        assert_eq!(status, case.status, "{}: {head}\n{body}", case.name);
        let error: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{}: a JSON error, got {body}", case.name));
        assert!(error["error"].is_string(), "{}: {body}", case.name);
        if status == 401 {
            assert!(
                head.contains("\r\nWWW-Authenticate: Bearer"),
                "{}: {head}",
                case.name
            );
        }
    }
    // --max-body still holds under a token that allows more.
    let big = k1.sign(for_key("/h/big.jpg", 10_000));
    let (status, _, _) = exchange(
        second.port,
        &request("/h/big.jpg", &bearer(&big), &[b'x'; 5000]),
    );
    assert_eq!(status, 413, "--max-body after the token");

    assert_eq!(stored_keys(&cluster), before, "a refused upload was stored");
    let log = first.log();
    assert!(log.contains("token=REDACTED"), "{log}");
    assert!(!log.contains(mac), "a token in the log:\n{log}");
    assert!(
        cluster.queue_items(0).is_empty(),
        "{:?}",
        cluster.queue_items(0)
    );
    let text = metrics::get_text(&first.url("/metrics")).unwrap();
    assert_eq!(
        metrics::family_sum(&text, "backpack_coordinator_node_failures_total"),
        0.0
    );
    for reason in [
        "missing",
        "malformed",
        "bad_signature",
        "unknown_key",
        "expired",
        "other_key",
        "too_large",
        "length",
        "ambiguous",
    ] {
        let expected = cases
            .iter()
            .filter(|case| case.reason == Some(reason))
            .count();
        let counted = metrics::sample(
            &text,
            &format!("backpack_coordinator_uploads_refused_auth_total{{reason=\"{reason}\"}}"),
        );
        assert_eq!(counted, Some(expected as f64), "{reason}\n{text}");
    }

    // What a token allows is stored, under the key without the token parameter, on either
    // coordinator: tokens are not bound to one.
    let accepted = [
        (first.port, "/h/a.jpg".to_string(), bearer(&good)),
        (
            first.port,
            format!(
                "/h/q.jpg?v=2&token={}",
                k1.sign(for_key("/h/q.jpg?v=2", 1000))
            ),
            String::new(),
        ),
        (
            first.port,
            "/p/deeper/d.jpg".to_string(),
            format!("Authorization: bearer {prefix}\r\n"),
        ),
        (
            first.port,
            "/h/leeway.jpg".to_string(),
            bearer(&k1.sign(lenient)),
        ),
        (first.port, "/h/exact.jpg".to_string(), bearer(&exact)),
        (second.port, "/p/second.jpg".to_string(), bearer(&prefix)),
        (
            second.port,
            "/h/k2.jpg".to_string(),
            bearer(&TestKey::new("k2", 2).sign(for_key("/h/k2.jpg", 1000))),
        ),
    ];
    for (port, target, headers) in &accepted {
        let (status, head, answer) = exchange(*port, &request(target, headers, &body));
        assert_eq!(status, 200, "{target}: {head}\n{answer}");
    }
    let stored: BTreeSet<String> = stored_keys(&cluster);
    let expected: BTreeSet<String> = [
        "h/a.jpg",
        "h/q.jpg?v=2",
        "p/deeper/d.jpg",
        "h/leeway.jpg",
        "h/exact.jpg",
        "p/second.jpg",
        "h/k2.jpg",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(stored, expected);
    let holder = (1..=2).find(|n| cluster.node(*n).file("/h/q.jpg?v=2").is_some());
    assert!(holder.is_some(), "stored under the key without its token");
    let items = cluster.queue_items(0);
    assert_eq!(items.len(), expected.len(), "{items:?}");
    assert!(
        items.iter().all(|item| !item.contains("token")),
        "{items:?}"
    );
}
