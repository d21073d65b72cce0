//! Storing an upload: take the body, choose a shard, try its nodes, queue the
//! replication, count the bytes; another shard when every node of one failed.

use super::context::{body_refusal, empty, refuse, Refusal, Stored, Upload};
use super::node_put::{node_took_it, put_to_node, NodeFailure};
use super::payload::{CollectLimits, UploadBody};
use super::placement;
use super::replicate::replicate;
use super::Uploads;
use crate::cluster::snapshot::{Shard, Snapshot};
use crate::http::Body;

impl Uploads {
    /// Stores the upload whose body is `client_body` (`declared` long, or chunked when
    /// None) on one shard: with one copy here, with `--sync-copies` in `copies`.
    pub(super) fn store(
        &self,
        upload: &mut Upload<'_>,
        declared: Option<u64>,
        client_body: &mut Body<'_>,
    ) -> Result<Stored, Refusal> {
        let Some(snapshot) = self.snapshots.current() else {
            return Err(refuse(503, "the configuration is not loaded yet"));
        };
        let mut candidates: Vec<&Shard> = snapshot.writable_shards().collect();
        if candidates.is_empty() {
            return Err(refuse(503, "no writable shard"));
        }
        let settings = &self.settings;
        if settings.sync_copies > 1 {
            candidates = self.shards_with_enough_nodes(candidates)?;
        }
        let mut body = self.take_body(upload, declared, client_body)?;
        if settings.sync_copies > 1 {
            return self.store_on_many(&snapshot, candidates, upload, &mut body);
        }
        for _ in 0..settings.shard_attempts {
            let Some(shard) = placement::choose(&candidates, &mut rand::rng()) else {
                break;
            };
            if let Some(node) = self.try_nodes(&snapshot, shard, upload, &mut body)? {
                replicate(&snapshot, shard, std::slice::from_ref(&node), upload)?;
                self.sizes.add(&shard.id, upload.length);
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
            format!(
                "no node could store the file ({})",
                upload.failures.join("; ")
            ),
        ))
    }

    /// The client's body, ready to send to nodes: in memory when it is small and the
    /// budget allows, else spooled as it streams. A chunked body is read here, and its
    /// length becomes the upload's.
    fn take_body<'b, 'c, 'd>(
        &'b self,
        upload: &mut Upload<'_>,
        declared: Option<u64>,
        client_body: &'c mut Body<'d>,
    ) -> Result<UploadBody<'b, 'c, 'd>, Refusal> {
        let settings = &self.settings;
        let (body, length) = match declared {
            Some(length) => {
                let in_memory = (length <= settings.memory_body)
                    .then(|| self.memory.reserve(length))
                    .flatten();
                let body = UploadBody::take(client_body, length, in_memory, &settings.spool_dir)
                    .map_err(body_refusal)?;
                (body, length)
            }
            None => {
                let limits = CollectLimits {
                    max_body: upload.max_body,
                    memory_body: settings.memory_body,
                };
                UploadBody::collect(client_body, limits, &self.memory, &settings.spool_dir)
                    .map_err(body_refusal)?
            }
        };
        upload.length = length;
        if length == 0 {
            return Err(empty());
        }
        Ok(body)
    }

    /// The shard's nodes in turn (recently failed ones last) until one stores the file:
    /// the node that did, None when none did. Node health is kept here.
    fn try_nodes(
        &self,
        snapshot: &Snapshot,
        shard: &Shard,
        upload: &mut Upload<'_>,
        body: &mut UploadBody<'_, '_, '_>,
    ) -> Result<Option<String>, Refusal> {
        for node_id in self.nodes.order(&shard.nodes) {
            let send = |put| body.attempt(put, node_took_it).map_err(NodeFailure::Body);
            match put_to_node(self, snapshot, &node_id, upload, send) {
                Ok(()) => {
                    self.nodes.succeeded(&node_id);
                    return Ok(Some(node_id));
                }
                Err(NodeFailure::Node(why)) => self.node_failed(shard, &node_id, upload, &why),
                Err(NodeFailure::Body(err)) => return Err(body_refusal(err)),
            }
        }
        Ok(None)
    }
}
