//! The `redis` crate's typed API over a `may` socket.
//!
//! `redis::ConnectionLike` is the seam: it takes packed commands and returns parsed
//! values. We write the bytes to a `may::net::TcpStream` and parse replies with
//! `redis::Parser`, so `redis::cmd("SADD")...query(&mut conn)` parks the coroutine, not the
//! worker thread. A small pool per server keeps connections open between uploads.

use super::peer::{worth_a_fresh_try, Cooldown};
use crate::affinity::{self, Home};
use may::net::TcpStream;
use parking_lot::Mutex;
use redis::{ConnectionLike, RedisResult, Value};
use std::io::{self, BufReader, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct RedisConnection {
    writer: TcpStream,
    reader: BufReader<ReadSide>,
    parser: redis::Parser,
    broken: bool,
    /// The read and write timeout its sockets have.
    timeout: Duration,
}

impl RedisConnection {
    /// A connection whose socket (both its halves) `may` registers with worker `home`.
    pub fn connect(addr: SocketAddr, timeout: Duration, home: Home) -> io::Result<RedisConnection> {
        let writer = affinity::move_home(TcpStream::connect_timeout(&addr, timeout)?, home)?;
        let reader = affinity::move_home(writer.try_clone()?, home)?;
        writer.set_nodelay(true)?;
        let mut conn = RedisConnection {
            reader: BufReader::new(ReadSide {
                socket: reader,
                timeout,
            }),
            writer,
            parser: redis::Parser::new(),
            broken: false,
            timeout: Duration::ZERO,
        };
        conn.fit(timeout)?;
        Ok(conn)
    }

    /// How long one read or write may wait (system calls only when it changes).
    fn fit(&mut self, timeout: Duration) -> io::Result<()> {
        if self.timeout != timeout {
            for stream in [&self.writer, &self.reader.get_ref().socket] {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
            }
            self.reader.get_mut().timeout = timeout;
            self.timeout = timeout;
        }
        Ok(())
    }

    /// Sends a packed command without waiting for its reply (see `receive`).
    pub fn send(&mut self, packed: &[u8]) -> RedisResult<()> {
        let sent = self
            .writer
            .write_all(packed)
            .map_err(redis::RedisError::from);
        self.broken |= sent.is_err();
        sent
    }

    /// The worker this connection's replies wake.
    fn home(&self) -> Home {
        affinity::home_of(&self.reader.get_ref().socket)
    }

    /// Reads the reply to a command sent with `send`.
    pub fn receive(&mut self) -> RedisResult<Value> {
        let value = self.parser.parse_value(&mut self.reader);
        self.broken |= value.is_err();
        match value? {
            Value::ServerError(err) => Err(err.into()),
            value => Ok(value),
        }
    }

    /// Reads `replies` replies. Every one is read, also after an error reply (a server's
    /// error answers one command of a pipeline, and the answers to the others still come),
    /// so that none is left behind for the next request on this pooled connection; the
    /// first error is the result. A connection that broke is not read further.
    pub fn receive_all(&mut self, replies: usize) -> RedisResult<Vec<Value>> {
        let mut values = Vec::with_capacity(replies);
        let mut first_error = None;
        for _ in 0..replies {
            if !self.is_open() {
                return Err(first_error.unwrap_or_else(closed));
            }
            match self.receive() {
                Ok(value) => values.push(value),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(values), Err)
    }

    /// Sends a packed command (or pipeline) and reads `replies` replies.
    fn exchange(&mut self, packed: &[u8], replies: usize) -> RedisResult<Vec<Value>> {
        self.send(packed)?;
        self.receive_all(replies)
    }
}

/// What a read on a connection that already broke ends with.
fn closed() -> redis::RedisError {
    redis::RedisError::from(io::Error::from(io::ErrorKind::BrokenPipe))
}

/// The reading half of a connection. In a coroutine a read parks the coroutine (`may`).
/// On a plain thread (the replicator's workers, the admin commands) `may` would park the
/// thread until its event loop wakes it: two thread switches per reply. There the read
/// waits in `poll` instead, and `may`'s read then finds the reply at its first try.
struct ReadSide {
    socket: TcpStream,
    timeout: Duration,
}

impl io::Read for ReadSide {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !may::coroutine::is_coroutine() {
            wait_readable(self.socket.as_raw_fd(), self.timeout)?;
        }
        self.socket.read(buf)
    }
}

/// Waits until `socket` has something to read (or was closed), at most `timeout`.
fn wait_readable(socket: RawFd, timeout: Duration) -> io::Result<()> {
    let mut poll = libc::pollfd {
        fd: socket,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: one pollfd of an open socket of ours, for the call's length.
        match unsafe { libc::poll(&mut poll, 1, millis) } {
            0 => return Err(io::ErrorKind::TimedOut.into()),
            n if n > 0 => return Ok(()),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.send(cmd)?;
        self.receive()
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let values = self.exchange(cmd, offset + count)?;
        Ok(values.into_iter().skip(offset).collect())
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn check_connection(&mut self) -> bool {
        redis::cmd("PING").query::<String>(self).is_ok()
    }

    fn is_open(&self) -> bool {
        !self.broken
    }
}

/// How long a server that failed is asked last (see `failed_recently`).
const COOLDOWN: Duration = Duration::from_secs(5);

/// How long a server that went silent gets to answer, instead of the whole timeout, until
/// it answers again. A Redis server on a working network answers in well under a
/// millisecond; a silent one would otherwise cost every write the whole timeout (one
/// silent server of two held every upload for it, though the other took the items).
const SILENT_GRACE: Duration = Duration::from_millis(100);

/// Open connections to one Redis server, reused across requests; kept apart by home
/// worker, so that an upload's wait for a reply resumes it on its own thread
/// (`affinity`).
pub struct RedisPool {
    pub addr: SocketAddr,
    timeout: Duration,
    /// Idle connections, one list per home.
    idle: Vec<Mutex<Vec<RedisConnection>>>,
    cooldown: Mutex<Cooldown>,
    /// Its last exchange timed out (see `SILENT_GRACE`).
    silent: AtomicBool,
}

impl RedisPool {
    pub fn new(addr: SocketAddr, timeout: Duration) -> RedisPool {
        RedisPool {
            addr,
            timeout,
            idle: (0..affinity::workers())
                .map(|_| Default::default())
                .collect(),
            cooldown: Mutex::new(Cooldown::default()),
            silent: AtomicBool::new(false),
        }
    }

    /// Notes how an exchange went, for `failed_recently` and `patience`. A timeout makes
    /// the server silent, and its idle connections are dropped: they wait on the same
    /// silence.
    pub fn record<T>(&self, outcome: &RedisResult<T>) {
        self.cooldown.lock().record(outcome.is_ok(), COOLDOWN);
        match outcome {
            Ok(_) => self.silent.store(false, Ordering::Relaxed),
            Err(err) if err.is_timeout() => {
                if !self.silent.swap(true, Ordering::Relaxed) {
                    for idle in &self.idle {
                        idle.lock().clear();
                    }
                }
            }
            Err(_) => {}
        }
    }

    /// How long the server gets for one read or write: the timeout, or `SILENT_GRACE`
    /// while it is silent.
    fn patience(&self) -> Duration {
        match self.silent.load(Ordering::Relaxed) {
            true => SILENT_GRACE.min(self.timeout),
            false => self.timeout,
        }
    }

    /// True for a few seconds after a command failed: readers ask such a server last.
    pub fn failed_recently(&self) -> bool {
        self.cooldown.lock().is_cooling()
    }

    fn idle_at(&self, home: Home) -> &Mutex<Vec<RedisConnection>> {
        &self.idle[home.0 % self.idle.len()]
    }

    /// Runs `work` on a pooled connection (a new one when none is idle), of the first
    /// home: for the commands off the upload path. The pool's lock is held only to take
    /// or return a connection, never across I/O.
    pub fn with<T>(&self, work: impl Fn(&mut RedisConnection) -> RedisResult<T>) -> RedisResult<T> {
        let pooled = self.idle_at(Home::default()).lock().pop();
        let pooled = pooled.and_then(|mut conn| conn.fit(self.patience()).ok().map(|()| conn));
        match pooled {
            Some(mut conn) => match work(&mut conn) {
                // Our commands are idempotent set edits: a retry is harmless.
                Err(err) if !conn.is_open() && worth_a_fresh_try(true, err.is_timeout()) => {
                    self.fresh(&work)
                }
                result => self.keep(conn, result),
            },
            None => self.fresh(&work),
        }
    }

    /// An idle pooled connection of `home` (`true`), or a new one there (`false`).
    pub fn checkout(&self, home: Home) -> RedisResult<(RedisConnection, bool)> {
        let pooled = self.idle_at(home).lock().pop();
        if let Some(mut conn) = pooled {
            if conn.fit(self.patience()).is_ok() {
                return Ok((conn, true));
            }
        }
        Ok((
            RedisConnection::connect(self.addr, self.patience(), home)?,
            false,
        ))
    }

    /// Returns a connection to the pool, unless it is broken.
    pub fn checkin(&self, conn: RedisConnection) {
        if conn.is_open() {
            let mut idle = self.idle_at(conn.home()).lock();
            if idle.len() < 64 {
                idle.push(conn);
            }
        }
    }

    fn fresh<T>(&self, work: &impl Fn(&mut RedisConnection) -> RedisResult<T>) -> RedisResult<T> {
        let mut conn = RedisConnection::connect(self.addr, self.patience(), Home::default())?;
        let result = work(&mut conn);
        self.keep(conn, result)
    }

    fn keep<T>(&self, conn: RedisConnection, result: RedisResult<T>) -> RedisResult<T> {
        self.checkin(conn);
        result
    }
}
