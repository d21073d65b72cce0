//! The admin commands that keep the cluster's state in ZooKeeper.
//!
//! Each command is an `argh` struct whose positional arguments are the old tools' (names
//! and order are a contract: users script against them); `crate::cli` runs them.

mod dump_shards;
mod node_index;
mod print_stats;
mod remove;
mod servers;
mod setup;
mod shards;

pub(crate) use dump_shards::DumpShards;
pub(crate) use node_index::SetNodeIndex;
pub(crate) use print_stats::PrintStats;
pub(crate) use remove::{RemoveServer, RemoveShard};
pub(crate) use servers::AddServer;
pub(crate) use setup::{Init, SetQueue};
pub(crate) use shards::{AddShard, DisableShard, EnableShard};
