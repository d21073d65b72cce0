//! A request body, streamed to the handler as `std::io::Read`.
//!
//! With `Content-Length`, exactly that many bytes are handed out: first what already sits
//! in the connection's buffer, then straight from the socket. A chunked body is decoded
//! (`chunked`): the handler gets the data bytes, and an error for a malformed or cut-off
//! stream. `100 Continue` is sent the first time the handler reads and the bytes are not
//! there yet: a handler that refuses a request before reading its body has validated it,
//! so the client never sends a body that would be refused.

use super::chunked::{line_in, Chunks};
use super::client_stream::ClientStream;
use std::io::{self, Read};
use std::time::Duration;

pub struct Body<'a> {
    conn: &'a mut ClientStream,
    length: u64,
    /// Bytes still to come with `Content-Length`.
    remaining: u64,
    /// The decoder's state for a chunked body (None with `Content-Length`).
    chunks: Option<Chunks>,
    continue_pending: bool,
    continue_sent: bool,
    timeout: Duration,
    failed: bool,
    /// A chunked body's data bytes handed out so far, and the most it may have: a chunk
    /// that would pass it fails the body as soon as its size line is read, before its
    /// data (a client that declares 2^64 bytes gets its answer at once).
    delivered: u64,
    limit: u64,
    over_limit: bool,
}

/// What became of the body once the handler is done.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyOutcome {
    pub remaining: u64,
    pub continue_sent: bool,
    pub failed: bool,
}

impl<'a> Body<'a> {
    pub(super) fn new(
        conn: &'a mut ClientStream,
        length: u64,
        expect_continue: bool,
        timeout: Duration,
    ) -> Body<'a> {
        Body {
            conn,
            length,
            remaining: length,
            chunks: None,
            continue_pending: expect_continue,
            continue_sent: false,
            timeout,
            failed: false,
            delivered: 0,
            limit: u64::MAX,
            over_limit: false,
        }
    }

    /// The most data bytes a chunked body may have (see `over_limit`).
    pub fn limit_chunked(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// True when a chunk's size took the body past `limit_chunked` (reading stops there).
    pub fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// A body of `Transfer-Encoding: chunked`, of unknown length.
    pub(super) fn chunked(
        conn: &'a mut ClientStream,
        expect_continue: bool,
        timeout: Duration,
    ) -> Body<'a> {
        let mut body = Body::new(conn, 0, expect_continue, timeout);
        body.chunks = Some(Chunks::Size);
        body
    }

    /// Whether the body is chunked: its length is known only once it is read.
    pub fn is_chunked(&self) -> bool {
        self.chunks.is_some()
    }

    /// The announced length (0 for a chunked body).
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub(super) fn outcome(&self) -> BodyOutcome {
        let unread = match self.chunks {
            None => self.remaining,
            Some(Chunks::Done) => 0,
            // Unknown, but some: the connection cannot be reused.
            Some(_) => u64::MAX,
        };
        BodyOutcome {
            remaining: unread,
            continue_sent: self.continue_sent,
            failed: self.failed,
        }
    }

    fn fail(&mut self, err: io::Error) -> io::Error {
        self.failed = true;
        err
    }
}

impl Body<'_> {
    /// Sends `100 Continue` if the client waits for it; called before the first wait for
    /// body bytes from the socket.
    fn go_ahead(&mut self) -> io::Result<()> {
        if self.continue_pending {
            self.continue_pending = false;
            let timeout = self.timeout;
            if let Err(err) = self
                .conn
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n", timeout)
            {
                return Err(self.fail(err));
            }
            self.continue_sent = true;
        }
        Ok(())
    }

    /// Turns a socket read's result into the body's: EOF and stalls are errors that fail
    /// the body.
    fn socket_result(&mut self, read: io::Result<usize>) -> io::Result<usize> {
        match read {
            Ok(0) => Err(self.fail(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed the connection before the body ended",
            ))),
            Ok(n) => Ok(n),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                Err(self.fail(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request body stalled past the body timeout",
                )))
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    /// Up to `out.len()` raw bytes: buffered ones first, else from the socket.
    fn raw(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buffered = self.conn.buffered();
        if !buffered.is_empty() {
            let n = out.len().min(buffered.len());
            out[..n].copy_from_slice(&buffered[..n]);
            self.conn.consume(n);
            return Ok(n);
        }
        self.go_ahead()?;
        let read = self.conn.read_within(self.timeout, out);
        self.socket_result(read)
    }

    /// The next framing line of a chunked body (without CRLF), into the decoder.
    fn chunk_line(&mut self, state: Chunks) -> io::Result<Chunks> {
        loop {
            match line_in(self.conn.buffered()) {
                Ok(Some((length, used))) => {
                    let next = state.after_line(&self.conn.buffered()[..length]);
                    self.conn.consume(used);
                    return next.map_err(|err| self.fail(err));
                }
                Ok(None) => {
                    self.go_ahead()?;
                    let read = self.conn.fill(self.timeout);
                    self.socket_result(read)?;
                }
                Err(err) => return Err(self.fail(err)),
            }
        }
    }

    fn read_chunked(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(state) = self.chunks else {
                return Ok(0);
            };
            match state {
                Chunks::Done => return Ok(0),
                Chunks::Data(left) => {
                    let want = (out.len() as u64).min(left) as usize;
                    let n = self.raw(&mut out[..want])?;
                    self.delivered += n as u64;
                    let left = left - n as u64;
                    self.chunks = Some(if left == 0 {
                        Chunks::DataEnd
                    } else {
                        Chunks::Data(left)
                    });
                    return Ok(n);
                }
                other => {
                    let next = self.chunk_line(other)?;
                    if let Chunks::Data(size) = next {
                        if self.delivered.saturating_add(size) > self.limit {
                            // Not a failed body: the client is well and still sending,
                            // so the connection lingers after the answer (see
                            // `connection::linger`) for it to read the 413.
                            self.over_limit = true;
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "a chunk takes the body past its limit",
                            ));
                        }
                    }
                    self.chunks = Some(next);
                }
            }
        }
    }
}

impl Read for Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed || self.over_limit {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "request body already failed",
            ));
        }
        if out.is_empty() {
            return Ok(0);
        }
        if self.chunks.is_some() {
            return self.read_chunked(out);
        }
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = (out.len() as u64).min(self.remaining) as usize;
        let n = self.raw(&mut out[..want]).map_err(|err| {
            if err.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "client closed the connection with {} bytes of the body missing",
                        self.remaining
                    ),
                )
            } else {
                err
            }
        })?;
        self.remaining -= n as u64;
        Ok(n)
    }
}
