//! The cluster state that lives in ZooKeeper, as typed values.
//!
//! Each node has its own module: how to read it (tolerating everything real clusters
//! hold) and how to change it (producing exactly the JSON the old tools wrote). Reading and
//! editing work on `serde_json::Value`, so keys this project does not know survive a
//! rewrite; `crate::zk_state` moves those values in and out of ZooKeeper.

pub mod endpoint;
pub mod node_index;
pub mod queue;
pub mod servers;
pub mod shard_size;
pub mod shards;

use crate::error::{Error, Result};

/// The names of the nodes below one cluster root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: String,
}

impl Paths {
    /// Checks a root such as `/backpack` (absolute, no empty, `.` or `..` segments).
    pub fn new(root: &str) -> Result<Paths> {
        let trimmed = root.trim_end_matches('/');
        let valid = root.starts_with('/')
            && trimmed.split('/').skip(1).all(|s| {
                !s.is_empty() && s != "." && s != ".." && !s.chars().any(char::is_control)
            });
        if !valid {
            return Err(Error::usage(format!(
                "invalid ZooKeeper root {root:?}: expected an absolute path such as /backpack"
            )));
        }
        Ok(Paths {
            root: trimmed.to_string(),
        })
    }

    /// The root itself (`/` for the ZooKeeper root).
    pub fn root(&self) -> &str {
        if self.root.is_empty() {
            "/"
        } else {
            &self.root
        }
    }

    fn child(&self, name: &str) -> String {
        format!("{}/{name}", self.root)
    }

    pub fn servers_map(&self) -> String {
        self.child("servers-map")
    }

    pub fn shards_map(&self) -> String {
        self.child("shards-map")
    }

    pub fn queue(&self) -> String {
        self.child("queue")
    }

    pub fn node_index_map(&self) -> String {
        self.child(node_index::NAME)
    }

    pub fn shard_size(&self, shard_id: &str) -> String {
        self.child(&format!("shard-size-{shard_id}"))
    }
}

/// Ids the new tools accept for servers and shards. Old clusters may hold other strings and
/// are still read; new ids must be safe in URLs (`/<shard>:<path>`) and nginx upstream names.
pub fn check_new_id(kind: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "invalid {kind} id {id:?}: use letters, digits, '-', '_' or '.' (at most 64)"
        )))
    }
}

/// Parses a node's bytes as a JSON object, naming the node when they are not one.
pub fn parse_object(path: &str, bytes: &[u8]) -> Result<serde_json::Value> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| Error::bad_state(path, err))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(Error::bad_state(path, "not a JSON object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_below_a_root() {
        let paths = Paths::new("/backpack/").unwrap();
        assert_eq!(paths.servers_map(), "/backpack/servers-map");
        assert_eq!(paths.shard_size("3"), "/backpack/shard-size-3");
        assert_eq!(Paths::new("/").unwrap().queue(), "/queue");
        for bad in ["backpack", "", "/a//b", "/a/../b"] {
            assert!(Paths::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_ids_are_url_and_nginx_safe() {
        assert!(check_new_id("shard", "10").is_ok());
        assert!(check_new_id("shard", "eu-1").is_ok());
        for bad in ["", "a:b", "a/b", "a b", "x;}"] {
            assert!(check_new_id("shard", bad).is_err(), "{bad}");
        }
    }
}
