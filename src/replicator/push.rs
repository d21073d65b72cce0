//! `backpack-replicator-push`: queue a copy by hand, in the old tools' exact item form.

use crate::affinity::Home;
use crate::command::Command;
use crate::duration_arg::{parse_duration, secs};
use crate::error::{Error, Result};
use crate::replication_queue::{self, ReplicationQueue};
use crate::state::endpoint::parse_endpoint_list;
use crate::state::queue::QueueInfo;
use argh::FromArgs;
use std::time::Duration;

#[derive(FromArgs)]
/// Queue a replication item by hand: copy <path> from one of the <from> nodes to node <to>.
/// The item is pushed to every listed Redis server; at least one must take it.
pub struct ReplicatorPush {
    /// the ZooKeeper servers, host:port[,host:port...] (accepted for the old argument order)
    #[argh(positional, arg_name = "zk_servers")]
    _zk_servers: String,
    /// the cluster's root path in ZooKeeper (accepted for the old argument order)
    #[argh(positional, arg_name = "root")]
    _root: String,
    /// redis servers of the queue, host:port[,host:port...]
    #[argh(positional)]
    redis_servers: String,
    /// the queue's Redis set key, e.g. backpack-queue
    #[argh(positional)]
    queue_key: String,
    /// ids of nodes that have the file, comma-separated
    #[argh(positional)]
    from: String,
    /// id of the node to copy to
    #[argh(positional)]
    to: String,
    /// the file's path, starting with /
    #[argh(positional)]
    path: String,
    /// time for each Redis server (default 2s)
    #[argh(option, default = "secs(2)", from_str_fn(parse_duration))]
    redis_timeout: Duration,
}

impl Command for ReplicatorPush {
    fn run(self) -> Result<()> {
        let from: Vec<String> = self.from.split(',').map(|s| s.trim().to_string()).collect();
        if from.iter().any(String::is_empty) || self.to.is_empty() {
            return Err(Error::invalid("node ids must not be empty"));
        }
        if !self.path.starts_with('/') {
            return Err(Error::usage(format!(
                "the path {:?} must start with /",
                self.path
            )));
        }
        let servers = parse_endpoint_list(&self.redis_servers)
            .map_err(|why| Error::usage(format!("invalid Redis server list: {why}")))?;
        let queue = ReplicationQueue::connect(
            &QueueInfo {
                key: self.queue_key.clone(),
                servers,
            },
            self.redis_timeout,
        )?;
        let item = replication_queue::item(&from, &self.to, &self.path);
        let took = queue.push(std::slice::from_ref(&item), Home::default())?;
        println!(
            "queued {item} on {took} of {} Redis servers",
            queue.pools.len()
        );
        Ok(())
    }
}
