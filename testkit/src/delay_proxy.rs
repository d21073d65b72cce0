//! A TCP proxy that holds every answer back for a while: a slow node you control.
//!
//! The first bytes of each answer are held back for `delay` (once per request, also on a
//! kept-alive connection), so a node behind it answers each request `delay` late; the
//! rest of an answer, and requests, pass at once.

use super::loopback_server::LoopbackServer;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

pub struct DelayProxy {
    pub port: u16,
    _server: LoopbackServer,
}

/// Copies `from` to `to`. A request pump sets `asked` on every chunk; an answer pump
/// (`delay` given) waits `delay` before the first chunk after a request, then clears it.
fn pump(mut from: TcpStream, mut to: TcpStream, asked: &AtomicBool, delay: Option<Duration>) {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                match delay {
                    None => asked.store(true, Ordering::SeqCst),
                    Some(delay) => {
                        if asked.swap(false, Ordering::SeqCst) {
                            thread::sleep(delay);
                        }
                    }
                }
                if to.write_all(&chunk[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16, delay: Duration) -> io::Result<DelayProxy> {
        let server = LoopbackServer::start(move |client| {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let (Ok(client_in), Ok(server_in)) = (client.try_clone(), server.try_clone()) else {
                return;
            };
            let asked = Arc::new(AtomicBool::new(false));
            let asked_too = Arc::clone(&asked);
            thread::spawn(move || pump(client_in, server, &asked_too, None));
            pump(server_in, client, &asked, Some(delay));
        })?;
        Ok(DelayProxy {
            port: server.port,
            _server: server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
