//! The ZooKeeper session: bounded calls, watches, and state changes reported to the owner.
//!
//! Built on `zookeeper-client`, an async client that keeps its session across reconnects
//! (re-sending its watches to the new server), backs off while no server answers, and
//! reports state changes. We drive it from plain threads: the client's connection runs on
//! one small tokio worker thread shared by the process, and every call here blocks its
//! caller until the answer or the operation timeout, whichever comes first. So no call can
//! hang, and no `may` worker ever runs ZooKeeper code.
//!
//! (The `zookeeper` crate was tried first and dropped: its `connect()` returns Ok with no
//! server up, its reconnect loop spins a core while no server answers, it never recovers
//! once its state is `Closed`, and its calls can block without bound.)

use crate::error::{Error, Result};
use crate::state::endpoint::parse_endpoint_list;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use zookeeper_client::{Acls, Client, CreateMode, EventType, SessionState};

mod batch;
mod counts;
mod multi;
mod probe;

pub use counts::{counts, ZkCounts};
pub use probe::ServerProbe;

/// How long ZooKeeper keeps a session (and its ephemeral nodes) after its client goes
/// silent, unless the caller asks for another.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// What a session reports to its owner.
#[derive(Debug, Clone)]
pub enum ZkEvent {
    /// A watched node changed, was created or was deleted (the watch is used up).
    Changed(String),
    /// The session's state changed: `Disconnected`, `SyncConnected` (again), or a
    /// terminal `Expired`/`Closed`/`AuthFailed` after which a new session is needed.
    Session(SessionState),
}

/// What kind of node `create` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    /// Deleted by ZooKeeper when the session that made it ends.
    Ephemeral,
}

type EventSink = Arc<dyn Fn(ZkEvent) + Send + Sync>;

pub struct ZkSession {
    client: Client,
    timeout: Duration,
    on_event: EventSink,
}

/// The tokio runtime the clients' connections run on: one worker thread for the process.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("zookeeper-io")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|err| Error::invalid(format!("cannot start the ZooKeeper client thread: {err}")))
}

/// Checks `host:port[,host:port...][/chroot]` before the client sees it.
fn check_connect_string(servers: &str) -> Result<()> {
    let hosts = servers.split('/').next().unwrap_or("");
    parse_endpoint_list(hosts)
        .map(|_| ())
        .map_err(|_| Error::ZkAddress {
            servers: servers.to_string(),
        })
}

/// Fails at once when no host of the connect string resolves: the client would otherwise
/// try names that have no address until the timeout, and say only that nothing answered.
fn check_hosts_resolve(servers: &str) -> Result<()> {
    use std::net::ToSocketAddrs;
    let hosts: Vec<&str> = servers.split('/').next().unwrap_or("").split(',').collect();
    let resolves = |host: &&str| host.to_socket_addrs().is_ok_and(|mut a| a.next().is_some());
    if hosts.iter().any(resolves) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "cannot reach ZooKeeper at {servers}: no host name of it resolves"
    )))
}

impl ZkSession {
    /// Connects to `servers` and waits at most `timeout` for a session. `timeout` also
    /// bounds every later call.
    pub fn connect(servers: &str, timeout: Duration) -> Result<ZkSession> {
        // A server that drops every packet must not take the whole timeout: each server
        // tried gets its share of it (a second at least), so a command finds a server
        // that answers while one is cut off.
        let servers_named = servers.split('/').next().unwrap_or("").split(',').count();
        let each = (timeout / servers_named.max(1) as u32).max(Duration::from_secs(1));
        ZkSession::open(servers, timeout, each.min(timeout), SESSION_TIMEOUT, |_| {})
    }

    /// Like `connect`; `on_event` hears every watch that fires (see `get_watched`) and
    /// every change of the session's state, on the client's thread: it must not block.
    pub fn connect_watching(
        servers: &str,
        timeout: Duration,
        session_timeout: Duration,
        on_event: impl Fn(ZkEvent) + Send + Sync + 'static,
    ) -> Result<ZkSession> {
        let each = timeout.min(session_timeout);
        ZkSession::open(servers, timeout, each, session_timeout, on_event)
    }

    /// `connect_watching`, with `each` the time one server may take to answer a
    /// connection (and, once connected, the silence after which the client moves on).
    fn open(
        servers: &str,
        timeout: Duration,
        each: Duration,
        session_timeout: Duration,
        on_event: impl Fn(ZkEvent) + Send + Sync + 'static,
    ) -> Result<ZkSession> {
        check_connect_string(servers)?;
        check_hosts_resolve(servers)?;
        let runtime = runtime()?;
        let connector = Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(each);
        let unreachable = || Error::ZkUnreachable {
            servers: servers.to_string(),
            waited: timeout,
        };
        let client = match runtime
            .block_on(async { tokio::time::timeout(timeout, connector.connect(servers)).await })
        {
            Ok(Ok(client)) => client,
            Ok(Err(zookeeper_client::Error::BadArguments(_))) => {
                return Err(Error::ZkAddress {
                    servers: servers.to_string(),
                })
            }
            Ok(Err(_)) | Err(_) => return Err(unreachable()),
        };
        let on_event: EventSink = Arc::new(on_event);
        let mut states = client.state_watcher();
        let report = Arc::clone(&on_event);
        runtime.spawn(async move {
            loop {
                let state = states.changed().await;
                report(ZkEvent::Session(state));
                if state.is_terminated() {
                    break;
                }
            }
        });
        Ok(ZkSession {
            client,
            timeout,
            on_event,
        })
    }

    /// Runs one call under the operation timeout.
    fn call<T>(
        &self,
        action: &'static str,
        path: &str,
        call: impl Future<Output = Result<T, zookeeper_client::Error>>,
    ) -> Result<T, ZkFailure> {
        self.call_within(self.timeout, action, path, call)
    }

    /// `call`, waiting `wait` for the answer.
    fn call_within<T>(
        &self,
        wait: Duration,
        action: &'static str,
        path: &str,
        call: impl Future<Output = Result<T, zookeeper_client::Error>>,
    ) -> Result<T, ZkFailure> {
        let runtime = runtime().map_err(ZkFailure::Other)?;
        match action {
            "read" | "watch" => counts::read(1),
            _ => counts::written(1),
        }
        // The timer must be made inside the runtime, hence the async block.
        match runtime.block_on(async { tokio::time::timeout(wait, call).await }) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(code)) => Err(ZkFailure::Code(code, action, path.to_string())),
            Err(_) => Err(ZkFailure::Other(Error::Zk {
                action,
                path: path.to_string(),
                reason: format!("no answer within {}s", wait.as_secs_f64()),
            })),
        }
    }

    /// The node's bytes and version, or None when it does not exist.
    pub fn get(&self, path: &str) -> Result<Option<(Vec<u8>, i32)>> {
        match self.call("read", path, self.client.get_data(path)) {
            Ok((data, stat)) => Ok(Some((data, stat.version))),
            Err(ZkFailure::Code(zookeeper_client::Error::NoNode, ..)) => Ok(None),
            Err(failure) => Err(failure.into()),
        }
    }

    /// The node's bytes and the id of the session that owns it (0 unless ephemeral), or
    /// None when it does not exist.
    pub fn get_with_owner(&self, path: &str) -> Result<Option<(Vec<u8>, i64)>> {
        match self.call("read", path, self.client.get_data(path)) {
            Ok((data, stat)) => Ok(Some((data, stat.ephemeral_owner))),
            Err(ZkFailure::Code(zookeeper_client::Error::NoNode, ..)) => Ok(None),
            Err(failure) => Err(failure.into()),
        }
    }

    /// Like `get`, and leaves a watch on the node: its next change, creation or deletion
    /// is reported to `on_event` as `ZkEvent::Changed(path)`, once.
    pub fn get_watched(&self, path: &str) -> Result<Option<(Vec<u8>, i32)>> {
        loop {
            match self.call("read", path, self.client.get_and_watch_data(path)) {
                Ok((data, stat, watcher)) => {
                    self.forward(path, watcher)?;
                    return Ok(Some((data, stat.version)));
                }
                Err(ZkFailure::Code(zookeeper_client::Error::NoNode, ..)) => {}
                Err(failure) => return Err(failure.into()),
            }
            // Missing: watch for its creation. If it appeared in between, read it again.
            let (stat, watcher) =
                self.call("watch", path, self.client.check_and_watch_stat(path))?;
            if stat.is_none() {
                self.forward(path, watcher)?;
                return Ok(None);
            }
        }
    }

    /// Reports the watch's event, when it comes, to `on_event`.
    fn forward(&self, path: &str, watcher: zookeeper_client::OneshotWatcher) -> Result<()> {
        let (report, path) = (Arc::clone(&self.on_event), path.to_string());
        runtime()?.spawn(async move {
            let event = watcher.changed().await;
            if event.event_type != EventType::Session {
                counts::watch_fired();
                report(ZkEvent::Changed(path));
            }
        });
        Ok(())
    }

    /// Creates the node; false when it already exists.
    pub fn create(&self, path: &str, data: Vec<u8>, kind: NodeKind) -> Result<bool> {
        let mode = match kind {
            NodeKind::Persistent => CreateMode::Persistent,
            NodeKind::Ephemeral => CreateMode::Ephemeral,
        };
        let options = mode.with_acls(Acls::anyone_all());
        match self.call("create", path, self.client.create(path, &data, &options)) {
            Ok(_) => Ok(true),
            Err(ZkFailure::Code(zookeeper_client::Error::NodeExists, ..)) => Ok(false),
            Err(ZkFailure::Code(zookeeper_client::Error::NoNode, ..)) => {
                Err(Error::NotInitialized {
                    path: parent(path).to_string(),
                })
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// Writes the node if its version is still `version`; false on a version conflict.
    pub fn set(&self, path: &str, data: Vec<u8>, version: i32) -> Result<bool> {
        match self.call(
            "write",
            path,
            self.client.set_data(path, &data, Some(version)),
        ) {
            Ok(_) => Ok(true),
            Err(ZkFailure::Code(zookeeper_client::Error::BadVersion, ..)) => Ok(false),
            Err(ZkFailure::Code(zookeeper_client::Error::NoNode, ..)) => {
                Err(Error::NotInitialized {
                    path: path.to_string(),
                })
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// Deletes the node whatever its version; false when it did not exist.
    pub fn delete(&self, path: &str) -> Result<bool> {
        match self.call("delete", path, self.client.delete(path, None)) {
            Ok(()) => Ok(true),
            Err(ZkFailure::Code(zookeeper_client::Error::NoNode, ..)) => Ok(false),
            Err(failure) => Err(failure.into()),
        }
    }

    /// Creates `path` and every missing parent as empty persistent nodes.
    pub fn create_path(&self, path: &str) -> Result<()> {
        let mut prefix = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(segment);
            self.create(&prefix, Vec::new(), NodeKind::Persistent)?;
        }
        Ok(())
    }

    /// The session's id, as ZooKeeper knows it.
    pub fn session_id(&self) -> i64 {
        self.client.session_id().0
    }

    /// The session timeout ZooKeeper granted (it bounds what was asked for by its
    /// `minSessionTimeout` and `maxSessionTimeout`).
    pub fn granted_timeout(&self) -> Duration {
        self.client.session_timeout()
    }

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        self.client.state()
    }
}

/// A failed call: the client's error code (which callers may expect, like `NoNode`),
/// or anything else.
enum ZkFailure {
    Code(zookeeper_client::Error, &'static str, String),
    Other(Error),
}

impl From<ZkFailure> for Error {
    fn from(failure: ZkFailure) -> Error {
        match failure {
            ZkFailure::Code(code, action, path) => Error::Zk {
                action,
                path,
                reason: code.to_string(),
            },
            ZkFailure::Other(err) => err,
        }
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}
