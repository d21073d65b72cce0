//! init and set-queue: the nodes every other command and daemon needs.

use crate::command::args::cluster_command;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::state::endpoint::parse_endpoint_list;
use crate::state::queue::QueueInfo;
use serde_json::{json, Value};

fn queue_info(key: &str, redis_servers: &str) -> Result<QueueInfo> {
    let servers = parse_endpoint_list(redis_servers)
        .map_err(|why| Error::usage(format!("invalid Redis server list: {why}")))?;
    QueueInfo::new(key, servers)
}

fn describe(queue: &QueueInfo) -> String {
    let servers: Vec<String> = queue.servers.iter().map(ToString::to_string).collect();
    format!("key {}, Redis {}", queue.key, servers.join(", "))
}

cluster_command! {
    /// Create the cluster's nodes in ZooKeeper: the replication queue, servers-map and
    /// shards-map (and the root path when missing). Existing nodes are never overwritten.
    pub struct Init {
        /// name of the Redis set that holds replication tasks, e.g. backpack-queue
        #[argh(positional)]
        queue_key: String,
        /// redis servers of the queue, host:port[,host:port...]
        #[argh(positional)]
        redis_servers: String,
    }
}

impl Command for Init {
    fn run(self) -> Result<()> {
        let queue = queue_info(&self.queue_key, &self.redis_servers)?;
        let store = self.open_cluster()?;
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

cluster_command! {
    /// Point the cluster at another replication queue: its Redis set key and servers.
    /// Running coordinators and replicators pick the change up from ZooKeeper.
    pub struct SetQueue {
        /// name of the Redis set that holds replication tasks
        #[argh(positional)]
        queue_key: String,
        /// redis servers of the queue, host:port[,host:port...]
        #[argh(positional)]
        redis_servers: String,
    }
}

impl Command for SetQueue {
    fn run(self) -> Result<()> {
        let queue = queue_info(&self.queue_key, &self.redis_servers)?;
        let store = self.open_cluster()?;
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
