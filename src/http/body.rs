//! A request body, streamed to the handler as `std::io::Read`.
//!
//! Exactly `Content-Length` bytes are handed out: first what already sits in the
//! connection's buffer, then straight from the socket. `100 Continue` is sent the first
//! time the handler reads and the bytes are not there yet: a handler that refuses a
//! request before reading its body has validated it, so the client never sends a body
//! that would be refused.

use super::client_stream::ClientStream;
use std::io::{self, Read, Write};
use std::time::Duration;

pub struct Body<'a> {
    conn: &'a mut ClientStream,
    length: u64,
    remaining: u64,
    continue_pending: bool,
    continue_sent: bool,
    timeout: Duration,
    failed: bool,
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
            continue_pending: expect_continue,
            continue_sent: false,
            timeout,
            failed: false,
        }
    }

    /// The announced length.
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub(super) fn outcome(&self) -> BodyOutcome {
        BodyOutcome {
            remaining: self.remaining,
            continue_sent: self.continue_sent,
            failed: self.failed,
        }
    }

    fn fail(&mut self, err: io::Error) -> io::Error {
        self.failed = true;
        err
    }
}

impl Read for Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || out.is_empty() {
            return Ok(0);
        }
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "request body already failed",
            ));
        }
        let want = (out.len() as u64).min(self.remaining) as usize;
        let buffered = self.conn.buffered();
        if !buffered.is_empty() {
            let n = want.min(buffered.len());
            out[..n].copy_from_slice(&buffered[..n]);
            self.conn.consume(n);
            self.remaining -= n as u64;
            return Ok(n);
        }
        if self.continue_pending {
            self.continue_pending = false;
            self.conn.set_write_timeout(self.timeout)?;
            if let Err(err) = self.conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n") {
                return Err(self.fail(err));
            }
            self.continue_sent = true;
        }
        let read = self.conn.read_within(self.timeout, &mut out[..want]);
        match read {
            Ok(0) => {
                let missing = self.remaining;
                Err(self.fail(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "client closed the connection with {missing} bytes of the body missing"
                    ),
                )))
            }
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
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
}
