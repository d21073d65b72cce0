//! Queueing an upload's replication, the last step before a 200: a 200 means the file is
//! on a node *and* its copies to the shard's other nodes are queued.

use super::context::{refuse, Refusal, Upload};
use crate::cluster::snapshot::{Shard, Snapshot};
use crate::replication_queue;

/// Queues a copy to every other node of the shard, from every node that stored it.
pub(super) fn replicate(
    snapshot: &Snapshot,
    shard: &Shard,
    stored_on: &[String],
    upload: &Upload<'_>,
) -> Result<(), Refusal> {
    let target = &upload.target;
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
