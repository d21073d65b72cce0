//! What a TCP socket still holds for its peer, and how long the kernel keeps trying to
//! deliver it: for senders that must know when the peer has every byte (the
//! replicator's fenced copies).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Bytes written to `socket` that its peer has not acknowledged yet.
pub fn unacknowledged(socket: RawFd) -> io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: `socket` is an open socket of the caller; TIOCOUTQ (SIOCOUTQ) writes one int.
    match unsafe { libc::ioctl(socket, libc::TIOCOUTQ, &mut queued) } {
        0 => Ok(queued.max(0) as usize),
        _ => Err(io::Error::last_os_error()),
    }
}

/// After `bound` with data sent and not acknowledged, the kernel resets the connection
/// instead of sending it again; zero is the kernel's default (retries for many minutes).
pub fn set_user_timeout(socket: RawFd, bound: Duration) -> io::Result<()> {
    let millis = bound.as_millis().min(u32::MAX as u128) as libc::c_uint;
    // SAFETY: `socket` is an open TCP socket of the caller; the option takes one uint.
    let result = unsafe {
        libc::setsockopt(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&millis as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Whether the connection is over: reset, or closed by its peer.
pub fn is_closed(socket: RawFd) -> io::Result<bool> {
    let mut poll = libc::pollfd {
        fd: socket,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one pollfd of the caller's open socket, no wait.
    match unsafe { libc::poll(&mut poll, 1, 0) } {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(poll.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLRDHUP) != 0),
    }
}
