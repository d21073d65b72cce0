//! The nodes of a test cluster: real Backpack nodes, or nginx stand-ins (WebDAV nodes
//! that store files, sink nodes that store nothing). Tests and benchmarks pick the kind;
//! the rest of the kit treats them alike.

use super::{BackpackNode, Sandbox, Service, WebDavNode};
use std::io;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Topface's Backpack 0.5.5, the node users run.
    Backpack,
    /// nginx WebDAV: fast to start, answers like a Backpack node where it matters.
    WebDav,
    /// nginx answering 201 to every PUT and keeping nothing: for benchmarks.
    Sink,
}

pub enum ClusterNode {
    Backpack(Box<BackpackNode>),
    WebDav(Box<WebDavNode>),
}

impl ClusterNode {
    pub fn start(sandbox: &Sandbox, name: &str, kind: NodeKind) -> io::Result<ClusterNode> {
        Ok(match kind {
            NodeKind::Backpack => {
                ClusterNode::Backpack(Box::new(BackpackNode::start(sandbox, name)?))
            }
            NodeKind::WebDav => ClusterNode::WebDav(Box::new(WebDavNode::start(sandbox, name)?)),
            NodeKind::Sink => ClusterNode::WebDav(Box::new(WebDavNode::start_sink(sandbox, name)?)),
        })
    }

    /// `http://127.0.0.1:<port>`, as add-server takes it.
    pub fn url(&self) -> String {
        match self {
            ClusterNode::Backpack(node) => node.url(),
            ClusterNode::WebDav(node) => node.url(),
        }
    }

    /// The stored bytes of `path` as a client named it (`/hi.txt`), None when the node
    /// does not have it.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        match self {
            ClusterNode::Backpack(node) => node.file(path),
            ClusterNode::WebDav(node) => node.file(path),
        }
    }

    /// A real node's own Redis, whose index holds one key per stored file (the path
    /// without its leading `/`); None for a WebDAV node.
    pub fn index_redis(&self) -> Option<&crate::redis::RedisServer> {
        match self {
            ClusterNode::Backpack(node) => Some(&node.redis),
            ClusterNode::WebDav(_) => None,
        }
    }

    /// The PUTs a WebDAV node finished, from its log; None for a real node, which keeps
    /// no such log.
    pub fn puts(&self) -> Option<Vec<crate::LoggedPut>> {
        match self {
            ClusterNode::Backpack(_) => None,
            ClusterNode::WebDav(node) => Some(node.puts()),
        }
    }

    /// Where a WebDAV node keeps its files; None for a real node (its files are inside
    /// its data files).
    pub fn files_dir(&self) -> Option<&Path> {
        match self {
            ClusterNode::Backpack(_) => None,
            ClusterNode::WebDav(node) => Some(&node.files),
        }
    }
}

impl std::ops::Deref for ClusterNode {
    type Target = Service;
    fn deref(&self) -> &Service {
        match self {
            ClusterNode::Backpack(node) => node,
            ClusterNode::WebDav(node) => node,
        }
    }
}

impl std::ops::DerefMut for ClusterNode {
    fn deref_mut(&mut self) -> &mut Service {
        match self {
            ClusterNode::Backpack(node) => node,
            ClusterNode::WebDav(node) => node,
        }
    }
}
