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

use super::context::{body_refusal, refuse, Refusal, Stored, Upload};
use super::node_put::{put_to_node, NodeFailure};
use super::payload::{UploadBody, WholeBody};
use super::placement;
use super::replicate::replicate;
use super::Uploads;
use crate::cluster::snapshot::{Shard, Snapshot};
use crate::log_line;

impl Uploads {
    /// The writable shards that have at least K nodes. A shard with fewer is logged the
    /// first time it is passed over; none left is a 503 that says why.
    pub(super) fn shards_with_enough_nodes<'s>(
        &self,
        candidates: Vec<&'s Shard>,
    ) -> Result<Vec<&'s Shard>, Refusal> {
        let wanted = self.settings.sync_copies;
        let (able, small): (Vec<&Shard>, Vec<&Shard>) = candidates
            .into_iter()
            .partition(|shard| shard.nodes.len() >= wanted);
        for shard in small {
            if self.small_shards.lock().insert(shard.id.clone()) {
                log_line!(
                    "shard {} has {} node(s), fewer than --sync-copies {wanted}: it gets no uploads",
                    shard.id,
                    shard.nodes.len()
                );
            }
        }
        if able.is_empty() {
            self.events.too_few_nodes();
            return Err(refuse(
                503,
                format!("no writable shard has {wanted} nodes to store {wanted} copies (--sync-copies {wanted})"),
            ));
        }
        Ok(able)
    }

    /// Stores the body on K nodes of one shard, trying up to `--shard-attempts` shards.
    pub(super) fn store_on_many(
        &self,
        snapshot: &Snapshot,
        mut candidates: Vec<&Shard>,
        upload: &mut Upload<'_>,
        body: &mut UploadBody<'_, '_, '_>,
    ) -> Result<Stored, Refusal> {
        let wanted = self.settings.sync_copies;
        let whole = body.whole().map_err(body_refusal)?;
        for _ in 0..self.settings.shard_attempts {
            let Some(shard) = placement::choose(&candidates, &mut rand::rng()) else {
                break;
            };
            let stored = self.copies_on_shard(snapshot, shard, upload, whole);
            if stored.len() >= wanted {
                replicate(snapshot, shard, &stored, upload)?;
                self.sizes.add(&shard.id, upload.length);
                self.events.stored_copies();
                return Ok(Stored {
                    shard: shard.id.clone(),
                    node: stored.join(","),
                });
            }
            let failed_id = shard.id.clone();
            candidates.retain(|candidate| candidate.id != failed_id);
        }
        self.events.too_few_nodes();
        Err(refuse(
            503,
            format!(
                "no shard could store {wanted} copies (--sync-copies {wanted}): {}",
                upload.failures.join("; ")
            ),
        ))
    }

    /// Sends the body to the shard's nodes (recently failed ones last), K at once, then
    /// the untried ones for the copies still missing: the nodes that stored it.
    fn copies_on_shard(
        &self,
        snapshot: &Snapshot,
        shard: &Shard,
        upload: &mut Upload<'_>,
        whole: WholeBody<'_>,
    ) -> Vec<String> {
        let wanted = self.settings.sync_copies;
        let mut untried = self.nodes.order(&shard.nodes).into_iter();
        let mut stored = Vec::new();
        while stored.len() < wanted {
            let round: Vec<String> = untried.by_ref().take(wanted - stored.len()).collect();
            if round.is_empty() {
                break;
            }
            for (node_id, outcome) in self.put_at_once(snapshot, &round, upload, whole) {
                match outcome {
                    Ok(()) => {
                        self.nodes.succeeded(&node_id);
                        stored.push(node_id);
                    }
                    Err(why) => self.node_failed(shard, &node_id, upload, &why),
                }
            }
        }
        stored
    }

    /// PUTs the body to every node of `round` at the same time; each node's outcome.
    fn put_at_once(
        &self,
        snapshot: &Snapshot,
        round: &[String],
        upload: &Upload<'_>,
        whole: WholeBody<'_>,
    ) -> Vec<(String, Result<(), String>)> {
        let put = |node_id: &str| {
            let send = |request| Ok(whole.send(request));
            let outcome = put_to_node(self, snapshot, node_id, upload, send);
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
}
