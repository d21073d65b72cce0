//! Many reads or compare-and-sets at once. The client sends each request when it is made,
//! so making them all and then awaiting the answers in turn costs about one round trip for
//! the lot, not one per node; the operation timeout bounds the whole batch.

use super::{counts, runtime, ZkFailure, ZkSession};
use crate::error::{Error, Result};
use std::future::Future;

/// A node's bytes and version, None when it does not exist.
pub type Node = Option<(Vec<u8>, i32)>;

impl ZkSession {
    /// Awaits every request of a batch already sent; an error when the answers do not
    /// all come within the timeout.
    fn gather<F: Future>(
        &self,
        sent: Vec<F>,
        action: &'static str,
        first: &str,
    ) -> Result<Vec<F::Output>> {
        let collect = async {
            let mut answers = Vec::with_capacity(sent.len());
            for answer in sent {
                answers.push(answer.await);
            }
            answers
        };
        runtime()?
            .block_on(async { tokio::time::timeout(self.timeout, collect).await })
            .map_err(|_| Error::Zk {
                action,
                path: first.to_string(),
                reason: format!("no answer within {}s", self.timeout.as_secs_f64()),
            })
    }

    /// `get` for many nodes at once (no watches), answers in the order of `paths`.
    pub fn get_many(&self, paths: &[String]) -> Result<Vec<Node>> {
        counts::read(paths.len());
        let sent: Vec<_> = paths
            .iter()
            .map(|path| self.client.get_data(path))
            .collect();
        let first = paths.first().map_or("", String::as_str);
        let mut nodes = Vec::with_capacity(paths.len());
        for (path, answer) in paths.iter().zip(self.gather(sent, "read", first)?) {
            nodes.push(match answer {
                Ok((data, stat)) => Some((data, stat.version)),
                Err(zookeeper_client::Error::NoNode) => None,
                Err(code) => return Err(ZkFailure::Code(code, "read", path.clone()).into()),
            });
        }
        Ok(nodes)
    }

    /// `set` for many nodes at once: each `(path, bytes, version)` is written if the node
    /// is still at that version. Per write, as `set`: true written, false a version
    /// conflict, an error otherwise. The outer error means no answer came for the batch
    /// in time: then each write may or may not have been applied.
    pub fn set_many(&self, writes: &[(String, Vec<u8>, i32)]) -> Result<Vec<Result<bool>>> {
        counts::written(writes.len());
        let sent: Vec<_> = writes
            .iter()
            .map(|(path, data, version)| self.client.set_data(path, data, Some(*version)))
            .collect();
        let first = writes.first().map_or("", |(path, ..)| path.as_str());
        let answers = self.gather(sent, "write", first)?;
        Ok(writes
            .iter()
            .zip(answers)
            .map(|((path, ..), answer)| match answer {
                Ok(_) => Ok(true),
                Err(zookeeper_client::Error::BadVersion) => Ok(false),
                Err(zookeeper_client::Error::NoNode) => {
                    Err(Error::NotInitialized { path: path.clone() })
                }
                Err(code) => Err(ZkFailure::Code(code, "write", path.clone()).into()),
            })
            .collect())
    }
}
