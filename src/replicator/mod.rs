//! `backpack-replicator`: drains the replication queue, copying each file from a node that
//! has it to the node that lacks it.
//!
//! Where things are: `worker` is one worker's loop (pick a few items, lock them, copy,
//! remove them), `pacing` its waits between rounds and `claims` the items its fellow
//! workers hold; `locks` takes and releases item locks in ZooKeeper in batches; `fence` stops work under
//! them before ZooKeeper can have expired the session that holds them; `copies` runs a
//! round's copies at once, as coroutines, and `copy` moves one file between two nodes; `command` starts the workers and the ZooKeeper
//! thread (`crate::cluster`, shared with the coordinator); `push` is
//! `backpack-replicator-push`, which queues a copy by hand; `metrics` its numbers and
//! `GET /metrics`; `give_up` when an item that keeps failing moves to the dead set, which
//! `dead_command` (`backpack-replicator-dead`) lists, retries and drops (the dead set
//! itself is `crate::replication_queue::DeadSet`).

mod claims;
pub mod command;
mod copies;
mod copy;
pub mod dead_command;
mod fence;
mod give_up;
mod locks;
mod metrics;
mod pacing;
pub mod push;
mod worker;
