//! One PUT of an upload's body to one node, and what a failed one leaves behind (a log
//! line, the node's health, an event, a line of the answer). Shared by the one-copy path
//! (`store`) and `--sync-copies` (`copies`).

use super::context::Upload;
use super::payload::{BodyError, NodeAnswer, NodePut};
use super::Uploads;
use crate::cluster::snapshot::{Shard, Snapshot};
use crate::log_line;
use crate::transport::node_http::drain_answer;

impl Uploads {
    /// Notes a node that did not store the file (log, node health, event) and keeps the
    /// failure, as the answer names it, in the upload.
    pub(super) fn node_failed(
        &self,
        shard: &Shard,
        node_id: &str,
        upload: &mut Upload<'_>,
        why: &str,
    ) {
        log_line!(
            "node {node_id} (shard {}) failed {} after {:.1} ms: {why}",
            shard.id,
            upload.target,
            upload.elapsed_ms()
        );
        self.nodes.failed(node_id, why);
        self.events.node_failed(node_id);
        upload.failures.push(format!("node {node_id}: {why}"));
    }
}

pub(super) enum NodeFailure {
    /// The node did not take the file; another may.
    Node(String),
    /// The client's body broke off: nobody can take the file.
    Body(BodyError),
}

/// A node took the file: 201 (a Backpack node), or 204 (a server that replaced a file).
pub(super) fn node_took_it(answer: &NodeAnswer) -> bool {
    matches!(answer, Ok(response) if matches!(response.status().as_u16(), 201 | 204))
}

/// One attempt: `PUT http://<node><target>`, the body sent by `send`.
pub(super) fn put_to_node(
    uploads: &Uploads,
    snapshot: &Snapshot,
    node_id: &str,
    upload: &Upload<'_>,
    send: impl FnOnce(NodePut) -> Result<NodeAnswer, NodeFailure>,
) -> Result<(), NodeFailure> {
    let Some(node) = snapshot.nodes.get(node_id) else {
        return Err(NodeFailure::Node("not in servers-map".into()));
    };
    let Some(addr) = node.addr else {
        return Err(NodeFailure::Node(format!(
            "{} does not resolve",
            node.endpoint
        )));
    };
    let put = uploads
        .agents
        .for_node(addr, upload.home)
        .put(&format!("http://{addr}{}", upload.target))
        .header("Content-Length", upload.length.to_string());
    let answer = send(put)?;
    let took_it = node_took_it(&answer);
    match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the (small) answer so the connection can go back to the pool.
            let _ = drain_answer(response.into_body().into_reader(), 64 * 1024);
            if took_it {
                Ok(())
            } else {
                Err(NodeFailure::Node(format!("answered {status}")))
            }
        }
        Err(err) => {
            if went_silent(&err) {
                // Its other pooled connections are most likely as silent.
                uploads.agents.forget(addr);
            }
            Err(NodeFailure::Node(err.to_string()))
        }
    }
}

/// A node that stopped answering (a connect, a read or a write timed out), as opposed to
/// one that refused or closed.
fn went_silent(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    }
}
