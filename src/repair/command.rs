//! `backpack-coordinator-check-shard` and `backpack-coordinator-check-cluster`: compare a
//! shard's nodes by their indexes, report, and with `--repair` queue the missing copies.

use super::check::{CheckSettings, Progress, ShardCheck, Tally};
use super::index::NodeIndex;
use crate::command::args::cluster_command;
use crate::command::Command;
use crate::duration_arg::{parse_duration, secs};
use crate::error::{Error, Result};
use crate::replication_queue::{Item, ReplicationQueue};
use crate::state::node_index::{self, NodeIndexes};
use crate::state::shard_size;
use crate::zk_state::ZkState;
use std::collections::HashSet;
use std::time::Duration;

/// A check command's arguments: `<zk_servers> <root>`, the command's own (each ending
/// with a comma), and the flags both checks take, `--timeout` for ZooKeeper and Redis
/// alike; with `job()`, which opens them.
macro_rules! check_command {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($fields:tt)*
        }
    ) => {
        cluster_command! {
            @own_timeouts
            $(#[$meta])*
            pub struct $name {
                $($fields)*
                /// queue a copy for every missing file, and a rewrite where a strict majority
                /// of the shard's nodes agrees on the length
                #[argh(switch)]
                repair: bool,
                /// queue items pushed per second at most (default 1000)
                #[argh(option, default = "1000.0")]
                rate: f64,
                /// how long a file short of a copy waits before it counts, since it may be an
                /// upload still being replicated (default 60s)
                #[argh(option, default = "secs(60)", from_str_fn(parse_duration))]
                grace: Duration,
                /// set each shard's current size to its fullest node's indexed bytes
                #[argh(switch)]
                fix_sizes: bool,
                /// time to wait for ZooKeeper and for each Redis server (default 5s)
                #[argh(option, default = "secs(5)", from_str_fn(parse_duration))]
                timeout: Duration,
            }
        }

        impl $name {
            fn job(&self) -> Result<Job> {
                let settings = CheckSettings {
                    repair: self.repair,
                    rate: self.rate,
                    grace: self.grace,
                    batch: 1000,
                };
                Job::open(&self.zk_servers, &self.root, settings, self.fix_sizes, self.timeout)
            }
        }
    };
}

check_command! {
    /// Compare a shard's nodes by their indexes (see set-node-index): files missing per node
    /// and length mismatches. Exit 0 when the shard is whole, 1 when something was found
    /// (repaired or not), 2 on bad arguments or an index that cannot be read.
    pub struct CheckShard {
        /// the shard's id
        #[argh(positional)]
        shard: String,
    }
}

check_command! {
    /// check-shard for every shard of the cluster, one after the other. Exit 0 when every
    /// shard is whole, 1 when something was found, 2 on bad arguments or an unreadable index.
    pub struct CheckCluster {}
}

/// What both commands were asked.
struct Job {
    store: ZkState,
    /// The replication queue: read for queued copies, written by `--repair`.
    queue: ReplicationQueue,
    settings: CheckSettings,
    fix_sizes: bool,
    timeout: Duration,
}

impl Job {
    fn open(
        zk: &str,
        root: &str,
        settings: CheckSettings,
        fix_sizes: bool,
        timeout: Duration,
    ) -> Result<Job> {
        let rate = settings.rate;
        if rate.is_nan() || rate <= 0.0 {
            return Err(Error::Usage(format!("--rate must be above 0, not {rate}")));
        }
        let store = ZkState::open(zk, root, timeout)?;
        let queue = ReplicationQueue::connect(&store.queue()?, timeout)?;
        Ok(Job {
            store,
            queue,
            settings,
            fix_sizes,
            timeout,
        })
    }

    fn indexes(&self) -> Result<NodeIndexes> {
        let path = self.store.paths().node_index_map();
        match self.store.read(&path)? {
            Some((doc, _)) => node_index::parse(&path, &doc),
            None => Ok(NodeIndexes::new()),
        }
    }

    /// The copies queued now, as (to, path): their files are not findings. Read again for
    /// every shard, since a cluster check can take long.
    fn queued(&self) -> Result<HashSet<(String, String)>> {
        let mut queued = HashSet::new();
        for text in self.queue.members()? {
            if let Ok(item) = Item::parse(&text) {
                queued.insert((item.to, item.path));
            }
        }
        Ok(queued)
    }

    /// Checks one shard; prints progress on stderr and a summary on stdout.
    fn check(&self, shard_id: &str, indexes: &NodeIndexes) -> Result<Tally> {
        let shards = self.store.shards()?;
        let shard = shards
            .get(shard_id)
            .ok_or_else(|| Error::Usage(format!("no shard {shard_id} in shards-map")))?;
        let mut nodes = Vec::new();
        for node in &shard.nodes {
            let endpoint = indexes.get(node).ok_or_else(|| {
                Error::Usage(format!(
                    "node {node} of shard {shard_id} has no index address (set it with backpack-coordinator-set-node-index)"
                ))
            })?;
            nodes.push(NodeIndex::connect(node, endpoint, self.timeout)?);
        }
        let size_path = self.store.paths().shard_size(shard_id);
        let size_before = self.store.shard_size(shard_id)?;
        let queued = self.queued()?;
        let mut check = ShardCheck::new(nodes, &self.settings, &queued, &self.queue);
        check.run(|progress| match progress {
            Progress::Scanning {
                node,
                scanned,
                tally,
            } => eprintln!(
                "shard {shard_id}: node {node}: {scanned} keys scanned; {} files so far",
                tally.files
            ),
            Progress::Waiting { keys, next_in } => eprintln!(
                "shard {shard_id}: waiting out --grace for {keys} key(s) whose copies differ; the next is judged in {}s",
                next_in.as_secs()
            ),
        })?;
        let ids: Vec<&str> = shard.nodes.iter().map(String::as_str).collect();
        let tally = check.tally;
        println!("{}", summary(shard_id, &ids, &tally));
        if self.fix_sizes {
            let fullest = tally.bytes.iter().copied().max().unwrap_or(0);
            let before = size_before.map_or(0, |size| size.current);
            // Applied as a difference, so increments that landed during the scan stay.
            let now = self.store.update(&size_path, |doc| {
                let current = shard_size::parse(&size_path, doc)?.current;
                let fixed = (current + fullest).saturating_sub(before);
                doc.as_object_mut()
                    .ok_or_else(|| Error::bad_state(&size_path, "not a JSON object"))?
                    .insert("current".into(), fixed.into());
                Ok(fixed)
            })?;
            println!(
                "shard {shard_id}: current size {before} -> {now} (fullest node: {fullest} bytes)"
            );
        }
        Ok(tally)
    }
}

/// One line for a shard, and one per node.
fn summary(shard: &str, nodes: &[&str], tally: &Tally) -> String {
    let mut text = format!(
        "shard {shard}: {} files, {} length mismatches ({} without a majority), {} records that are not files, {} copies skipped as queued, {} items queued",
        tally.files, tally.mismatches, tally.no_majority, tally.not_records, tally.queued, tally.pushed
    );
    for (j, node) in nodes.iter().enumerate() {
        text.push_str(&format!(
            "\n  node {node}: {} files present ({} bytes), {} missing",
            tally.present[j], tally.bytes[j], tally.missing[j]
        ));
    }
    text
}

/// Exit 0 when whole, 1 (one line saying so) when not.
fn verdict(what: &str, whole: bool) -> Result<()> {
    if whole {
        println!("{what} is whole");
        Ok(())
    } else {
        Err(Error::invalid(format!("{what} is not whole (see above)")))
    }
}

impl Command for CheckShard {
    fn run(self) -> Result<()> {
        let job = self.job()?;
        let tally = job.check(&self.shard, &job.indexes()?)?;
        verdict(&format!("shard {}", self.shard), tally.is_whole())
    }
}

impl Command for CheckCluster {
    fn run(self) -> Result<()> {
        let job = self.job()?;
        let indexes = job.indexes()?;
        let mut whole = true;
        for shard in job.store.shards()?.keys() {
            whole &= job.check(shard, &indexes)?.is_whole();
        }
        verdict("the cluster", whole)
    }
}
