//! Entry points for fuzzing: what the coordinator does with bytes from clients (request
//! heads, paths) and with JSON from ZooKeeper and Redis (cluster state, queue items).
//! Each must never panic, whatever the input. `fuzz/` runs them under libFuzzer
//! (`cargo fuzz`); `tests/fuzz_corpus.rs` replays the saved corpus in every test run.

use crate::http::request;
use crate::replication_queue::{self, Item};
use crate::state::queue::QueueInfo;
use crate::state::{servers, shard_size, shards};
use crate::upload_auth::{grant_json, token::Grant};

/// A request head as the connection loop parses and validates it.
pub fn request_head(data: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut headers);
    if let Ok(httparse::Status::Complete(length)) = parsed.parse(data) {
        if let Ok(request) = request::from_parsed(&parsed, &data[..length]) {
            let _ = crate::coordinator::upload::node_key::check_target(request.target());
            let _ = (request.path(), request.content_length());
            let _ = (request.method(), request.header("authorization"));
        }
    }
}

/// A node's bytes read as each kind of cluster state; what parses must survive a rewrite.
pub fn cluster_state(data: &[u8]) {
    let Ok(value) = crate::state::parse_object("/fuzz", data) else {
        return;
    };
    let _ = servers::parse("/fuzz", &value);
    let _ = shards::parse("/fuzz", &value);
    let _ = shard_size::parse("/fuzz", &value);
    if let Ok(queue) = QueueInfo::parse("/fuzz", &value) {
        let again = QueueInfo::parse("/fuzz", &queue.to_value());
        assert_eq!(
            again.ok(),
            Some(queue),
            "a queue node must read back as written"
        );
    }
    let text = crate::js_json::to_compact(&value);
    let reread: serde_json::Value = serde_json::from_str(&text).expect("our JSON parses");
    assert_eq!(
        crate::js_json::to_compact(&reread),
        text,
        "JavaScript order is stable"
    );
    let mut doc = value.clone();
    let _ = shards::set_enabled(&mut doc, "1", true);
    let _ = shard_size::add_current("/fuzz", &mut doc, 1);
}

/// A queue item as a replicator reads it; what parses must be written back identically.
pub fn queue_item(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(item) = Item::parse(text) {
        let written = replication_queue::item(&item.from, &item.to, &item.path);
        assert_eq!(
            Item::parse(&written).ok(),
            Some(item),
            "an item reads back as written"
        );
        let _ = replication_queue::lock_path("/backpack", "backpack-queue", text);
    }
}

/// A token's payload as the coordinator reads it (before its MAC is checked, to find the
/// key id): the grant reader takes exactly what `serde_json` takes for `Grant`, with the
/// same values. One difference is allowed: `-0` is a number to `serde_json` and not to
/// the grant reader, which takes whole numbers without a sign.
pub fn upload_grant(data: &[u8]) {
    let ours = grant_json::parse(data).map(|grant| Grant::from(&grant));
    let general = serde_json::from_slice::<Grant>(data);
    match (ours, general) {
        (Ok(ours), Ok(general)) => assert_eq!(ours, general, "the same grant"),
        (Err(_), Err(_)) => {}
        (Ok(ours), Err(err)) => panic!("the grant reader took {ours:?}, serde_json: {err}"),
        (Err(why), Ok(general)) => assert!(
            data.windows(2).any(|pair| pair == b"-0"),
            "the grant reader refused {general:?}: {why}"
        ),
    }
}
