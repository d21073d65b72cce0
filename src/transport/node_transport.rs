//! One connection to a node, as ureq's `Transport`: bounded by how a silent node shows.
//!
//! ureq bounds a whole request (`--node-timeout`), which must be long enough for a large
//! body on a slow link. A node that goes silent (its host frozen, its packets dropped)
//! would hold an upload, and its body, for all of it. Two bounds catch silence without
//! cutting a transfer that moves:
//! - *progress*: every read and write must move a byte within `Patience::progress`; a
//!   body that flows, however slowly, never trips it;
//! - *answer*: once a request is sent, its answer must start within
//!   `Patience::answer`. A body small enough for the socket buffers is "sent" at once,
//!   and a frozen host's kernel still takes bytes, so this is what catches them.
//!
//! The transport runs on `may` sockets: the coordinator's uploads and the replicator's
//! copies run in coroutines. `NodeStream` is what it needs of one beyond reading and
//! writing.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{Buffers, LazyBuffers, NextTimeout, Transport};

/// How long a node may be silent (see the module's comment).
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub progress: Duration,
    pub answer: Duration,
}

/// Asked by a node connection before it writes: whether, and how long, it may go on
/// sending. The replicator's fence is one (`replicator::fence`): its copies stop when
/// their locks may be gone.
pub trait SendGate: Send + Sync {
    /// How much longer the connection may send; zero fails the request now.
    fn open_for(&self) -> Duration;
    /// The socket the connection is about to write on.
    fn writing_on(&self, socket: RawFd);
    /// The answer to what was sent on `socket` began: every byte sent arrived.
    fn answer_started(&self, socket: RawFd);
}

/// What a node connection's socket must do beyond reading and writing.
pub trait NodeStream: Read + Write + AsRawFd + Send + Sync + 'static {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// True when nothing happened on the socket since its last read, known without a
    /// system call; false when that cannot be known so.
    fn quiet_since_last_read(&self) -> bool;
    /// Asks the socket itself: true when the peer neither closed it nor sent anything.
    fn still_open(&mut self) -> bool;
}

pub struct PatientTransport<S: NodeStream> {
    stream: S,
    buffers: LazyBuffers,
    patience: Patience,
    /// Small writes held back until the next write or read (see `transmit_output`).
    held: Vec<u8>,
    /// The timeouts last set on the socket (each set is a system call), rounded up to
    /// 100 ms so that a deadline counting down does not change them on every call.
    read_timeout: Option<Option<Duration>>,
    write_timeout: Option<Option<Duration>>,
    /// Some bytes of the answer to the last request came.
    answer_started: bool,
    /// The next write is a request's head: nothing was written since an answer came.
    between_requests: bool,
    /// When ureq last asked whether the connection is open (see `is_open`).
    last_checked: Option<Instant>,
    gate: Option<Arc<dyn SendGate>>,
}

impl<S: NodeStream> std::fmt::Debug for PatientTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientTransport").finish()
    }
}

/// How long a quiet node connection is taken as open on the stream's own word, after its
/// last check (see `is_open`): well below the idle timeouts nodes close connections after.
const TRUST_QUIET_FOR: Duration = Duration::from_millis(500);

/// Writes held back by the transport at most (a request head and a small body).
const HOLD_BYTES: usize = 16 * 1024;

/// One bound for one read or write: ureq's (what is left of the whole request) or ours
/// (the progress or answer bound), whichever ends first, rounded up to 100 ms.
struct Bound {
    length: Option<Duration>,
    /// Ours is the shorter: a timeout says which, with this text.
    ours: Option<String>,
    reason: ureq::Timeout,
}

impl Bound {
    fn new(timeout: NextTimeout, ours: Duration, what: &str) -> Result<Bound, ureq::Error> {
        if !timeout.after.is_not_happening() && timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let round =
            |d: Duration| Duration::from_millis((d.as_millis() as u64).div_ceil(100).max(1) * 100);
        let theirs = timeout.not_zero().map(|d| *d);
        let (length, ours) = match theirs {
            Some(theirs) if theirs <= ours => (round(theirs), None),
            _ => (round(ours), Some(format!("{what} for {ours:?}"))),
        };
        Ok(Bound {
            length: Some(length),
            ours,
            reason: timeout.reason,
        })
    }

    fn error(&self, err: io::Error) -> ureq::Error {
        match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => match &self.ours {
                Some(text) => io::Error::new(io::ErrorKind::TimedOut, text.clone()).into(),
                None => ureq::Error::Timeout(self.reason),
            },
            _ => err.into(),
        }
    }
}

impl<S: NodeStream> PatientTransport<S> {
    pub fn new(stream: S, buffers: LazyBuffers, patience: Patience) -> PatientTransport<S> {
        PatientTransport {
            stream,
            buffers,
            patience,
            held: Vec::new(),
            read_timeout: None,
            write_timeout: None,
            answer_started: false,
            between_requests: true,
            last_checked: None,
            gate: None,
        }
    }

    /// The transport, asking `gate` before every write.
    pub fn gated(self, gate: Option<Arc<dyn SendGate>>) -> PatientTransport<S> {
        PatientTransport { gate, ..self }
    }

    /// Writes the held bytes, then the first `amount` bytes of the output buffer.
    fn send_held_and(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let bound = Bound::new(
            timeout.for_write(),
            self.patience.progress,
            "the node took nothing",
        )?;
        if let Some(gate) = &self.gate {
            // Asked before each write: a body that flows is cut at its next piece. A write
            // that blocks is bounded by the progress timeout as any other.
            if gate.open_for().is_zero() {
                return Err(io::Error::other("sending stopped: the send gate closed").into());
            }
            gate.writing_on(self.stream.as_raw_fd());
        }
        if self.write_timeout != Some(bound.length) {
            self.stream.set_write_timeout(bound.length)?;
            self.write_timeout = Some(bound.length);
        }
        let output = &self.buffers.output()[..amount];
        write_both(&mut self.stream, &self.held, output).map_err(|err| bound.error(err))?;
        self.held.clear();
        Ok(())
    }
}

impl<S: NodeStream> Transport for PatientTransport<S> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    /// ureq sends a request head and then each piece of the body, one call each. Sent as
    /// they come, a 1 KiB upload would cost the node two wakeups and us two system calls.
    /// So small pieces are held back and go out with the next piece, in one vectored
    /// write, or before the next read: a client reads only after its whole request is
    /// written, so nothing waits on a held piece.
    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.answer_started = false;
        let output = &self.buffers.output()[..amount];
        // A gated connection holds only a request's head, and tells its gate at once the
        // socket the body goes on: the gate may look at that socket before the body's
        // first write (a one-byte body is all last byte).
        let head = std::mem::replace(&mut self.between_requests, false);
        let hold = match &self.gate {
            None => true,
            Some(gate) if head => {
                gate.writing_on(self.stream.as_raw_fd());
                true
            }
            Some(_) => false,
        };
        if hold && self.held.len() + output.len() <= HOLD_BYTES {
            self.held.extend_from_slice(output);
            return Ok(());
        }
        self.send_held_and(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        if !self.held.is_empty() {
            self.send_held_and(0, timeout)?;
        }
        let bound = match self.answer_started {
            true => Bound::new(
                timeout.for_read(),
                self.patience.progress,
                "the node sent nothing",
            ),
            false => Bound::new(
                timeout.for_read(),
                self.patience.answer,
                "no answer from the node",
            ),
        }?;
        if self.read_timeout != Some(bound.length) {
            self.stream.set_read_timeout(bound.length)?;
            self.read_timeout = Some(bound.length);
        }
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match self.stream.read(input) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => break other.map_err(|err| bound.error(err))?,
            }
        };
        self.buffers.input_appended(amount);
        if amount > 0 && !self.answer_started {
            if let Some(gate) = &self.gate {
                gate.answer_started(self.stream.as_raw_fd());
            }
        }
        self.answer_started |= amount > 0;
        self.between_requests |= amount > 0;
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // ureq asks twice per request: when the connection goes back to the pool, right
        // after the answer was read, and when it is taken out again. A pooled connection
        // is reusable when the peer neither closed it nor sent anything unasked. A stream
        // that can tell without a system call that nothing happened since its last read
        // (`may` records every readiness event in a flag) saves one `recvfrom` per
        // upload. That word is trusted only for a connection last checked less than
        // `TRUST_QUIET_FOR` ago: `may` sets the flag when the socket's worker next polls,
        // so a busy worker may not show yet that a node just closed the connection
        // (nodes close idle ones after seconds; a real node after Node.js's 5 s).
        let now = Instant::now();
        let recent = self
            .last_checked
            .replace(now)
            .is_some_and(|then| now.duration_since(then) < TRUST_QUIET_FOR);
        if recent && self.stream.quiet_since_last_read() {
            return true;
        }
        self.stream.still_open()
    }
}

/// Writes all of `first` then all of `second`, in as few system calls as the socket allows.
fn write_both<W: Write>(stream: &mut W, mut first: &[u8], mut second: &[u8]) -> io::Result<()> {
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

/// A `may` socket: the coordinator's.
impl NodeStream for may::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        may::net::TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        may::net::TcpStream::set_write_timeout(self, timeout)
    }

    fn quiet_since_last_read(&self) -> bool {
        may::io::AsIoData::as_io_data(self)
            .io_flag
            .load(std::sync::atomic::Ordering::Acquire)
            == 0
    }

    fn still_open(&mut self) -> bool {
        // The socket is non-blocking underneath `may`.
        let mut probe = [0u8; 1];
        match (&mut self.inner()).read(&mut probe) {
            Err(err) => err.kind() == io::ErrorKind::WouldBlock,
            // The peer closed it, or sent bytes nobody asked for: out of step.
            Ok(_) => false,
        }
    }
}
