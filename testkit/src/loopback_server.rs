//! A TCP server on a free loopback port that hands each connection to a thread of its own,
//! until dropped: what the test kit's small fake peers (a slow node, a failing one) share.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

pub struct LoopbackServer {
    pub port: u16,
    stopping: Arc<AtomicBool>,
}

impl LoopbackServer {
    /// Listens on a free loopback port; `serve` runs on its own thread per connection.
    pub fn start<F>(serve: F) -> io::Result<LoopbackServer>
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let serve = Arc::new(serve);
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(client) = client {
                    let serve = Arc::clone(&serve);
                    thread::spawn(move || serve(client));
                }
            }
        });
        Ok(LoopbackServer { port, stopping })
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        // The accept loop sees the flag on the next connection: make one.
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
