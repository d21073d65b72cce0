//! What an upload carries through its steps and how it ends: its context, where it was
//! stored, or the refusal to answer; and queueing its replication, the last step before
//! a 200. Shared by the one-copy path (`upload`) and `--sync-copies` (`copies`).

use super::payload::BodyError;
use crate::affinity::Home;
use crate::cluster::snapshot::{Shard, Snapshot};
use crate::replication_queue;
use std::time::Instant;

/// An upload that was not stored, with the answer to give.
pub(super) struct Refusal {
    pub status: u16,
    pub message: String,
}

pub(super) fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Where an upload ended up: its shard, and the node (or nodes, comma-separated) that
/// stored it.
pub(super) struct Stored {
    pub shard: String,
    pub node: String,
}

/// What one upload carries through its steps: the key as sent, its length, when it
/// started, and the worker thread its client's socket wakes (node and Redis connections
/// are taken from that worker's pools, see `affinity`).
pub(super) struct UploadContext<'r> {
    pub target: &'r str,
    pub length: u64,
    pub started: Instant,
    pub home: Home,
}

pub(super) fn too_large(max_body: u64) -> Refusal {
    refuse(413, format!("the body is larger than {max_body} bytes"))
}

pub(super) fn body_refusal(err: BodyError) -> Refusal {
    match err {
        BodyError::Client(why) => refuse(400, format!("the request body did not arrive: {why}")),
        BodyError::Spool(why) => refuse(503, format!("cannot keep the body: {why}")),
        BodyError::TooLarge(max_body) => too_large(max_body),
    }
}

/// Queues a copy to every other node of the shard, from every node that stored it.
pub(super) fn replicate(
    snapshot: &Snapshot,
    shard: &Shard,
    stored_on: &[String],
    upload: &UploadContext<'_>,
) -> Result<(), Refusal> {
    let target = upload.target;
    let items: Vec<String> = shard
        .nodes
        .iter()
        .filter(|id| !stored_on.contains(id))
        .map(|to| replication_queue::item(stored_on, to, target))
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    let not_queued = |why: String| {
        refuse(
            503,
            format!(
                "the file is stored on node {} only: its replication could not be queued ({why})",
                stored_on.join(", ")
            ),
        )
    };
    let Some(queue) = &snapshot.queue else {
        return Err(not_queued("no queue configured".into()));
    };
    queue
        .push(&items, upload.home)
        .map(|_| ())
        .map_err(|err| not_queued(err.to_string()))
}
