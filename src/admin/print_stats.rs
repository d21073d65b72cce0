//! print-stats: how full each shard is, the whole cluster, and the replication backlog.

use crate::cluster::snapshot::Totals;
use crate::command::args::cluster_command;
use crate::command::Command;
use crate::duration_arg::{parse_duration, secs};
use crate::error::Result;
use crate::js_json::compare_ids;
use crate::replication_queue::ReplicationQueue;
use crate::size::format_size;
use crate::state::shard_size;
use std::time::Duration;

const BAR_WIDTH: u64 = 20;

cluster_command! {
    /// Print one line per shard (id, nodes, used / capacity, percent, rw or r for read-only,
    /// a usage bar), an overall line, and the length of the replication queue.
    pub struct PrintStats {
        /// time to wait for each Redis server (default 2s)
        #[argh(option, default = "secs(2)", from_str_fn(parse_duration))]
        redis_timeout: Duration,
    }
}

fn percent(used: u64, capacity: u64) -> u64 {
    if capacity == 0 {
        0
    } else {
        ((used as u128 * 100 + capacity as u128 / 2) / capacity as u128) as u64
    }
}

fn bar(used: u64, capacity: u64) -> String {
    let filled = if capacity == 0 {
        0
    } else {
        ((used as u128 * BAR_WIDTH as u128) / capacity as u128).min(BAR_WIDTH as u128) as usize
    };
    format!(
        "[{}{}]",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH as usize - filled)
    )
}

impl Command for PrintStats {
    fn run(self) -> Result<()> {
        let store = self.open_cluster()?;
        let shards = store.shards()?;
        let mut ids: Vec<&String> = shards.keys().collect();
        ids.sort_by(|a, b| compare_ids(a, b));
        let mut totals = Totals::default();
        for id in ids {
            let shard = &shards[id];
            let mode = if shard.read_only { "r" } else { "rw" };
            let nodes = shard.nodes.join(", ");
            match store.shard_size(id)? {
                Some(size) => {
                    totals.add(size, !shard.read_only && size.current < size.capacity);
                    // The old tools' line, then the state word when it says more.
                    let full = match shard_size::state_word(shard.read_only, Some(&size)) {
                        "full" => " full",
                        _ => "",
                    };
                    println!(
                        "{id} [{nodes}]: {} / {} ({}%) {mode} {}{full}",
                        format_size(size.current),
                        format_size(size.capacity),
                        percent(size.current, size.capacity),
                        bar(size.current, size.capacity)
                    );
                }
                None => println!(
                    "{id} [{nodes}]: size unknown ({} is missing) {mode} no size",
                    store.paths().shard_size(id)
                ),
            }
        }
        println!(
            "Overall: {} / {} ({}%)",
            format_size(totals.used),
            format_size(totals.capacity),
            percent(totals.used, totals.capacity)
        );
        let queue = store.queue()?;
        let length =
            ReplicationQueue::connect(&queue, self.redis_timeout).and_then(|queue| queue.length());
        match length {
            Ok(length) => {
                println!("Replication queue: {length} items");
                Ok(())
            }
            Err(err) => {
                println!("Replication queue: unknown");
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_bar() {
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(2, 3), 67);
        assert_eq!(bar(0, 10), "[....................]");
        assert_eq!(bar(5, 10), "[##########..........]");
        assert_eq!(bar(20, 10), "[####################]");
    }
}
