//! add-shard, enable-shard, disable-shard.

use crate::command::args::cluster_command;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::size::{format_size, parse_size};
use crate::state::shard_size;
use crate::state::{check_new_id, shards};
use crate::zk_state::ZkState;

cluster_command! {
    /// Add a shard (read-only until enabled) made of registered nodes, with a capacity.
    /// For an existing shard, replace its node list; its size and enabled state stay.
    pub struct AddShard {
        /// the shard's id, e.g. 1
        #[argh(positional)]
        id: String,
        /// ids of the nodes holding the shard's replicas, comma-separated, e.g. 1,4
        #[argh(positional)]
        nodes: String,
        /// capacity: a number with b, kb, mb, gb or tb (1024-based), e.g. 100gb or 1.5gb
        #[argh(positional)]
        size: String,
    }
}

fn node_ids(list: &str) -> Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for id in list.split(',').map(str::trim) {
        if id.is_empty() {
            return Err(Error::usage(format!(
                "invalid node list {list:?}: expected ids separated by commas, e.g. 1,4"
            )));
        }
        if ids.iter().any(|seen| seen == id) {
            return Err(Error::usage(format!(
                "node {id} is listed twice in {list:?}"
            )));
        }
        ids.push(id.to_string());
    }
    Ok(ids)
}

impl Command for AddShard {
    fn run(self) -> Result<()> {
        check_new_id("shard", &self.id)?;
        let nodes = node_ids(&self.nodes)?;
        let capacity = parse_size(&self.size)?;
        if capacity == 0 {
            return Err(Error::usage(
                "a shard of capacity 0 can never take an upload: give its size, e.g. 100gb",
            ));
        }
        let store = self.open_cluster()?;
        let servers = store.servers()?;
        let unknown: Vec<&str> = nodes
            .iter()
            .filter(|id| !servers.contains_key(*id))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(format!(
                "unknown node {}: register it first with backpack-coordinator-add-server",
                unknown.join(", ")
            )));
        }
        // Checked before anything is written, so a missing map leaves no size node behind.
        let shards_path = store.paths().shards_map();
        store.read_required(&shards_path)?;

        // The size node first: a shard in the map without one could not take uploads.
        // If the map update then fails, the size node we made is removed again.
        let size_path = store.paths().shard_size(&self.id);
        let created_size = store.create(&size_path, &shard_size::new_node(capacity))?;
        let added = store.update(&shards_path, |doc| {
            shards::add_or_replace_nodes(doc, &self.id, &nodes)
        });
        let added = match added {
            Ok(added) => added,
            Err(err) => {
                if created_size {
                    let _ = store.session().delete(&size_path);
                }
                return Err(err);
            }
        };

        let node_list = nodes.join(", ");
        warn_if_twin(&store, &self.id, &nodes)?;
        if added {
            println!(
                "shard {} added: nodes {node_list}, capacity {}; read-only until enabled",
                self.id,
                format_size(capacity)
            );
        } else {
            println!("shard {} now has nodes {node_list}", self.id);
        }
        if !created_size {
            if let Some(size) = store.shard_size(&self.id)? {
                println!(
                    "{size_path} exists and is kept: {} of {} used",
                    format_size(size.current),
                    format_size(size.capacity)
                );
            }
        }
        Ok(())
    }
}

/// Warns (stderr; the command still succeeds) when another shard names exactly these
/// nodes: two shards on the same disks count their capacity twice, which is most often a
/// typo in the id.
fn warn_if_twin(store: &ZkState, id: &str, nodes: &[String]) -> Result<()> {
    let mut wanted: Vec<&str> = nodes.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    for (other, entry) in store.shards()? {
        let mut theirs: Vec<&str> = entry.nodes.iter().map(String::as_str).collect();
        theirs.sort_unstable();
        if other != id && theirs == wanted {
            eprintln!(
                "warning: shard {other} has the same nodes ({}): two shards on the same disks count their capacity twice",
                wanted.join(", ")
            );
        }
    }
    Ok(())
}

fn set_enabled(store: &ZkState, id: &str, enabled: bool) -> Result<()> {
    let path = store.paths().shards_map();
    let changed = store.update(&path, |doc| shards::set_enabled(doc, id, enabled))?;
    let state = if enabled {
        "enabled"
    } else {
        "disabled (read-only)"
    };
    if changed {
        println!("shard {id} {state}");
    } else {
        println!("shard {id} was already {state}");
    }
    if enabled && store.shard_size(id)?.is_none() {
        eprintln!(
            "warning: {} is missing, so coordinators cannot place files on shard {id}",
            store.paths().shard_size(id)
        );
    }
    Ok(())
}

cluster_command! {
    /// Let coordinators place new files on a shard.
    pub struct EnableShard {
        /// the shard's id
        #[argh(positional)]
        id: String,
    }
}

impl Command for EnableShard {
    fn run(self) -> Result<()> {
        let store = self.open_cluster()?;
        set_enabled(&store, &self.id, true)
    }
}

cluster_command! {
    /// Make a shard read-only: its files stay readable, coordinators place no new files on it.
    pub struct DisableShard {
        /// the shard's id
        #[argh(positional)]
        id: String,
    }
}

impl Command for DisableShard {
    fn run(self) -> Result<()> {
        let store = self.open_cluster()?;
        set_enabled(&store, &self.id, false)
    }
}
