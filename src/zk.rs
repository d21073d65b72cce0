//! A ZooKeeper session with a bounded connect.
//!
//! The `zookeeper` crate's `connect()` only starts a background connection: it returns Ok
//! while every server is down, and requests wait, unbounded, until a session exists. So
//! `connect` below proves the session is live with a probe request made on a helper
//! thread (a
//! request blocked on a session that never comes holds only that thread), and gives up after the timeout with an error that names the servers.
//!
//! This wrapper also narrows the crate's API to the few calls the tools need, with results
//! that say what happened (`created: false` rather than an error for an existing node), so
//! that the session can be swapped for a self-healing one without touching its callers.

use crate::error::{Error, Result};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use zookeeper::{Acl, CreateMode, KeeperState, WatchedEvent, WatchedEventType, ZkError, ZooKeeper};

/// What a session reports to its owner.
#[derive(Debug, Clone)]
pub enum ZkEvent {
    /// A watched node changed, was created or was deleted.
    Changed(String),
    /// The session's state changed (connected, disconnected, expired).
    Session(KeeperState),
}

/// How long ZooKeeper keeps our session (and its ephemeral nodes) after we go silent.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ZkSession {
    zk: Arc<ZooKeeper>,
}

/// What kind of node `create` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    /// Deleted by ZooKeeper when the session that made it ends.
    Ephemeral,
}

impl ZkSession {
    /// Connects to `servers` (`host:port[,host:port...]`) and waits at most `timeout` for a
    /// live session.
    pub fn connect(servers: &str, timeout: Duration) -> Result<ZkSession> {
        ZkSession::connect_watching(servers, timeout, |_| {})
    }

    /// Like `connect`; `on_event` hears every watch that fires (see `get_watched`) and
    /// every change of the session's state, on the client's event thread.
    pub fn connect_watching(
        servers: &str,
        timeout: Duration,
        on_event: impl Fn(ZkEvent) + Send + 'static,
    ) -> Result<ZkSession> {
        let address_error = || Error::ZkAddress {
            servers: servers.to_string(),
        };
        if servers.trim().is_empty() {
            return Err(address_error());
        }
        let watcher = move |event: WatchedEvent| {
            on_event(match event.path {
                Some(path) if event.event_type != WatchedEventType::None => ZkEvent::Changed(path),
                _ => ZkEvent::Session(event.keeper_state),
            })
        };
        let zk =
            ZooKeeper::connect(servers, SESSION_TIMEOUT, watcher).map_err(|_| address_error())?;
        let zk = Arc::new(zk);
        let (done, answer) = mpsc::channel();
        let probe = Arc::clone(&zk);
        let deadline = Instant::now() + timeout;
        thread::Builder::new()
            .name("zk-connect-probe".into())
            .spawn(move || loop {
                // Until the first session exists the client answers ConnectionLoss at once;
                // once it is connecting, the request waits for the session.
                match probe.exists("/", false) {
                    Err(ZkError::ConnectionLoss) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(20))
                    }
                    result => {
                        let _ = done.send(result);
                        return;
                    }
                }
            })
            .map_err(|err| Error::invalid(format!("cannot start a thread: {err}")))?;
        match answer.recv_timeout(timeout) {
            Ok(Ok(_)) => Ok(ZkSession { zk }),
            Ok(Err(ZkError::ConnectionLoss)) | Err(_) => Err(Error::ZkUnreachable {
                servers: servers.to_string(),
                waited: timeout,
            }),
            Ok(Err(code)) => Err(Error::Zk {
                action: "connect to",
                path: servers.to_string(),
                code,
            }),
        }
    }

    /// The node's bytes and version, or None when it does not exist.
    pub fn get(&self, path: &str) -> Result<Option<(Vec<u8>, i32)>> {
        match self.zk.get_data(path, false) {
            Ok((data, stat)) => Ok(Some((data, stat.version))),
            Err(ZkError::NoNode) => Ok(None),
            Err(code) => Err(zk_error("read", path, code)),
        }
    }

    /// Like `get`, and leaves a watch on the node: its next change, creation or deletion
    /// is reported to the session's `on_event`, once.
    pub fn get_watched(&self, path: &str) -> Result<Option<(Vec<u8>, i32)>> {
        loop {
            match self.zk.get_data(path, true) {
                Ok((data, stat)) => return Ok(Some((data, stat.version))),
                Err(ZkError::NoNode) => {}
                Err(code) => return Err(zk_error("read", path, code)),
            }
            // Missing: watch for its creation. If it appeared in between, read it again.
            match self.zk.exists(path, true) {
                Ok(None) => return Ok(None),
                Ok(Some(_)) => continue,
                Err(code) => return Err(zk_error("watch", path, code)),
            }
        }
    }

    /// Creates the node; false when it already exists.
    pub fn create(&self, path: &str, data: Vec<u8>, kind: NodeKind) -> Result<bool> {
        let mode = match kind {
            NodeKind::Persistent => CreateMode::Persistent,
            NodeKind::Ephemeral => CreateMode::Ephemeral,
        };
        match self.zk.create(path, data, Acl::open_unsafe().clone(), mode) {
            Ok(_) => Ok(true),
            Err(ZkError::NodeExists) => Ok(false),
            Err(ZkError::NoNode) => Err(Error::NotInitialized {
                path: parent(path).to_string(),
            }),
            Err(code) => Err(zk_error("create", path, code)),
        }
    }

    /// Writes the node if its version is still `version`; false on a version conflict.
    pub fn set(&self, path: &str, data: Vec<u8>, version: i32) -> Result<bool> {
        match self.zk.set_data(path, data, Some(version)) {
            Ok(_) => Ok(true),
            Err(ZkError::BadVersion) => Ok(false),
            Err(ZkError::NoNode) => Err(Error::NotInitialized {
                path: path.to_string(),
            }),
            Err(code) => Err(zk_error("write", path, code)),
        }
    }

    /// Deletes the node whatever its version; false when it did not exist.
    pub fn delete(&self, path: &str) -> Result<bool> {
        match self.zk.delete(path, None) {
            Ok(()) => Ok(true),
            Err(ZkError::NoNode) => Ok(false),
            Err(code) => Err(zk_error("delete", path, code)),
        }
    }

    /// Creates `path` and every missing parent as empty persistent nodes.
    pub fn create_path(&self, path: &str) -> Result<()> {
        let mut prefix = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(segment);
            if self
                .zk
                .exists(&prefix, false)
                .map_err(|c| zk_error("check", &prefix, c))?
                .is_none()
            {
                self.create(&prefix, Vec::new(), NodeKind::Persistent)?;
            }
        }
        Ok(())
    }
}

impl Drop for ZkSession {
    fn drop(&mut self) {
        // Ends the session now, so its ephemeral nodes go at once instead of after the
        // session timeout.
        let _ = self.zk.close();
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn zk_error(action: &'static str, path: &str, code: ZkError) -> Error {
    Error::Zk {
        action,
        path: path.to_string(),
        code,
    }
}
