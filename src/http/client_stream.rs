//! A client's socket with its read buffer: what the connection loop reads request heads
//! from and what a request body reads from, with timeouts that cost as few system calls
//! as possible.

use crate::affinity::{self, Home};
use may::net::TcpStream;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// The client's socket and the bytes read from it that nobody has consumed yet
/// (`buf[start..end]`). The connection loop reads request heads through it and a request
/// body reads its bytes; both write answers through it.
pub(super) struct ClientStream {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The timeouts last set on the socket: setting one is a system call, so it is
    /// only done when the value changes.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// The read timeout the socket keeps: the shortest wait the server uses (see
    /// `read_within`).
    standing_read_timeout: Duration,
}

/// Rounds a timeout up to 100 ms, so that a deadline counting down does not change the
/// socket's timeout on every read.
fn coarse(timeout: Duration) -> Duration {
    Duration::from_millis((timeout.as_millis() as u64).div_ceil(100).max(1) * 100)
}

impl ClientStream {
    /// A stream with a read buffer of `buffer` bytes whose socket keeps the read timeout
    /// `standing_read_timeout` (see `read_within`).
    pub(super) fn new(
        stream: TcpStream,
        buffer: usize,
        standing_read_timeout: Duration,
    ) -> ClientStream {
        // Answers are written whole; no reason to hold their last segment back.
        let _ = stream.set_nodelay(true);
        ClientStream {
            stream,
            buf: vec![0; buffer],
            start: 0,
            end: 0,
            read_timeout: None,
            write_timeout: None,
            standing_read_timeout,
        }
    }

    /// The same client under a socket registered with the worker `home` (see
    /// `affinity::move_home`); what was read and not consumed stays.
    pub(super) fn move_home(self, home: Home) -> io::Result<ClientStream> {
        Ok(ClientStream {
            stream: affinity::move_home(self.stream, home)?,
            // The moved socket starts with no timeouts set.
            read_timeout: None,
            write_timeout: None,
            ..self
        })
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        let timeout = Some(coarse(timeout));
        if self.read_timeout != timeout {
            self.stream.set_read_timeout(timeout)?;
            self.read_timeout = timeout;
        }
        Ok(())
    }

    /// Reads into `out`, waiting at most `timeout` for bytes to arrive.
    ///
    /// A kept-alive connection waits with the idle timeout between requests and with the
    /// body timeout inside one; setting the socket's timeout to each in turn would cost two
    /// system calls per request. So the socket keeps the shorter of the two, and a wait
    /// meant to be longer simply reads again when it runs out.
    pub(super) fn read_within(&mut self, timeout: Duration, out: &mut [u8]) -> io::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.set_read_timeout(left.min(self.standing_read_timeout))?;
            match self.stream.read(out) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_timeout(&err) && Instant::now() < deadline => {}
                other => return other,
            }
        }
    }

    /// The worker thread whose poller the socket is registered with.
    pub(super) fn home(&self) -> Home {
        affinity::home_of(&self.stream)
    }

    /// Writes all of `bytes`, waiting at most `timeout` for the client to take each part.
    pub(super) fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        let timeout = Some(coarse(timeout));
        if self.write_timeout != timeout {
            self.stream.set_write_timeout(timeout)?;
            self.write_timeout = timeout;
        }
        self.stream.write_all(bytes)
    }

    /// Ends our side of the connection: the client reads the end of the stream after
    /// what was written.
    pub(super) fn shutdown_write(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    pub(super) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes into the buffer, waiting at most `timeout`; Ok(0) at EOF.
    pub(super) fn fill(&mut self, timeout: Duration) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // The buffer is taken out for the read, so that `read_within` may borrow `self`.
        let mut buf = std::mem::take(&mut self.buf);
        let read = self.read_within(timeout, &mut buf[self.end..]);
        self.buf = buf;
        let n = read?;
        self.end += n;
        Ok(n)
    }
}

pub(super) fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}
