//! One client connection: read a request head, hand the request and its body to the
//! handler, write the answer, and repeat while the connection may be kept.
//!
//! This runs in its own `may` coroutine; every read and write below is on a
//! `may::net::TcpStream`, which parks the coroutine instead of blocking the worker thread.
//! Requests on a connection are handled one at a time, so answers to pipelined requests
//! leave in order; bytes that arrived past the current request wait in the buffer.

use super::body::Body;
use super::client_stream::{is_timeout, ClientStream};
use super::request::{self, Framing, Request};
use super::response::Response;
use super::{Handler, InFlightRequest, Limits, ServerStatus};
use may::net::TcpStream;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The most header fields a request may have, whatever the limit says (the parser's
/// slots live on the coroutine's stack).
pub const MAX_HEADER_SLOTS: usize = 256;

/// Why no request head could be read.
enum NoHead {
    /// The client closed or went idle between requests: end quietly.
    Gone,
    /// Answer this, then close.
    Answer(Response),
}

/// Reads and parses the next request head.
fn read_head(conn: &mut ClientStream, limits: &Limits) -> Result<Request, NoHead> {
    // Between requests the idle timeout applies; once a request has begun, all of its
    // head must arrive within the header timeout (a client trickling bytes is cut off).
    let mut deadline: Option<Instant> = None;
    loop {
        if !conn.buffered().is_empty() {
            deadline.get_or_insert_with(|| Instant::now() + limits.header_timeout);
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADER_SLOTS];
            let slots = &mut slots[..limits.max_headers.clamp(1, MAX_HEADER_SLOTS)];
            let mut parsed = httparse::Request::new(slots);
            match parsed.parse(conn.buffered()) {
                Ok(httparse::Status::Complete(length)) => {
                    let request = request::from_parsed(&parsed, &conn.buffered()[..length])
                        .map_err(NoHead::Answer);
                    conn.consume(length);
                    return request;
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(NoHead::Answer(
                        Response::error(431, "too many header fields").closing(),
                    ))
                }
                Err(_) => {
                    return Err(NoHead::Answer(
                        Response::error(400, "malformed request").closing(),
                    ))
                }
            }
            if conn.buffered().len() >= limits.max_head_bytes {
                return Err(NoHead::Answer(
                    Response::error(431, "request line and headers too large").closing(),
                ));
            }
        }
        let timeout = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => limits.idle_timeout,
        };
        match conn.fill(timeout) {
            Ok(0) => return Err(NoHead::Gone),
            Ok(_) => {}
            Err(err) if is_timeout(&err) && deadline.is_some() => {
                return Err(NoHead::Answer(
                    Response::error(408, "request head not received in time").closing(),
                ))
            }
            Err(_) => return Err(NoHead::Gone),
        }
    }
}

fn write_answer(
    conn: &mut ClientStream,
    response: &Response,
    head_only: bool,
    timeout: Duration,
) -> io::Result<()> {
    conn.write_all(&response.to_bytes(head_only), timeout)
}

/// Serves one connection until it closes.
pub(super) fn serve(
    stream: TcpStream,
    handler: &dyn Handler,
    limits: &Limits,
    status: &ServerStatus,
) {
    let Ok((stream, mut placement)) = status.steering.place(stream) else {
        return;
    };
    let mut conn = ClientStream::new(
        stream,
        limits.max_head_bytes + 4096,
        limits.idle_timeout.min(limits.body_timeout),
    );
    loop {
        if let Some(home) = placement.before_request() {
            conn = match conn.move_home(home) {
                Ok(conn) => conn,
                Err(_) => return,
            };
            placement.moved(conn.home());
        }
        let request = match read_head(&mut conn, limits) {
            Ok(request) => request.at_home(placement.home()),
            Err(NoHead::Gone) => return,
            Err(NoHead::Answer(response)) => {
                let _ = write_answer(&mut conn, &response, false, limits.body_timeout);
                return;
            }
        };
        let _in_flight = InFlightRequest::enter(status);
        let head_only = request.method() == "HEAD";
        let length = request.content_length();
        let mut body = if request.framing == Framing::Chunked {
            Body::chunked(&mut conn, request.expect_continue, limits.body_timeout)
        } else {
            Body::new(
                &mut conn,
                length,
                request.expect_continue,
                limits.body_timeout,
            )
        };
        let answer = catch_unwind(AssertUnwindSafe(|| handler.call(&request, &mut body)));
        let body_outcome = body.outcome();
        let mut response = answer.unwrap_or_else(|_| {
            eprintln!(
                "internal error: handler panicked on {} {}",
                request.method(),
                request.target()
            );
            Response::error(500, "internal error").closing()
        });
        if body_outcome.failed {
            // The body broke off (client gone, or too slow): the connection is unusable.
            let _ = write_answer(
                &mut conn,
                &response.closing(),
                head_only,
                limits.body_timeout,
            );
            return;
        }
        // A server shutting down closes each connection after its current answer. A
        // chunked body read to its last chunk leaves the connection as usable as a body
        // with a length; one left unread (of unknown size) closes it below.
        let mut close = response.close || !request.keep_alive || status.is_stopping();
        if !close && body_outcome.remaining > 0 {
            // The handler answered without reading the body. Read and drop a small one, so
            // the connection stays usable; otherwise close, so it is never taken for a
            // request. A client waiting for `100 Continue` has not sent it at all.
            let may_drain = body_outcome.remaining <= limits.drain_limit
                && (!request.expect_continue || body_outcome.continue_sent);
            close = !(may_drain && drain(&mut conn, body_outcome.remaining, limits.body_timeout));
        }
        if close {
            response.close = true;
        }
        if write_answer(&mut conn, &response, head_only, limits.body_timeout).is_err() || close {
            conn.shutdown_write();
            if body_outcome.remaining > 0 {
                linger(&mut conn);
            }
            return;
        }
    }
}

/// After answering a request whose body we did not read (a 413 mid-stream, say): reads
/// and drops what the client still sends, for a short while, before the socket closes.
/// Closing a socket with unread bytes sends a reset, and a reset that reaches the client
/// before it read our answer destroys the answer (curl then reports the `100 Continue`
/// it had, not the 413). Bounded: 2 s in all, 64 MiB, or 500 ms without bytes.
fn linger(conn: &mut ClientStream) {
    let started = std::time::Instant::now();
    let mut dropped = 0usize;
    let mut scratch = vec![0u8; 64 * 1024];
    while started.elapsed() < Duration::from_secs(2) && dropped < 64 << 20 {
        match conn.read_within(Duration::from_millis(500), &mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

/// Reads and discards `remaining` body bytes; false when they do not arrive.
fn drain(conn: &mut ClientStream, remaining: u64, timeout: Duration) -> bool {
    let mut body = Body::new(conn, remaining, false, timeout);
    io::copy(&mut body, &mut io::sink()).is_ok() && body.outcome().remaining == 0
}
