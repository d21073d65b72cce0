//! `backpack-replicator`: drains the replication queue, copying each file from a node that
//! has it to the node that lacks it.
//!
//! Where things are: `worker` is one worker's loop (pick a few items, lock them, copy,
//! remove them); `locks` takes and releases item locks in ZooKeeper in batches; `copy`
//! moves one file between two nodes; `command` starts the workers and the ZooKeeper
//! thread (`crate::cluster`, shared with the coordinator); `push` is
//! `backpack-replicator-push`, which queues a copy by hand; `metrics` its numbers and
//! `GET /metrics`; `dead_command` is `backpack-replicator-dead` (the dead letters
//! themselves are `crate::dead_letters`).

pub mod command;
mod copy;
pub mod dead_command;
mod locks;
mod metrics;
pub mod push;
mod worker;
