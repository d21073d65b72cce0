//! The write path: `PUT /<path>` stores the body on one node of a writable shard, queues
//! replication to the shard's other nodes, and answers `{"shard_id": "<id>"}`.
//!
//! 1. Validate the request (before reading any of the body, so `100 Continue` is only
//!    sent for uploads we will take): what no Backpack node can store is refused here
//!    (`node_key`), never sent to a node and never counted against one.
//! 2. Choose a writable shard, weighted by free space (`placement`).
//! 3. Try its nodes in random order (recently failed ones last); the first that answers
//!    201 or 204 has the file. If every node of the shard fails, try another shard.
//! 4. Push a replication item for every other node of the shard to every Redis; at least
//!    one must take them, or the answer is 503: a 200 means the file is on a node *and*
//!    its replication is queued.
//! 5. Count the bytes toward the shard's size (applied to ZooKeeper in batches).

use super::copies;
use super::node_key;
use super::node_put::{node_failed, node_took_it, put_to_node, NodeFailure};
use super::outcome::{body_refusal, refuse, replicate, too_large, Refusal, Stored, UploadContext};
use super::payload::{CollectLimits, UploadBody};
use super::placement;
use super::Coordinator;
use crate::cluster::snapshot::{Shard, Snapshot};
use crate::http::{Body, Framing, Request, Response};
use crate::log_line;
use std::time::Instant;

/// Checks the request before any of its body is read: its declared length (None for a
/// chunked body, whose length is known only at its end).
fn validate(coordinator: &Coordinator, request: &Request) -> Result<Option<u64>, Refusal> {
    let declared = match request.framing {
        Framing::Length(length) => Some(length),
        Framing::Chunked => None,
        Framing::Absent => {
            return Err(refuse(
                411,
                "Content-Length or Transfer-Encoding: chunked is required",
            ))
        }
    };
    if declared.is_some_and(|length| length > coordinator.settings.max_body) {
        return Err(too_large(coordinator.settings.max_body));
    }
    node_key::check_target(&request.target).map_err(|why| refuse(400, why))?;
    if declared == Some(0) {
        return Err(empty());
    }
    Ok(declared)
}

/// `{"shard_id":"<id>"}`, as `Response::json` would print it, written directly: every
/// upload answers this.
fn stored_answer(shard: &str) -> Response {
    let mut body = Vec::with_capacity(24 + shard.len());
    body.extend_from_slice(b"{\"shard_id\":");
    crate::js_json::push_string(&mut body, shard);
    body.extend_from_slice(b"}\n");
    Response::plain(200, "application/json", body)
}

fn empty() -> Refusal {
    refuse(
        400,
        "the body is empty: a Backpack node cannot store an empty file",
    )
}

/// `PUT /<path>`: one log line and one counter per upload, whatever the outcome.
pub fn handle(coordinator: &Coordinator, request: &Request, body: &mut Body<'_>) -> Response {
    let started = Instant::now();
    // The body's length: as declared, or as counted once a chunked body is read.
    let mut length = request.content_length();
    let outcome = validate(coordinator, request)
        .and_then(|declared| store(coordinator, request, declared, started, body, &mut length));
    let elapsed = started.elapsed();
    let ms = elapsed.as_secs_f64() * 1000.0;
    let status = outcome
        .as_ref()
        .map_or_else(|refusal| refusal.status, |_| 200);
    coordinator.record_upload(status, length, elapsed);
    match outcome {
        Ok(stored) => {
            if coordinator.settings.log_uploads {
                log_line!(
                    "PUT {} {length} bytes -> shard {} node {} in {ms:.1} ms: 200",
                    request.target,
                    stored.shard,
                    stored.node
                );
            }
            stored_answer(&stored.shard)
        }
        Err(refusal) => {
            log_line!(
                "PUT {} {length} bytes in {ms:.1} ms: {} {}",
                request.target,
                refusal.status,
                refusal.message
            );
            Response::error(refusal.status, &refusal.message)
        }
    }
}

/// Choose a shard, try its nodes, queue the replication, count the bytes; another shard
/// when every node of one failed.
fn store(
    coordinator: &Coordinator,
    request: &Request,
    declared: Option<u64>,
    started: Instant,
    client_body: &mut Body<'_>,
    length_seen: &mut u64,
) -> Result<Stored, Refusal> {
    let Some(snapshot) = coordinator.snapshot.current() else {
        return Err(refuse(503, "the configuration is not loaded yet"));
    };
    let mut candidates: Vec<&Shard> = snapshot.writable_shards().collect();
    if candidates.is_empty() {
        return Err(refuse(503, "no writable shard"));
    }
    let settings = &coordinator.settings;
    if settings.sync_copies > 1 {
        candidates = copies::shards_with_enough_nodes(coordinator, candidates)?;
    }
    let (mut body, length) = match declared {
        Some(length) => {
            let in_memory = (length <= settings.memory_body)
                .then(|| coordinator.memory.reserve(length))
                .flatten();
            let body = UploadBody::take(client_body, length, in_memory, &settings.spool_dir)
                .map_err(body_refusal)?;
            (body, length)
        }
        None => {
            let limits = CollectLimits {
                max_body: settings.max_body,
                memory_body: settings.memory_body,
            };
            UploadBody::collect(
                client_body,
                limits,
                &coordinator.memory,
                &settings.spool_dir,
            )
            .map_err(body_refusal)?
        }
    };
    *length_seen = length;
    if length == 0 {
        return Err(empty());
    }
    let upload = &UploadContext {
        target: &request.target,
        length,
        started,
        home: request.home,
    };

    if settings.sync_copies > 1 {
        return copies::store_on_many(coordinator, &snapshot, candidates, upload, &mut body);
    }
    let mut failures = Vec::new();
    for _ in 0..settings.shard_attempts {
        let Some(shard) = placement::choose(&candidates, &mut rand::rng()) else {
            break;
        };
        if let Some(node) = try_nodes(
            coordinator,
            &snapshot,
            shard,
            upload,
            &mut body,
            &mut failures,
        )? {
            replicate(&snapshot, shard, std::slice::from_ref(&node), upload)?;
            coordinator.sizes.add(&shard.id, upload.length);
            return Ok(Stored {
                shard: shard.id.clone(),
                node,
            });
        }
        let failed_id = shard.id.clone();
        candidates.retain(|candidate| candidate.id != failed_id);
    }
    Err(refuse(
        503,
        format!("no node could store the file ({})", failures.join("; ")),
    ))
}

/// The shard's nodes in turn (recently failed ones last) until one stores the file: the
/// node that did, None when none did. Node health and node metrics are kept here.
fn try_nodes(
    coordinator: &Coordinator,
    snapshot: &Snapshot,
    shard: &Shard,
    upload: &UploadContext<'_>,
    body: &mut UploadBody<'_, '_, '_>,
    failures: &mut Vec<String>,
) -> Result<Option<String>, Refusal> {
    for node_id in coordinator.nodes.order(&shard.nodes) {
        let send = |put| body.attempt(put, node_took_it).map_err(NodeFailure::Body);
        match put_to_node(coordinator, snapshot, &node_id, upload, send) {
            Ok(()) => {
                coordinator.nodes.succeeded(&node_id);
                return Ok(Some(node_id));
            }
            Err(NodeFailure::Node(why)) => {
                failures.push(node_failed(coordinator, shard, &node_id, upload, &why));
            }
            Err(NodeFailure::Body(err)) => return Err(body_refusal(err)),
        }
    }
    Ok(None)
}
