//! `--sync-copies K`: an upload is acknowledged only once K nodes of one shard stored it,
//! so a disk that dies right after the answer loses no acknowledged file.
//!
//! The body is read from the client once (into memory, or its spool file for a large
//! body) and then sent to K nodes of the chosen shard at the same time: the upload's own
//! coroutine sends to the first, scoped helper coroutines (which borrow the body) to the
//! others. If some fail, the shard's untried nodes get the missing copies, again at once.
//! A shard where fewer than K nodes took the file is given up: what its nodes took is
//! neither counted nor queued, and the upload tries another shard. The shard's remaining
//! nodes get ordinary queue items with every storing node in `from`.

use super::node_put::{node_failed, put_to_node, NodeFailure};
use super::outcome::{body_refusal, refuse, replicate, Refusal, Stored, UploadContext};
use super::payload::{UploadBody, WholeBody};
use super::placement;
use super::Coordinator;
use crate::cluster::snapshot::{Shard, Snapshot};
use crate::log_line;

/// The writable shards that have at least K nodes. A shard with fewer is logged the
/// first time it is passed over; none left is a 503 that says why.
pub(super) fn shards_with_enough_nodes<'s>(
    coordinator: &Coordinator,
    candidates: Vec<&'s Shard>,
) -> Result<Vec<&'s Shard>, Refusal> {
    let wanted = coordinator.settings.sync_copies;
    let (able, small): (Vec<&Shard>, Vec<&Shard>) = candidates
        .into_iter()
        .partition(|shard| shard.nodes.len() >= wanted);
    for shard in small {
        if coordinator.small_shards.lock().insert(shard.id.clone()) {
            log_line!(
                "shard {} has {} node(s), fewer than --sync-copies {wanted}: it gets no uploads",
                shard.id,
                shard.nodes.len()
            );
        }
    }
    if able.is_empty() {
        coordinator.metrics.too_few_nodes();
        return Err(refuse(
            503,
            format!("no writable shard has {wanted} nodes to store {wanted} copies (--sync-copies {wanted})"),
        ));
    }
    Ok(able)
}

/// Stores the body on K nodes of one shard, trying up to `--shard-attempts` shards.
pub(super) fn store_on_many(
    coordinator: &Coordinator,
    snapshot: &Snapshot,
    mut candidates: Vec<&Shard>,
    upload: &UploadContext<'_>,
    body: &mut UploadBody<'_, '_, '_>,
) -> Result<Stored, Refusal> {
    let wanted = coordinator.settings.sync_copies;
    let whole = body.whole().map_err(body_refusal)?;
    let mut failures = Vec::new();
    for _ in 0..coordinator.settings.shard_attempts {
        let Some(shard) = placement::choose(&candidates, &mut rand::rng()) else {
            break;
        };
        let stored = copies_on_shard(coordinator, snapshot, shard, upload, whole, &mut failures);
        if stored.len() >= wanted {
            replicate(snapshot, shard, &stored, upload)?;
            coordinator.sizes.add(&shard.id, upload.length);
            coordinator.metrics.stored_copies();
            return Ok(Stored {
                shard: shard.id.clone(),
                node: stored.join(","),
            });
        }
        let failed_id = shard.id.clone();
        candidates.retain(|candidate| candidate.id != failed_id);
    }
    coordinator.metrics.too_few_nodes();
    Err(refuse(
        503,
        format!(
            "no shard could store {wanted} copies (--sync-copies {wanted}): {}",
            failures.join("; ")
        ),
    ))
}

/// Sends the body to the shard's nodes (recently failed ones last), K at once, then the
/// untried ones for the copies still missing: the nodes that stored it.
fn copies_on_shard(
    coordinator: &Coordinator,
    snapshot: &Snapshot,
    shard: &Shard,
    upload: &UploadContext<'_>,
    whole: WholeBody<'_>,
    failures: &mut Vec<String>,
) -> Vec<String> {
    let wanted = coordinator.settings.sync_copies;
    let mut untried = coordinator.nodes.order(&shard.nodes).into_iter();
    let mut stored = Vec::new();
    while stored.len() < wanted {
        let round: Vec<String> = untried.by_ref().take(wanted - stored.len()).collect();
        if round.is_empty() {
            break;
        }
        for (node_id, outcome) in put_at_once(coordinator, snapshot, &round, upload, whole) {
            match outcome {
                Ok(()) => {
                    coordinator.nodes.succeeded(&node_id);
                    stored.push(node_id);
                }
                Err(why) => failures.push(node_failed(coordinator, shard, &node_id, upload, &why)),
            }
        }
    }
    stored
}

/// PUTs the body to every node of `round` at the same time; each node's outcome.
fn put_at_once(
    coordinator: &Coordinator,
    snapshot: &Snapshot,
    round: &[String],
    upload: &UploadContext<'_>,
    whole: WholeBody<'_>,
) -> Vec<(String, Result<(), String>)> {
    let put = |node_id: &str| {
        let send = |request| Ok(whole.send(request));
        let outcome = put_to_node(coordinator, snapshot, node_id, upload, send);
        let outcome = outcome.map_err(|failure| match failure {
            NodeFailure::Node(why) => why,
            // A whole body does not break off mid-way.
            NodeFailure::Body(err) => body_refusal(err).message,
        });
        (node_id.to_string(), outcome)
    };
    let Some((first, others)) = round.split_first() else {
        return Vec::new();
    };
    if others.is_empty() {
        return vec![put(first)];
    }
    may::coroutine::scope(|scope| {
        let (results, inbox) = may::sync::mpsc::channel();
        for node_id in others {
            let (results, put) = (results.clone(), &put);
            may::go!(scope, move || {
                let _ = results.send(put(node_id));
            });
        }
        drop(results);
        let mut outcomes = vec![put(first)];
        // No timeout (see the queue's group commit for why): each helper either sends
        // or, short of a panic, cannot end; a panicking one drops its sender, so once
        // all are gone the receive fails instead of waiting.
        while outcomes.len() < round.len() {
            match inbox.recv() {
                Ok(outcome) => outcomes.push(outcome),
                Err(_all_helpers_gone) => break,
            }
        }
        outcomes
    })
}
