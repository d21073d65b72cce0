//! A relay that adds delay to the TCP connections one host opens to another.
//!
//! The kernel here has no netem, so delay is made in user space. On host `on`, an
//! nftables NAT rule sends every new TCP connection to `toward` to a listener of the relay
//! instead (`redirect`); the relay asks the kernel where the connection was going
//! (`SO_ORIGINAL_DST`), opens its own connection there (marked, so the rule lets it
//! through), and copies bytes both ways, each chunk held for the delay after it arrived.
//! The bandwidth is not limited: chunks queue, so only latency grows.

use super::{run_with_input, Host};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// The mark on the relay's own connections, which its rule passes.
const MARK: u32 = 0x5b0;
/// `SO_ORIGINAL_DST` of `<linux/netfilter_ipv4.h>`.
const SO_ORIGINAL_DST: libc::c_int = 80;

pub(super) struct Relay {
    table: String,
    on: Host,
    stop: Arc<AtomicBool>,
    /// The delay in microseconds; zero once healed.
    delay: Arc<AtomicU64>,
}

/// Where the kernel says an accepted, redirected connection was going.
fn original_destination(stream: &TcpStream) -> io::Result<SocketAddr> {
    // SAFETY: getsockopt fills a sockaddr_in of the size given.
    let mut address: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_IP,
            SO_ORIGINAL_DST,
            &mut address as *mut _ as *mut libc::c_void,
            &mut size,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    let ip = std::net::Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr));
    Ok(SocketAddr::from((ip, u16::from_be(address.sin_port))))
}

/// Copies `from` to `to`, each chunk written `delay` after it was read; at the end of
/// `from`, ends `to`'s direction too.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Arc<AtomicU64>) {
    let (chunks, queued) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = thread::spawn(move || {
        for (read_at, chunk) in queued {
            let due = read_at + Duration::from_micros(delay.load(Ordering::Relaxed));
            thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if chunks.send((Instant::now(), buffer[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(chunks);
    let _ = writer.join();
}

/// Carries one redirected connection to where it was going.
fn carry(client: TcpStream, delay: Arc<AtomicU64>) -> io::Result<()> {
    let target = original_destination(&client)?;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_mark(MARK)?;
    socket.connect_timeout(&target.into(), Duration::from_secs(30))?;
    let server: TcpStream = socket.into();
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_in, server_in) = (client.try_clone()?, server.try_clone()?);
    let back_delay = delay.clone();
    let back = thread::spawn(move || pump(server_in, client, back_delay));
    pump(client_in, server, delay);
    let _ = back.join();
    Ok(())
}

impl Relay {
    /// Delays the connections `on` opens to `toward` by `delay` each way, from now on.
    pub fn start(on: &Host, toward: &Host, delay: Duration) -> io::Result<Relay> {
        let stop = Arc::new(AtomicBool::new(false));
        let delay = Arc::new(AtomicU64::new(delay.as_micros() as u64));
        let (stopping, delaying) = (stop.clone(), delay.clone());
        let (bound, port) = mpsc::channel();
        on.spawn_thread(move || {
            let listener = match TcpListener::bind("0.0.0.0:0").and_then(|l| {
                l.set_nonblocking(true)?;
                Ok((l.local_addr()?.port(), l))
            }) {
                Ok((p, listener)) => {
                    let _ = bound.send(Ok(p));
                    listener
                }
                Err(err) => {
                    let _ = bound.send(Err(err));
                    return;
                }
            };
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let delay = delaying.clone();
                        let _ = client.set_nonblocking(false);
                        thread::spawn(move || carry(client, delay));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        })?;
        let port = port
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| io::Error::other("the relay did not start"))??;
        let table = format!("backpack-slow-{}-{port}", toward.ip).replace('.', "-");
        let net = on
            .net_holder()
            .ok_or_else(|| io::Error::other("a relay needs a host of a network"))?;
        let script = format!(
            "add table ip {table}\n\
             add chain ip {table} out {{ type nat hook output priority -100; }}\n\
             add rule ip {table} out meta mark {MARK} return\n\
             add rule ip {table} out ip daddr {} tcp dport != {port} redirect to :{port}\n",
            toward.ip
        );
        let relay = Relay {
            table,
            on: on.clone(),
            stop,
            delay,
        };
        run_with_input("nft", &["-f", "-"], net, &script)?;
        Ok(relay)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(net) = self.on.net_holder() {
            let script = format!("delete table ip {}\n", self.table);
            let _ = run_with_input("nft", &["-f", "-"], net, &script);
        }
        self.delay.store(0, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
    }
}
