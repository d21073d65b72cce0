//! The accept loop: one coroutine per connection, a cap on open connections.

use super::connection;
use super::response::Response;
use super::{Handler, Limits};
use may::net::TcpListener;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Shared view of a running server: its address, its open connections, a stop switch.
#[derive(Clone)]
pub struct ServerHandle {
    pub addr: SocketAddr,
    open: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
}

impl ServerHandle {
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Stops accepting new connections; open ones finish their current request.
    pub fn stop_accepting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own.
        let _ = std::net::TcpStream::connect(self.addr);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Decrements the open-connection count when a connection coroutine ends, however it ends.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts serving `listener` in a coroutine and returns at once.
pub fn serve(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    limits: Limits,
) -> std::io::Result<ServerHandle> {
    let handle = ServerHandle {
        addr: listener.local_addr()?,
        open: Arc::new(AtomicUsize::new(0)),
        stopping: Arc::new(AtomicBool::new(false)),
    };
    let server = handle.clone();
    let limits = Arc::new(limits);
    may::go!(move || {
        for stream in listener.incoming() {
            if server.is_stopping() {
                break;
            }
            let Ok(mut stream) = stream else { continue };
            let open = server.open.fetch_add(1, Ordering::Relaxed) + 1;
            let guard = OpenGuard(Arc::clone(&server.open));
            if open > limits.max_connections {
                let answer = Response::error(503, "too many open connections").closing();
                let _ = stream.write_all(&answer.to_bytes(false));
                drop(guard);
                continue;
            }
            let (handler, limits) = (Arc::clone(&handler), Arc::clone(&limits));
            may::go!(move || {
                let _guard = guard;
                connection::serve(stream, handler.as_ref(), &limits);
            });
        }
    });
    Ok(handle)
}
