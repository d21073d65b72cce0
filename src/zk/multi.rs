//! ZooKeeper transactions: several creates or deletes, all or none, in one round trip.

use super::{NodeKind, ZkSession};
use crate::error::{Error, Result};
use zookeeper_client::{Acls, CreateMode};

impl ZkSession {
    /// Creates every node in `paths` with `data`, all or none, in one transaction (one
    /// round trip and one disk sync for the lot). `Ok(Err(i))`: nothing was created,
    /// because `paths[i]` exists.
    pub fn create_all(
        &self,
        paths: &[String],
        data: &[u8],
        kind: NodeKind,
    ) -> Result<std::result::Result<(), usize>> {
        let options = match kind {
            NodeKind::Persistent => CreateMode::Persistent,
            NodeKind::Ephemeral => CreateMode::Ephemeral,
        }
        .with_acls(Acls::anyone_all());
        let mut writer = self.client.new_multi_writer();
        for path in paths {
            writer
                .add_create(path, data, &options)
                .map_err(|err| Error::Zk {
                    action: "create",
                    path: path.clone(),
                    reason: err.to_string(),
                })?;
        }
        self.commit_all(writer, "create", paths, zookeeper_client::Error::NodeExists)
    }

    /// Deletes every node in `paths`, all or none, in one transaction. `Ok(Err(i))`:
    /// nothing was deleted, because `paths[i]` does not exist.
    pub fn delete_all(&self, paths: &[String]) -> Result<std::result::Result<(), usize>> {
        let mut writer = self.client.new_multi_writer();
        for path in paths {
            writer.add_delete(path, None).map_err(|err| Error::Zk {
                action: "delete",
                path: path.clone(),
                reason: err.to_string(),
            })?;
        }
        self.commit_all(writer, "delete", paths, zookeeper_client::Error::NoNode)
    }

    /// A transaction that changes nothing: a check of `path` at any version. ZooKeeper
    /// answers it only once its leader and a quorum of servers have agreed on it, and only
    /// while our session stands: an answer proves the session was alive at the leader
    /// after the request was sent, which an answered ping does not (a server cut off
    /// from the others goes on answering pings for `syncLimit x tickTime`). Waits `wait`
    /// at most.
    pub fn quorum_round_trip(&self, path: &str, wait: std::time::Duration) -> Result<()> {
        let mut writer = self.client.new_multi_writer();
        writer
            .add_check_version(path, -1)
            .map_err(|err| Error::Zk {
                action: "check",
                path: path.to_string(),
                reason: err.to_string(),
            })?;
        let commit = async {
            match writer.commit().await {
                Ok(_) => Ok(()),
                Err(err) => Err(err.into()),
            }
        };
        match self.call_within(wait, "check", path, commit) {
            Ok(()) => Ok(()),
            Err(failure) => Err(failure.into()),
        }
    }

    /// Commits a transaction; `Ok(Err(i))` when operation `i` failed with `expected`.
    fn commit_all(
        &self,
        mut writer: zookeeper_client::MultiWriter<'_>,
        action: &'static str,
        paths: &[String],
        expected: zookeeper_client::Error,
    ) -> Result<std::result::Result<(), usize>> {
        use zookeeper_client::MultiWriteError;
        let first = paths.first().map_or("", String::as_str);
        let commit = async {
            match writer.commit().await {
                Ok(_) => Ok(Ok(())),
                Err(MultiWriteError::OperationFailed { index, source }) if source == expected => {
                    Ok(Err(index))
                }
                Err(err) => Err(err.into()),
            }
        };
        // `call` counted the transaction as one write; ZooKeeper writes every node.
        super::counts::written(paths.len().saturating_sub(1));
        match self.call(action, first, commit) {
            Ok(outcome) => Ok(outcome),
            Err(failure) => Err(failure.into()),
        }
    }
}
