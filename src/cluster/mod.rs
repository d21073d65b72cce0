//! The live cluster configuration as the daemons (coordinator, replicator) see it.
//!
//! `sync` owns the ZooKeeper session on its own thread, watches the cluster's nodes and
//! publishes immutable `snapshot`s; `sizes` holds the shard size increments it applies;
//! `record_sweeper` keeps the queue's lag records bounded.
//! The daemons read snapshots and never wait on ZooKeeper themselves, except for the
//! replicator's lock nodes, which it makes through the session `sync` publishes.

pub mod record_sweeper;
pub mod sizes;
pub mod snapshot;
pub mod sync;
