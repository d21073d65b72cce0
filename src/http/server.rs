//! The accept loop: one coroutine per connection, a cap on open connections.

use super::connection;
use super::response::Response;
use super::{Handler, Limits, ServerStatus};
use may::net::TcpListener;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running server.
#[derive(Clone)]
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub status: Arc<ServerStatus>,
}

impl ServerHandle {
    /// Stops accepting new connections; open ones finish their current request and are
    /// closed after its answer.
    pub fn stop_accepting(&self) {
        self.status.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own.
        let _ = std::net::TcpStream::connect(self.addr);
    }

    /// Graceful shutdown: stops accepting, then waits up to `drain` for the requests in
    /// flight to be answered. Returns how many were still in flight (0: all answered).
    /// Blocks the calling OS thread: call it from outside the server's coroutines.
    pub fn shutdown(&self, drain: Duration) -> usize {
        self.stop_accepting();
        self.status.wait_idle(Instant::now() + drain)
    }
}

/// Decrements the open-connection count when a connection coroutine ends, however it ends.
struct OpenGuard(Arc<ServerStatus>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts serving `listener` in a coroutine and returns at once.
pub fn serve(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    limits: Limits,
    status: Arc<ServerStatus>,
) -> std::io::Result<ServerHandle> {
    let handle = ServerHandle {
        addr: listener.local_addr()?,
        status,
    };
    let server = Arc::clone(&handle.status);
    crate::affinity::sizing::start(&server.steering)?;
    let limits = Arc::new(limits);
    may::go!(move || {
        for stream in listener.incoming() {
            if server.is_stopping() {
                break;
            }
            let Ok(mut stream) = stream else { continue };
            let open = server.open.fetch_add(1, Ordering::Relaxed) + 1;
            let guard = OpenGuard(Arc::clone(&server));
            if open > limits.max_connections {
                let answer = Response::error(503, "too many open connections").closing();
                let _ = stream.write_all(&answer.to_bytes(false));
                drop(guard);
                continue;
            }
            let (handler, limits, status) = (
                Arc::clone(&handler),
                Arc::clone(&limits),
                Arc::clone(&server),
            );
            may::go!(move || {
                let _guard = guard;
                connection::serve(stream, handler.as_ref(), &limits, &status);
            });
        }
    });
    Ok(handle)
}
