//! init and set-queue: the nodes every other command and daemon needs.

use super::open;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::state::endpoint::parse_endpoint_list;
use crate::state::queue::QueueInfo;
use argh::FromArgs;
use serde_json::{json, Value};

fn queue_info(key: &str, redis_servers: &str) -> Result<QueueInfo> {
    let servers = parse_endpoint_list(redis_servers)
        .map_err(|why| Error::invalid(format!("invalid Redis server list: {why}")))?;
    QueueInfo::new(key, servers)
}

fn describe(queue: &QueueInfo) -> String {
    let servers: Vec<String> = queue.servers.iter().map(ToString::to_string).collect();
    format!("key {}, Redis {}", queue.key, servers.join(", "))
}

#[derive(FromArgs)]
/// Create the cluster's nodes in ZooKeeper: the replication queue, servers-map and
/// shards-map (and the root path when missing). Existing nodes are never overwritten.
pub struct Init {
    /// the ZooKeeper servers, host:port[,host:port...]
    #[argh(positional)]
    zk_servers: String,
    /// the cluster's root path in ZooKeeper, e.g. /backpack
    #[argh(positional)]
    root: String,
    /// name of the Redis set that holds replication tasks, e.g. backpack-queue
    #[argh(positional)]
    queue_key: String,
    /// redis servers of the queue, host:port[,host:port...]
    #[argh(positional)]
    redis_servers: String,
    /// seconds to wait for ZooKeeper (default 5)
    #[argh(option, default = "5")]
    zk_timeout: u64,
}

impl Command for Init {
    fn run(self) -> Result<()> {
        let queue = queue_info(&self.queue_key, &self.redis_servers)?;
        let store = open(&self.zk_servers, &self.root, self.zk_timeout)?;
        let paths = store.paths().clone();
        store.session().create_path(paths.root())?;
        let nodes: [(String, Value); 3] = [
            (paths.queue(), queue.to_value()),
            (paths.servers_map(), json!({})),
            (paths.shards_map(), json!({})),
        ];
        for (path, value) in nodes {
            let said = match store.create(&path, &value)? {
                true => "initialized",
                false => "already initialized",
            };
            println!("{path}: {said}");
        }
        Ok(())
    }
}

#[derive(FromArgs)]
/// Point the cluster at another replication queue: its Redis set key and servers.
/// Running coordinators and replicators pick the change up from ZooKeeper.
pub struct SetQueue {
    /// the ZooKeeper servers, host:port[,host:port...]
    #[argh(positional)]
    zk_servers: String,
    /// the cluster's root path in ZooKeeper, e.g. /backpack
    #[argh(positional)]
    root: String,
    /// name of the Redis set that holds replication tasks
    #[argh(positional)]
    queue_key: String,
    /// redis servers of the queue, host:port[,host:port...]
    #[argh(positional)]
    redis_servers: String,
    /// seconds to wait for ZooKeeper (default 5)
    #[argh(option, default = "5")]
    zk_timeout: u64,
}

impl Command for SetQueue {
    fn run(self) -> Result<()> {
        let queue = queue_info(&self.queue_key, &self.redis_servers)?;
        let store = open(&self.zk_servers, &self.root, self.zk_timeout)?;
        let path = store.paths().queue();
        let Value::Object(fresh) = queue.to_value() else {
            unreachable!("QueueInfo::to_value builds an object")
        };
        store.update(&path, |doc| {
            let node = doc
                .as_object_mut()
                .ok_or_else(|| Error::bad_state(&path, "not a JSON object"))?;
            // Key and servers change in place; keys we do not know stay.
            node.extend(fresh.clone());
            Ok(())
        })?;
        println!("{path}: {}", describe(&queue));
        Ok(())
    }
}
