//! Keeps the queue's lag records bounded when old replicators copy.
//!
//! An old replicator removes an item from the queue but not its record of when it was
//! queued (`replication_queue::records`). Every new daemon runs this thread: every
//! `PASS_EVERY` it walks each Redis server's records in chunks and drops those whose item
//! has left the queue. The chunks are paced (`CHUNK` records per `CHUNK_PAUSE`, so at
//! most 5,000 set lookups a second per server), so that a queue of millions costs Redis
//! a steady trickle, never a stall. Daemons sweeping at once do the same harmless work.

use super::snapshot::SnapshotCell;
use crate::error::{Error, Result};
use crate::replication_queue::ReplicationQueue;
use std::sync::Arc;
use std::time::Duration;

const PASS_EVERY: Duration = Duration::from_secs(10);
const CHUNK: u64 = 500;
const CHUNK_PAUSE: Duration = Duration::from_millis(100);

/// Starts the sweeping thread; it runs as long as the process.
pub fn start(snapshots: Arc<SnapshotCell>) -> Result<()> {
    std::thread::Builder::new()
        .name("record-sweeper".into())
        .spawn(move || loop {
            std::thread::sleep(PASS_EVERY);
            let Some(snapshot) = snapshots.current() else {
                continue;
            };
            if let Some(queue) = &snapshot.queue {
                for server in 0..queue.pools.len() {
                    sweep(queue, server);
                }
            }
        })
        .map(|_| ())
        .map_err(|err| Error::invalid(format!("cannot start the record sweeper: {err}")))
}

/// One pass over one server's records; ends early when the server does not answer.
fn sweep(queue: &ReplicationQueue, server: usize) {
    let mut start = 0;
    while let Some((looked, dropped)) = queue.sweep_records(server, start, CHUNK) {
        if looked < CHUNK {
            return;
        }
        // The records kept shift the next chunk; those dropped do not.
        start += looked - dropped;
        std::thread::sleep(CHUNK_PAUSE);
    }
}
