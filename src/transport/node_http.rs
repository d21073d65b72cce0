//! `ureq` over `may::net::TcpStream`: the HTTP client the coordinator uses for nodes.
//!
//! ureq 3 lets an agent be built from a `Connector` (makes a `Transport`) and a
//! `Resolver`. Ours connect with `may` sockets, and resolve nothing: node addresses are
//! resolved when a configuration snapshot is built, so URLs carry IP addresses and the
//! upload path never waits on DNS (ureq's default resolver would also start a thread per
//! lookup when a timeout is set).

use crate::affinity::{self, Home};
use may::net::TcpStream;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
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

/// Connects with `may` sockets, each moved to its pool's home worker (see `affinity`).
#[derive(Debug)]
pub struct MayConnector {
    home: Home,
}

impl<In: Transport> Connector<In> for MayConnector {
    type Out = MayTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<In>,
    ) -> Result<Option<MayTransport>, ureq::Error> {
        let timeout = details.timeout.not_zero().map(|d| *d);
        let mut last_error = None;
        for addr in details.addrs.iter() {
            let connected = match timeout {
                Some(timeout) => TcpStream::connect_timeout(addr, timeout),
                None => TcpStream::connect(addr),
            };
            match connected {
                Ok(stream) => {
                    let stream = affinity::move_home(stream, self.home)?;
                    stream.set_nodelay(true)?;
                    let config = details.config;
                    let buffers =
                        LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size());
                    return Ok(Some(MayTransport {
                        stream,
                        buffers,
                        held: Vec::new(),
                        read_timeout: None,
                        write_timeout: None,
                        last_checked: None,
                    }));
                }
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                    last_error = Some(ureq::Error::Timeout(ureq::Timeout::Connect))
                }
                Err(err) => last_error = Some(err.into()),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused).into()))
    }
}

pub struct MayTransport {
    stream: TcpStream,
    buffers: LazyBuffers,
    /// Small writes held back until the next write or read (see `transmit_output`).
    held: Vec<u8>,
    /// The timeouts last set on the socket (each set is a system call), rounded up to
    /// 100 ms so that a deadline counting down does not change them on every call.
    read_timeout: Option<Option<Duration>>,
    write_timeout: Option<Option<Duration>>,
    /// When ureq last asked whether the connection is open (see `is_open`).
    last_checked: Option<Instant>,
}

impl fmt::Debug for MayTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MayTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// The time left for one read or write (rounded up to 100 ms), or the timeout error when
/// none is left.
fn time_left(timeout: NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if !timeout.after.is_not_happening() && timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(timeout
        .not_zero()
        .map(|d| Duration::from_millis((d.as_millis() as u64).div_ceil(100).max(1) * 100)))
}

fn io_error(err: io::Error, timeout: NextTimeout) -> ureq::Error {
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ureq::Error::Timeout(timeout.reason),
        _ => err.into(),
    }
}

impl MayTransport {
    /// Writes the held bytes, then the first `amount` bytes of the output buffer.
    fn send_held_and(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let left = Some(time_left(timeout)?);
        if self.write_timeout != left {
            self.stream.set_write_timeout(left.flatten())?;
            self.write_timeout = left;
        }
        let output = &self.buffers.output()[..amount];
        write_both(&mut self.stream, &self.held, output).map_err(|err| io_error(err, timeout))?;
        self.held.clear();
        Ok(())
    }
}

impl Transport for MayTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    /// ureq sends a request head and then each piece of the body, one call each. Sent as
    /// they come, a 1 KiB upload would cost the node two wakeups and us two system calls.
    /// So small pieces are held back and go out with the next piece, in one vectored
    /// write, or before the next read: a client reads only after its whole request is
    /// written, so nothing waits on a held piece.
    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let output = &self.buffers.output()[..amount];
        if self.held.len() + output.len() <= HOLD_BYTES {
            self.held.extend_from_slice(output);
            return Ok(());
        }
        self.send_held_and(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        if !self.held.is_empty() {
            self.send_held_and(0, timeout)?;
        }
        let timeout = timeout.for_read();
        let left = Some(time_left(timeout)?);
        if self.read_timeout != left {
            self.stream.set_read_timeout(left.flatten())?;
            self.read_timeout = left;
        }
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match self.stream.read(input) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => break other.map_err(|err| io_error(err, timeout))?,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // ureq asks twice per request: when the connection goes back to the pool, right
        // after the answer was read, and when it is taken out again. A pooled connection
        // is reusable when the peer neither closed it nor sent anything unasked. Either
        // would be a readiness event, and `may` records every event of a socket in its
        // flag, which each read clears as it begins. A clear flag means no event since
        // the last read, so no system call is needed; this saved one `recvfrom` per
        // upload. (Bytes a node sent unasked in the same burst as its answer land in
        // ureq's buffer with the answer, and ureq drops the connection.)
        //
        // The flag is set only when the socket's worker next polls for events, so a busy
        // worker may not show yet that a node just closed the connection. Nodes close
        // idle connections after seconds (a real node: Node.js's 5 s keep-alive
        // timeout), so the flag is trusted only for a connection last checked less than
        // `TRUST_FLAG_FOR` ago; after a longer rest the socket itself is asked, as it
        // always was.
        let now = Instant::now();
        let recent = self
            .last_checked
            .replace(now)
            .is_some_and(|then| now.duration_since(then) < TRUST_FLAG_FOR);
        let quiet = may::io::AsIoData::as_io_data(&self.stream)
            .io_flag
            .load(Ordering::Acquire)
            == 0;
        if recent && quiet {
            return true;
        }
        // Look. The socket is non-blocking underneath `may`.
        let mut probe = [0u8; 1];
        match (&mut self.stream.inner()).read(&mut probe) {
            Err(err) => err.kind() == io::ErrorKind::WouldBlock,
            // The peer closed it.
            Ok(0) => false,
            // The peer sent bytes nobody asked for: the connection is out of step.
            Ok(_unasked) => false,
        }
    }
}

/// How long after its last check a quiet node connection is taken as open on `may`'s
/// readiness flag alone (see `MayTransport::is_open`): well below the idle timeouts
/// nodes close connections after.
const TRUST_FLAG_FOR: Duration = Duration::from_millis(500);

/// Writes held back by `MayTransport` at most (a request head and a small body).
const HOLD_BYTES: usize = 16 * 1024;

/// Writes all of `first` then all of `second`, in as few system calls as the socket allows.
fn write_both(stream: &mut TcpStream, mut first: &[u8], mut second: &[u8]) -> io::Result<()> {
    while !first.is_empty() || !second.is_empty() {
        let written = match stream.write_vectored(&[IoSlice::new(first), IoSlice::new(second)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let from_first = written.min(first.len());
        first = &first[from_first..];
        second = &second[written - from_first..];
    }
    Ok(())
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

/// A ureq agent for node requests, with pooling (keep-alive to nodes). The coordinator's
/// (`Role::Uploads`) connects with `may` sockets, since its requests run in coroutines.
/// The replicator's (`Role::Copies`) runs on plain threads and connects with std sockets:
/// a `may` socket used outside a coroutine parks its thread on a futex until `may`'s I/O
/// thread sees the socket ready, a thread switch on every read that a blocking read does
/// not need (measured: most of the replicator's CPU per copy went to those switches).
pub fn agent(connect_timeout: Duration, total_timeout: Duration, role: Role) -> ureq::Agent {
    agent_at(connect_timeout, total_timeout, role, Home::default())
}

/// `agent`, whose `may` sockets (`Role::Uploads`) are registered with the worker `home`.
fn agent_at(
    connect_timeout: Duration,
    total_timeout: Duration,
    role: Role,
    home: Home,
) -> ureq::Agent {
    let (input, output, user_agent) = match role {
        Role::Uploads => (16 * 1024, 128 * 1024, "backpack-coordinator"),
        Role::Copies => (128 * 1024, 128 * 1024, "backpack-replicator"),
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(connect_timeout))
        .timeout_global(Some(total_timeout))
        // The pool is searched linearly for each request: keep it modest.
        .max_idle_connections(256)
        .max_idle_connections_per_host(64)
        .input_buffer_size(input)
        .output_buffer_size(output)
        .user_agent(user_agent)
        .build();
    match role {
        Role::Uploads => ureq::Agent::with_parts(config, MayConnector { home }, LiteralResolver),
        Role::Copies => ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::TcpConnector::default(),
            LiteralResolver,
        ),
    }
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
    connect_timeout: Duration,
    total_timeout: Duration,
    role: Role,
    /// Per node: `POOLS_PER_HOME` agents for each home, home by home.
    agents: parking_lot::RwLock<std::collections::HashMap<SocketAddr, Vec<ureq::Agent>>>,
    turn: std::sync::atomic::AtomicUsize,
}

/// Agents (connection pools) per node address and home worker.
const POOLS_PER_HOME: usize = 2;

impl NodeAgents {
    pub fn new(connect_timeout: Duration, total_timeout: Duration, role: Role) -> NodeAgents {
        NodeAgents {
            connect_timeout,
            total_timeout,
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
                    agent_at(self.connect_timeout, self.total_timeout, self.role, home)
                })
                .collect()
        }))
    }
}

#[cfg(test)]
#[path = "node_http_tests.rs"]
mod tests;
