//! The cluster state in ZooKeeper: typed reads and compare-and-set updates.
//!
//! Every change is a read-modify-write against the version that was read. Two admins (or a
//! coordinator and an admin) editing one map at once both succeed: the loser of the race
//! sees a version conflict, reads again and re-applies its edit to the fresh value. No
//! update overwrites another, which is what the old tools did too.

use crate::error::{Error, Result};
use crate::js_json;
use crate::state::queue::QueueInfo;
use crate::state::servers::{self, Servers};
use crate::state::shard_size::{self, ShardSize};
use crate::state::shards::{self, Shards};
use crate::state::{parse_object, Paths};
use crate::zk::{NodeKind, ZkSession};
use serde_json::Value;
use std::time::Duration;

/// A handle on the cluster state in ZooKeeper (a session and the root's paths).
pub struct ZkState {
    zk: ZkSession,
    paths: Paths,
}

impl ZkState {
    /// Connects to ZooKeeper for the cluster below `root`.
    pub fn open(zk_servers: &str, root: &str, timeout: Duration) -> Result<ZkState> {
        let paths = Paths::new(root)?;
        let zk = ZkSession::connect(zk_servers, timeout)?;
        Ok(ZkState { zk, paths })
    }

    /// Like `open`; `on_event` hears the session's watches and state changes.
    pub fn open_watching(
        zk_servers: &str,
        root: &str,
        timeout: Duration,
        session_timeout: Duration,
        on_event: impl Fn(crate::zk::ZkEvent) + Send + Sync + 'static,
    ) -> Result<ZkState> {
        let paths = Paths::new(root)?;
        let zk = ZkSession::connect_watching(zk_servers, timeout, session_timeout, on_event)?;
        Ok(ZkState { zk, paths })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn session(&self) -> &ZkSession {
        &self.zk
    }

    /// A node's JSON object and version, None when the node does not exist.
    pub fn read(&self, path: &str) -> Result<Option<(Value, i32)>> {
        match self.zk.get(path)? {
            Some((bytes, version)) => Ok(Some((parse_object(path, &bytes)?, version))),
            None => Ok(None),
        }
    }

    /// Like `read`, but a missing node means the cluster is not initialized.
    pub fn read_required(&self, path: &str) -> Result<(Value, i32)> {
        self.read(path)?.ok_or_else(|| Error::NotInitialized {
            path: path.to_string(),
        })
    }

    /// Creates a node holding `value`; false when it already exists (left untouched).
    pub fn create(&self, path: &str, value: &Value) -> Result<bool> {
        let bytes = js_json::to_compact(value).into_bytes();
        self.zk.create(path, bytes, NodeKind::Persistent)
    }

    /// Applies `edit` to the node's current value and writes it back with compare-and-set,
    /// retrying on conflicts. `edit` may run more than once, so it must only change the
    /// value it is given. Nothing is written when the edit leaves the value as it was.
    pub fn update<T>(
        &self,
        path: &str,
        mut edit: impl FnMut(&mut Value) -> Result<T>,
    ) -> Result<T> {
        loop {
            let (mut value, version) = self.read_required(path)?;
            let before = value.clone();
            let outcome = edit(&mut value)?;
            if value == before {
                return Ok(outcome);
            }
            let bytes = js_json::to_compact(&value).into_bytes();
            if self.zk.set(path, bytes, version)? {
                return Ok(outcome);
            }
        }
    }

    pub fn servers(&self) -> Result<Servers> {
        let path = self.paths.servers_map();
        servers::parse(&path, &self.read_required(&path)?.0)
    }

    pub fn shards(&self) -> Result<Shards> {
        let path = self.paths.shards_map();
        shards::parse(&path, &self.read_required(&path)?.0)
    }

    /// The shard's size node, None when it is missing.
    pub fn shard_size(&self, shard_id: &str) -> Result<Option<ShardSize>> {
        let path = self.paths.shard_size(shard_id);
        match self.read(&path)? {
            Some((value, _)) => Ok(Some(shard_size::parse(&path, &value)?)),
            None => Ok(None),
        }
    }

    pub fn queue(&self) -> Result<QueueInfo> {
        let path = self.paths.queue();
        QueueInfo::parse(&path, &self.read_required(&path)?.0)
    }
}
