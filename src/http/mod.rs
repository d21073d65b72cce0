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
mod chunked;
mod client_stream;
mod connection;
mod listener;
pub mod request;
pub mod response;
mod server;

pub use body::Body;
pub use listener::{bind, Bound};
pub use request::{Framing, Request};
pub use response::Response;
pub use server::{serve, ServerHandle};

use crate::affinity::steering::Steering;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// What a running server shares with its owner: open connections, requests in flight, a
/// stop switch. The server owns its graceful shutdown (`ServerHandle::shutdown`): stop
/// taking connections, then wait, up to a deadline, for the requests in flight.
#[derive(Default)]
pub struct ServerStatus {
    open: AtomicUsize,
    /// Which workers take clients (`affinity::steering`).
    steering: Arc<Steering>,
    stopping: AtomicBool,
    /// Requests between their head and their answer.
    in_flight: AtomicUsize,
    /// Signalled when the last request in flight ends while stopping.
    idle_lock: Mutex<()>,
    idle: Condvar,
}

impl ServerStatus {
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The worker threads that take clients now (see `affinity::steering`).
    pub fn active_workers(&self) -> usize {
        self.steering.active()
    }

    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// Called from a connection coroutine: the lock is taken only to signal, while
    /// stopping, and never held across I/O.
    fn request_done(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && self.is_stopping() {
            let _guard = self.idle_lock.lock();
            self.idle.notify_all();
        }
    }

    /// Blocks the calling OS thread until no request is in flight or `deadline` passes;
    /// how many are still in flight. Call it after `stopping` is set: the check runs under
    /// the lock that `request_done` signals under, so no wake-up is missed.
    fn wait_idle(&self, deadline: Instant) -> usize {
        let mut guard = self.idle_lock.lock();
        loop {
            let left = self.requests_in_flight();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            self.idle.wait_until(&mut guard, deadline);
        }
    }
}

/// Counts one request in flight, from its head until its answer is written, however its
/// handling ends.
struct InFlightRequest<'a>(&'a ServerStatus);

impl<'a> InFlightRequest<'a> {
    fn enter(status: &'a ServerStatus) -> InFlightRequest<'a> {
        status.request_started();
        InFlightRequest(status)
    }
}

impl Drop for InFlightRequest<'_> {
    fn drop(&mut self) {
        self.0.request_done();
    }
}
