//! `bp-bench`: a load generator (`load`) and the standard benchmark matrix (`matrix`),
//! which starts a local cluster, measures a direct node and the coordinator on the same
//! nodes in the same run, and prints a table with ratios; and `slow-node`, which checks
//! that one slow node leaves the other shards' latency alone; and `replication`, which
//! measures whether the replicators keep pace with uploads (and, open loop, the lag of
//! every upload: `lag`); and `scale`, which measures what
//! thousands of shards and a hundred coordinators cost ZooKeeper and each coordinator; and
//! `wakeups`, which looks for slow wakeups between `may` coroutines; and `console`, which
//! times the coordinator's console page on many shards.

mod around_cells;
mod check;
mod client;
pub mod command;
mod console;
mod contenders;
mod cpu_roles;
mod lag;
mod lag_histogram;
mod lag_watch;
pub mod load;
mod matrix;
mod replication;
mod replication_command;
pub mod scale;
mod slow_node;
mod synthetic_cluster;
mod turns;
mod wakeups;
mod wrk;

/// A size argument (`64kb`, `1mb`, `512`) as bytes, for argh.
fn size_arg(text: &str) -> Result<u64, String> {
    backpack::size::parse_size(text).map_err(|err| err.to_string())
}
