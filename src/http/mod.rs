//! A small HTTP/1.1 server on `may` coroutines: one coroutine per connection, handlers
//! written in blocking style.
//!
//! Why not may_minihttp: its connection loop (which applications cannot reach) cannot send
//! `100 Continue`, panics on a non-numeric `Content-Length`, parses an unread body as the
//! next request, drops chunked requests unanswered, closes silently past 16 headers, has no
//! read timeouts and ignores `Connection: close`. This module keeps its model and gets
//! those right: bodies are streamed to the handler, keep-alive and pipelining work, and a
//! request whose body is not read either has it drained (small) or closes the connection.

mod body;
mod client_stream;
mod connection;
pub mod request;
pub mod response;
mod server;

pub use body::Body;
pub use request::{Framing, Request};
pub use response::Response;
pub use server::{serve, ServerHandle};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What the server does with a request. Runs inside a `may` coroutine: block only on
/// `may` I/O.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, request: &Request, body: &mut Body<'_>) -> Response;
}

/// Limits that protect the server from slow, broken and hostile clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request line plus headers, in bytes; more is answered 431.
    pub max_head_bytes: usize,
    /// Header fields per request; more is answered 431.
    pub max_headers: usize,
    /// Time for a whole request head to arrive once it has begun (408 after).
    pub header_timeout: Duration,
    /// Longest wait for the next bytes of a body (or for a client to take an answer).
    pub body_timeout: Duration,
    /// How long a kept-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// An unread body up to this size is read and dropped to keep the connection.
    pub drain_limit: u64,
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 128,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            drain_limit: 64 * 1024,
            max_connections: 10_000,
        }
    }
}

/// What a running server shares with its owner: open connections, a stop switch.
#[derive(Default)]
pub struct ServerStatus {
    open: AtomicUsize,
    stopping: AtomicBool,
}

impl ServerStatus {
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
