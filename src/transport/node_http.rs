//! `ureq` over `may::net::TcpStream`: the HTTP client the coordinator uses for nodes.
//!
//! ureq 3 lets an agent be built from a `Connector` (makes a `Transport`) and a
//! `Resolver`. Ours connect with `may` sockets, and resolve nothing: node addresses are
//! resolved when a configuration snapshot is built, so URLs carry IP addresses and the
//! upload path never waits on DNS (ureq's default resolver would also start a thread per
//! lookup when a timeout is set).

use super::node_transport::{Patience, PatientTransport, SendGate};
use crate::affinity::{self, Home};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};

/// Resolves only literal `ip:port` authorities.
#[derive(Debug)]
pub struct LiteralResolver;

impl Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _: &ureq::config::Config,
        _: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addr: Option<SocketAddr> = uri.authority().and_then(|a| a.as_str().parse().ok());
        match addr {
            Some(addr) => {
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            None => Err(ureq::Error::BadUri(format!(
                "{uri}: expected an ip:port address"
            ))),
        }
    }
}

/// Connects to the first address that answers within the connect timeout, with `open`.
fn connect_first<S>(
    details: &ConnectionDetails,
    open: impl Fn(&SocketAddr, Option<Duration>) -> io::Result<S>,
) -> Result<S, ureq::Error> {
    let timeout = details.timeout.not_zero().map(|d| *d);
    let mut last_error = None;
    for addr in details.addrs.iter() {
        match open(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                last_error = Some(ureq::Error::Timeout(ureq::Timeout::Connect))
            }
            Err(err) => last_error = Some(err.into()),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused).into()))
}

fn buffers(details: &ConnectionDetails) -> LazyBuffers {
    let config = details.config;
    LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size())
}

/// Connects with `may` sockets, each moved to its pool's home worker (see `affinity`).
pub struct MayConnector {
    home: Home,
    patience: Patience,
    gate: Option<Arc<dyn SendGate>>,
}

impl std::fmt::Debug for MayConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MayConnector").finish()
    }
}

impl<In: Transport> Connector<In> for MayConnector {
    type Out = PatientTransport<may::net::TcpStream>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let stream = connect_first(details, |addr, timeout| {
            let stream = match timeout {
                Some(timeout) => may::net::TcpStream::connect_timeout(addr, timeout)?,
                None => may::net::TcpStream::connect(addr)?,
            };
            let stream = affinity::move_home(stream, self.home)?;
            stream.set_nodelay(true)?;
            Ok(stream)
        })?;
        Ok(Some(
            PatientTransport::new(stream, buffers(details), self.patience).gated(self.gate.clone()),
        ))
    }
}

/// What a node connection is used for, which sets its buffers. Each pooled connection
/// keeps its own, so they add up: with ureq's default of 128 KiB each way, the peak RSS
/// of a c=64 sink benchmark was about 100 MiB; a 16 KiB input buffer took it to 90 MiB at
/// the same CPU per upload. A 64 KiB output buffer saved 5 MiB more but cost about 8 % more
/// CPU at 64 KiB uploads (0.117 against 0.108 ms, medians of three runs each).
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// The coordinator's PUTs: bodies go out in 128 KiB pieces, answers are small.
    Uploads,
    /// The replicator's copies: GET bodies come in as well as go out.
    Copies,
}

/// The bounds of a node request: connecting, silence (`Patience`), and the whole request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect: Duration,
    pub patience: Patience,
    pub total: Duration,
}

/// A ureq agent for node requests, with pooling (keep-alive to nodes), on `may` sockets:
/// its requests are made in coroutines (the coordinator's uploads, the replicator's copy
/// lanes). Used outside a coroutine, a `may` socket parks its thread on a futex until
/// `may`'s worker sees the socket ready: a thread switch on every read.
pub fn agent(limits: Limits, role: Role) -> ureq::Agent {
    agent_at(limits, role, Home::default(), None)
}

/// An agent for copies whose connections ask `gate` before every write.
pub fn gated_copies_agent(limits: Limits, gate: Arc<dyn SendGate>) -> ureq::Agent {
    agent_at(limits, Role::Copies, Home::default(), Some(gate))
}

/// `agent`, whose `may` sockets (`Role::Uploads`) are registered with the worker `home`.
fn agent_at(
    limits: Limits,
    role: Role,
    home: Home,
    gate: Option<Arc<dyn SendGate>>,
) -> ureq::Agent {
    let (input, output, user_agent) = match role {
        Role::Uploads => (16 * 1024, 128 * 1024, "backpack-coordinator"),
        Role::Copies => (128 * 1024, 128 * 1024, "backpack-replicator"),
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(limits.connect))
        .timeout_global(Some(limits.total))
        // The pool is searched linearly for each request: keep it modest.
        .max_idle_connections(256)
        .max_idle_connections_per_host(64)
        .input_buffer_size(input)
        .output_buffer_size(output)
        .user_agent(user_agent)
        .build();
    let connector = MayConnector {
        home,
        patience: limits.patience,
        gate,
    };
    ureq::Agent::with_parts(config, connector, LiteralResolver)
}

/// The coordinator's node connections: a few ureq agents, so a few pools, per node
/// address and home worker.
///
/// ureq keeps an agent's idle connections in one list and, each time a connection goes
/// back, recounts every host's connections across the whole list by comparing keys
/// (`update_position_per_host`): with every node behind one agent that work grows with
/// the nodes times the idle connections, and it showed as 5-6 % of the coordinator's CPU
/// at 1 KiB and c=64 (`Authority::eq`, `Pool::purge`). With agents per node, each list
/// holds one host, and requests take the node's agents in turn, so each list is shorter
/// again. Each worker thread has its own agents (`affinity`): an upload takes those of
/// its client's home, whose sockets wake it on the same thread. Agents of nodes that left
/// the cluster stay: a few bytes each.
pub struct NodeAgents {
    limits: Limits,
    role: Role,
    /// Per node: `POOLS_PER_HOME` agents for each home, home by home.
    agents: parking_lot::RwLock<std::collections::HashMap<SocketAddr, Vec<ureq::Agent>>>,
    turn: std::sync::atomic::AtomicUsize,
}

/// Agents (connection pools) per node address and home worker.
const POOLS_PER_HOME: usize = 2;

impl NodeAgents {
    pub fn new(limits: Limits, role: Role) -> NodeAgents {
        NodeAgents {
            limits,
            role,
            agents: Default::default(),
            turn: Default::default(),
        }
    }

    /// An agent for the node at `addr` whose connections live at `home` (a clone: it
    /// shares that pool), the home's agents in turn. The lock is never held across a
    /// request.
    pub fn for_node(&self, addr: SocketAddr, home: Home) -> ureq::Agent {
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % POOLS_PER_HOME;
        let pick = |agents: &Vec<ureq::Agent>| {
            let homes = agents.len() / POOLS_PER_HOME;
            agents[(home.0 % homes) * POOLS_PER_HOME + turn].clone()
        };
        if let Some(agents) = self.agents.read().get(&addr) {
            return pick(agents);
        }
        pick(self.agents.write().entry(addr).or_insert_with(|| {
            (0..affinity::workers() * POOLS_PER_HOME)
                .map(|index| {
                    let home = Home(index / POOLS_PER_HOME);
                    agent_at(self.limits, self.role, home, None)
                })
                .collect()
        }))
    }
}

impl NodeAgents {
    /// Drops the node's pools: its idle connections close as their last user lets go,
    /// and new ones are made. For a node that went silent: its other pooled connections
    /// are as dead as the one that timed out, and each would cost an upload a timeout.
    pub fn forget(&self, addr: SocketAddr) {
        self.agents.write().remove(&addr);
    }
}

/// Reads a node's answer body to its end (at most `at_most` bytes) and drops it, which is
/// what returns the connection to the agent's pool. Answers are a few bytes: a small
/// buffer on the stack, not `io::copy`, which zeroes an 8 KiB buffer on every call.
pub fn drain_answer(mut body: impl io::Read, at_most: usize) -> io::Result<()> {
    let mut scratch = [0u8; 512];
    let mut left = at_most;
    while left > 0 {
        let want = left.min(scratch.len());
        match body.read(&mut scratch[..want]) {
            Ok(0) => return Ok(()),
            Ok(n) => left -= n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "node_http_tests.rs"]
mod tests;
