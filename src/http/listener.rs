//! The listening socket of a daemon, bound so that a port in use is an error at start.
//!
//! `may`'s own bind sets `SO_REUSEPORT`. With it, a second process (a daemon started
//! twice, or another daemon given the same port) binds the port too, says it listens, and
//! the kernel splits new connections between the two: clients get the wrong server's
//! answers, silently. This bind sets `SO_REUSEADDR` only, which lets a restarted daemon
//! bind past connections of its last run still in `TIME_WAIT`, but fails with "address in
//! use" while anything listens there.
//!
//! Binding and listening are two steps: a daemon binds first thing (a port in use stops
//! it before it does anything) and listens once it can serve. Until then a connection is
//! refused, as before the daemon started, rather than queued unanswered: a load balancer
//! or a client moves on at once.

use crate::error::{Error, Result};
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, IntoRawFd};

/// Connections the kernel queues before the server accepts them.
const BACKLOG: i32 = 1024;

/// A socket bound to its port, not yet listening.
pub struct Bound {
    socket: Socket,
    address: String,
}

/// The sentence for a failed bind or listen.
fn failed(address: &str, err: std::io::Error) -> Error {
    match err.kind() {
        std::io::ErrorKind::AddrInUse => Error::invalid(format!(
            "cannot listen on {address}: the port is in use (is another daemon running there?)"
        )),
        _ => Error::invalid(format!("cannot listen on {address}: {err}")),
    }
}

/// Binds `address` (`host:port`). An address that does not parse is a usage error (exit
/// 2); a port in use or refused is a failure (exit 1).
pub fn bind(address: &str) -> Result<Bound> {
    let socket_address = resolve(address)?;
    let socket = Socket::new(Domain::for_address(socket_address), Type::STREAM, None)
        .map_err(|err| failed(address, err))?;
    socket
        .set_reuse_address(true)
        .and_then(|()| socket.bind(&socket_address.into()))
        .map_err(|err| failed(address, err))?;
    Ok(Bound {
        socket,
        address: address.to_string(),
    })
}

impl Bound {
    /// Starts taking connections.
    pub fn listen(self) -> Result<may::net::TcpListener> {
        let address = self.address;
        self.socket
            .listen(BACKLOG)
            .and_then(|()| self.socket.set_nonblocking(true))
            .map_err(|err| failed(&address, err))?;
        let listener: std::net::TcpListener = self.socket.into();
        // SAFETY: the descriptor is a listening TCP socket this function owns;
        // `into_raw_fd` gives up std's ownership, so `may`'s listener is its only owner.
        Ok(unsafe { may::net::TcpListener::from_raw_fd(listener.into_raw_fd()) })
    }
}

/// The one address `address` names; an error that shows the expected form otherwise.
fn resolve(address: &str) -> Result<SocketAddr> {
    let hint = "expected host:port, such as 127.0.0.1:12001";
    let port_given = address
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    if !port_given {
        return Err(Error::usage(format!(
            "cannot listen on {address:?}: {hint}"
        )));
    }
    let mut found = address
        .to_socket_addrs()
        .map_err(|err| Error::invalid(format!("cannot listen on {address:?}: {err}")))?;
    found.next().ok_or_else(|| {
        Error::invalid(format!(
            "cannot listen on {address:?}: the name has no address"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exit code and the message of a failed bind and listen.
    fn failure(address: &str) -> (u8, String) {
        match bind(address).and_then(Bound::listen) {
            Ok(_) => (0, String::new()),
            Err(err) => (err.exit_code(), err.to_string()),
        }
    }

    #[test]
    fn a_port_in_use_is_refused_and_a_bad_address_explained() {
        let first = bind("127.0.0.1:0")
            .and_then(Bound::listen)
            .expect("a free port");
        let port = first.local_addr().expect("bound").port();
        let (code, again) = failure(&format!("127.0.0.1:{port}"));
        assert!(code == 1 && again.contains("the port is in use"), "{again}");
        let (code, bare) = failure("12090");
        assert!(code == 2 && bare.contains("expected host:port"), "{bare}");
        drop(first);
        // Bound, not listening: a connection is refused, and a second bind fails while
        // the first listens.
        let bound = bind(&format!("127.0.0.1:{port}")).expect("free again");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        let serving = bound.listen().expect("listens");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        let (code, taken) = failure(&format!("127.0.0.1:{port}"));
        assert!(code == 1 && taken.contains("the port is in use"), "{taken}");
        drop(serving);
    }
}
