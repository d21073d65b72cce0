//! Finding files with fewer copies than their shard has nodes, and queueing the copies.
//!
//! The replication queue only knows recent uploads: a node whose disk died, a Redis that
//! restarted empty, an item moved to the dead set each leave files short of a copy for
//! good. A real Backpack node cannot list its files over HTTP, but its index (its own
//! Redis) can (`index`); `check` compares a shard's nodes key by key and queues ordinary
//! replication items for what is missing, which the replicators then copy; `command` is
//! `check-shard` and `check-cluster`.

mod check;
pub mod command;
mod index;
