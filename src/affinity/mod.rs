//! Which `may` worker thread a coroutine runs on, and how an upload keeps to one.
//!
//! `may` gives each worker thread its own epoll set and registers a socket in the set of
//! worker `fd % workers`. A coroutine that waited on a socket is resumed by that socket's
//! worker. An upload waits on three sockets in turn (its client, a node, a Redis server),
//! so with descriptor numbers falling as they may, a 64 KiB upload on two workers crossed
//! between the threads at about every wait: each crossing wakes the other thread and
//! moves the coroutine's stack between caches. Measured on two cores with WebDAV nodes,
//! two workers then used more CPU per upload than one (0.156 against 0.107 and 0.101
//! against 0.088 ms, two runs of the README's worker comparison).
//!
//! So sockets have a *home*: the worker that owns them. A client connection's home is
//! wherever its descriptor fell; node and Redis connections are kept in pools per home,
//! and a new one is moved to a descriptor number of its pool's home (`move_home`). An
//! upload then takes only connections of its client's home, and every wait resumes it on
//! the same thread. The workers split the clients between them, each serving its own as
//! one thread would, like nginx's worker processes. How many workers take clients at
//! all follows the load (`steering`).

pub mod sizing;
pub mod steering;

use may::net::TcpStream;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A worker thread's index: the epoll set a socket is registered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Home(pub usize);

/// The number of `may` worker threads (each with its own epoll set).
pub fn workers() -> usize {
    may::config().get_workers().max(1)
}

/// The home of a socket: the worker whose epoll set `may` registered it in.
pub fn home_of(socket: &impl AsRawFd) -> Home {
    Home(socket.as_raw_fd() as usize % workers())
}

/// Tries at most this many descriptor numbers before keeping the one a socket has.
const MOST_TRIES: usize = 16;

/// The highest descriptor number this module has seen or made: the search for a number
/// of some home starts above it after a miss (see `duplicate_at_home`).
static HIGHEST: AtomicUsize = AtomicUsize::new(0);

/// `stream`, registered with the worker `home`: the same connection under a descriptor
/// number that `may` maps to that worker. Costs a few system calls, once per connection.
/// Homes are an optimisation: when no such number can be had, the stream keeps its own.
pub fn move_home(stream: TcpStream, home: Home) -> io::Result<TcpStream> {
    let workers = workers();
    HIGHEST.fetch_max(stream.as_raw_fd() as usize, Ordering::Relaxed);
    if workers == 1 || home_of(&stream) == home {
        return Ok(stream);
    }
    // Leaves `may` (its epoll registration is removed while the descriptor is open, so
    // no event of this connection can reach the old worker after).
    let old = unsafe { OwnedFd::from_raw_fd(stream.into_raw_fd()) };
    let moved = duplicate_at_home(&old, home, workers).unwrap_or(None);
    let fd = match moved {
        Some(new) => {
            drop(old);
            new.into_raw_fd()
        }
        None => old.into_raw_fd(),
    };
    register(fd)
}

/// A duplicate of `fd` whose number `may` maps to `home`, or `None` after `MOST_TRIES`.
///
/// `F_DUPFD_CLOEXEC` takes the lowest free number at or above the one asked for, so it
/// never touches a descriptor in use. The first try asks for the next number of `home`;
/// when that is taken, the lowest free one is usually of another home (when one home
/// holds most connections, its numbers form a dense run), so the search jumps above the
/// highest number known and goes on from there. Numbers that do not fit are held until
/// the search ends, so that each try gets a new one.
fn duplicate_at_home(fd: &OwnedFd, home: Home, workers: usize) -> io::Result<Option<OwnedFd>> {
    let mut misses = Vec::new();
    let mut at_least = fd.as_raw_fd() as usize;
    for _ in 0..MOST_TRIES {
        // The first number at or above `at_least` that maps to `home`.
        let wanted = at_least + (home.0 + workers - at_least % workers) % workers;
        let Ok(wanted) = RawFd::try_from(wanted) else {
            return Ok(None);
        };
        let got = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, wanted) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = unsafe { OwnedFd::from_raw_fd(got) };
        let number = got.as_raw_fd() as usize;
        let highest = HIGHEST.fetch_max(number, Ordering::Relaxed).max(number);
        if number % workers == home.0 {
            return Ok(Some(got));
        }
        at_least = if misses.is_empty() {
            highest + 1
        } else {
            number + 1
        };
        misses.push(got);
    }
    Ok(None)
}

/// Registers a connected socket's descriptor with `may` (in its number's worker).
fn register(fd: RawFd) -> io::Result<TcpStream> {
    // `may` has no fallible constructor from a descriptor: `from_raw_fd` panics when
    // epoll refuses the socket (out of memory or watches). That is caught here and
    // becomes an error for this one connection; the descriptor is closed either way.
    std::panic::catch_unwind(|| unsafe { TcpStream::from_raw_fd(fd) })
        .map_err(|_| io::Error::other("the socket could not be registered for readiness"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_connection_lands_at_its_home_and_still_carries_bytes() {
        may::config().set_workers(2);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let echo = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 5];
            std::io::Read::read_exact(&mut peer, &mut buf).expect("read");
            std::io::Write::write_all(&mut peer, &buf).expect("write");
        });
        let moved = may::go!(move || {
            let stream = TcpStream::connect(addr).expect("connect");
            let home = Home((home_of(&stream).0 + 1) % workers());
            let mut stream = move_home(stream, home).expect("move");
            assert_eq!(home_of(&stream), home);
            std::io::Write::write_all(&mut stream, b"hello").expect("send");
            let mut buf = [0u8; 5];
            std::io::Read::read_exact(&mut stream, &mut buf).expect("receive");
            buf
        })
        .join()
        .expect("coroutine");
        echo.join().expect("echo");
        assert_eq!(&moved, b"hello");
    }
}
