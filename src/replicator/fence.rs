//! Fencing: work under item locks stops before ZooKeeper can have expired the session
//! that holds them.
//!
//! An item lock is an ephemeral node of our session. When the ensemble expires the
//! session, the lock goes and another replicator may take the item. A replicator cut off
//! from ZooKeeper cannot hear that, so it must stop on its own, early enough.
//!
//! What proves the session alive is a *quorum round trip*: a transaction that changes
//! nothing (`ZkSession::quorum_round_trip`), answered only once the leader and a quorum
//! have agreed on it under our session. Answered pings prove nothing: a server cut off
//! from its leader goes on answering them for `syncLimit x tickTime` while the leader may
//! be expiring the session. A `LeaseKeeper` thread sends one every tenth of the session
//! timeout `T`; the *lease* is the time since the last answered one was sent.
//!
//! The leader expires the session no sooner than `T` after it last heard of it. It hears
//! of a request through a follower at the follower's next report, within half a tick, so
//! after a proof sent at `p` the session stands until at least `p + T - tick/2 - T/10`
//! (the report may have carried only the proof before). With the ensemble's `tickTime`
//! at most `T/4` that is `p + 0.775 T`. So:
//! - every write of a copy to the target starts only while the lease is younger than
//!   `T/3` (`Fence::open_for`); a copy that outlives it is cut at its next write, its
//!   connection closed before the body's end, and the node stores nothing;
//! - the body's last byte goes only once the target has acknowledged all but the last
//!   128 KiB before it, and with `TCP_USER_TIMEOUT` at `T/4`: on a link that carries 128
//!   KiB within `T/4`, the node has the whole body by `p + 7T/12`, or the connection is
//!   reset and it has nothing (see `copy::FencedBody`);
//! - rounds, lock requests and copies start only under a lease that holds.
//!
//! A cut copy is not a failure of its item: the item stays queued for whoever locks it
//! next. Work resumes once a new proof comes, and under locks taken after it (a round
//! that was stopped ends; its locks are released, or go with the session).

use super::metrics::Metrics;
use crate::log_line;
use crate::shutdown::Shutdown;
use crate::transport::node_transport::SendGate;
use crate::transport::tcp_queue;
use crate::zk_state::ZkState;
use parking_lot::Mutex;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The last proof that the session stood.
#[derive(Clone, Copy)]
struct Lease {
    session: i64,
    /// When the proving request was sent.
    proven_at: Instant,
    /// The session timeout `T`.
    timeout: Duration,
}

/// The process's lease on its session (see the module's comment).
pub struct Fence {
    lease: Mutex<Option<Lease>>,
    metrics: Arc<Metrics>,
}

impl Fence {
    pub fn new(metrics: Arc<Metrics>) -> Fence {
        Fence {
            lease: Mutex::new(None),
            metrics,
        }
    }

    /// A quorum round trip of `session` sent at `sent_at` was answered.
    fn proved(&self, session: i64, sent_at: Instant, timeout: Duration) {
        let mut lease = self.lease.lock();
        let newer = match *lease {
            Some(held) if held.session == session => sent_at > held.proven_at,
            _ => true,
        };
        if newer {
            *lease = Some(Lease {
                session,
                proven_at: sent_at,
                timeout,
            });
        }
    }

    /// The lease, if it is `session`'s.
    fn lease_of(&self, session: i64) -> Option<Lease> {
        (*self.lease.lock()).filter(|lease| lease.session == session)
    }

    /// How much longer work under `session`'s locks may go on: zero when the lease has
    /// run out, or is another session's.
    pub fn open_for(&self, session: i64) -> Duration {
        if cfg!(feature = "unfenced-test-build") {
            return Duration::MAX;
        }
        self.lease_of(session).map_or(Duration::ZERO, |lease| {
            (lease.proven_at + lease.timeout / 3).saturating_duration_since(Instant::now())
        })
    }

    /// Whether work under `session`'s locks may go on.
    pub fn holds(&self, session: i64) -> bool {
        !self.open_for(session).is_zero()
    }

    /// How long the last byte of a body may take to reach the node (`T/4`).
    fn last_byte_bound(&self, session: i64) -> Option<Duration> {
        self.lease_of(session).map(|lease| lease.timeout / 4)
    }
}

/// Sends the quorum round trips that keep the lease, and says in the log and the metrics
/// when work stops and resumes. Ends with the process.
pub fn keep_lease(
    fence: Arc<Fence>,
    session: impl Fn() -> Option<Arc<ZkState>> + Send + 'static,
    asked_timeout: Duration,
    shutdown: Arc<Shutdown>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("zookeeper-lease".into())
        .spawn(move || {
            let mut stopped_since: Option<Instant> = None;
            let mut every = asked_timeout / 10;
            while !shutdown.is_requested() {
                let started = Instant::now();
                if let Some(store) = session() {
                    let zk = store.session();
                    let timeout = zk.granted_timeout().min(asked_timeout);
                    every = timeout / 10;
                    // Waits no longer than the lease has left (a tenth of the timeout at
                    // least), so that a lapse is said when it happens; the next round trip
                    // renews it as well as a late answer would have.
                    let open = fence.open_for(zk.session_id());
                    let wait = open.max(every).min(timeout / 3);
                    if zk.quorum_round_trip(&store.paths().queue(), wait).is_ok() {
                        fence.proved(zk.session_id(), started, timeout);
                        let took = started.elapsed().as_secs_f64();
                        fence.metrics.quorum_seconds.observe(took);
                    }
                    let holds = fence.holds(zk.session_id());
                    stopped_since = report(&fence, holds, stopped_since, zk.session_id());
                }
                shutdown.wait_timeout(every.saturating_sub(started.elapsed()));
            }
        })
}

/// Logs and counts a change between working and stopped; when work stopped, if it is.
fn report(fence: &Fence, holds: bool, stopped: Option<Instant>, session: i64) -> Option<Instant> {
    match (holds, stopped) {
        (false, None) => {
            fence.metrics.fenced.inc();
            fence.metrics.fenced_now.set(1);
            log_line!(
                "work under locks stopped: ZooKeeper has not confirmed session 0x{session:x} through a quorum lately, and it may expire; copies in progress are cut and their items left queued"
            );
            Some(Instant::now())
        }
        (true, Some(since)) => {
            fence.metrics.fenced_now.set(0);
            log_line!(
                "work resumes under session 0x{session:x}, confirmed by a quorum, after {:.1}s stopped",
                since.elapsed().as_secs_f64()
            );
            None
        }
        (_, stopped) => stopped,
    }
}

/// Bytes of a body that may still be on their way to the node when its last byte goes.
/// Bodies up to this size never wait for acknowledgements: a wait costs a copy its
/// worker's time and a wakeup per look (with 16 KiB, a third of the replicator's CPU per
/// 64 KiB copy, and half of its copies per second). Links must carry this within `T/4`:
/// 52 kB/s at the default `T` of 10 s.
const LAST_BYTE_BACKLOG: usize = 128 * 1024;

/// One worker's gate on its node connections: the session its locks are under, asked of
/// the fence before every write (see `SendGate`).
pub struct CopyGate {
    fence: Arc<Fence>,
    session: AtomicI64,
    /// The socket last written on: the one a body goes out on.
    socket: AtomicI32,
    /// The socket whose last byte went with a short retry bound (`TCP_USER_TIMEOUT`),
    /// until its answer starts; -1 for none.
    bounded: AtomicI32,
    /// How long a node may acknowledge nothing (`--node-progress-timeout`).
    progress: Duration,
}

impl CopyGate {
    pub fn new(fence: Arc<Fence>, progress: Duration) -> CopyGate {
        CopyGate {
            fence,
            session: AtomicI64::new(0),
            socket: AtomicI32::new(-1),
            bounded: AtomicI32::new(-1),
            progress,
        }
    }

    /// The session the worker's locks are under from now on.
    pub fn work_under(&self, session: i64) {
        self.session.store(session, Ordering::Relaxed);
    }

    pub fn holds(&self) -> bool {
        self.fence.holds(self.session.load(Ordering::Relaxed))
    }

    /// Waits until the node acknowledged all but `LAST_BYTE_BACKLOG` bytes sent on the
    /// socket last written, under the lease, and bounds the delivery of what comes next
    /// (the last byte of a body) by `TCP_USER_TIMEOUT` at `T/4`. An error: the copy must
    /// stop.
    pub fn before_last_byte(&self) -> std::io::Result<()> {
        let session = self.session.load(Ordering::Relaxed);
        let socket = self.socket.load(Ordering::Relaxed);
        if cfg!(feature = "unfenced-test-build") {
            return Ok(());
        }
        let bound = self.fence.last_byte_bound(session).ok_or_else(fenced)?;
        // At most `LAST_BYTE_BACKLOG` not yet acknowledged by the node, under the lease.
        // (Not none at all: the node's kernel may delay its acknowledgement of a short
        // last segment by 40 ms, which would cost every copy as much.) The count stays
        // as it was on a connection the node reset or closed, and a node may go silent:
        // those end the copy, as they would a write.
        let mut last = (usize::MAX, Instant::now());
        loop {
            if !self.fence.holds(session) {
                return Err(fenced());
            }
            let unacknowledged = tcp_queue::unacknowledged(socket)?;
            if unacknowledged <= LAST_BYTE_BACKLOG {
                break;
            }
            if tcp_queue::is_closed(socket)? {
                return Err(std::io::ErrorKind::ConnectionReset.into());
            }
            if unacknowledged < last.0 {
                last = (unacknowledged, Instant::now());
            } else if last.1.elapsed() >= self.progress {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the node acknowledged nothing for {:?}", self.progress),
                ));
            }
            // In a copy's coroutine: waits without holding up the other copies.
            may::coroutine::sleep(Duration::from_millis(2));
        }
        tcp_queue::set_user_timeout(socket, bound)?;
        self.bounded.store(socket, Ordering::Relaxed);
        Ok(())
    }
}

impl SendGate for CopyGate {
    fn open_for(&self) -> Duration {
        self.fence.open_for(self.session.load(Ordering::Relaxed))
    }

    fn writing_on(&self, socket: RawFd) {
        self.socket.store(socket, Ordering::Relaxed);
    }

    /// Every byte arrived: the next request on the connection must not inherit the short
    /// retry bound its last byte went with. (Only the socket that has one is touched: a
    /// system call spared on every GET.)
    fn answer_started(&self, socket: RawFd) {
        if self.bounded.load(Ordering::Relaxed) == socket {
            self.bounded.store(-1, Ordering::Relaxed);
            let _ = tcp_queue::set_user_timeout(socket, Duration::ZERO);
        }
    }
}

/// The error a copy cut by the fence ends with.
pub fn fenced() -> std::io::Error {
    std::io::Error::other("cut: the ZooKeeper session is not confirmed (fenced)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence() -> Fence {
        Fence::new(Arc::new(Metrics::default()))
    }

    #[test]
    fn a_lease_holds_a_third_of_the_session_timeout_after_its_proof_was_sent() {
        let fence = fence();
        assert!(!fence.holds(7), "no proof yet");
        let timeout = Duration::from_secs(3);
        let sent = Instant::now() - Duration::from_millis(500);
        fence.proved(7, sent, timeout);
        let open = fence.open_for(7);
        assert!(open <= Duration::from_millis(500) && open > Duration::from_millis(400));
        // Another session's locks have no lease, whatever ours says.
        assert!(!fence.holds(8));
        // A proof sent a second ago is spent.
        fence.proved(9, Instant::now() - Duration::from_secs(1), timeout);
        assert!(!fence.holds(9));
        assert!(!fence.holds(7), "a newer session replaced the lease");
    }

    #[test]
    fn an_older_proof_never_shortens_the_lease() {
        let fence = fence();
        let timeout = Duration::from_secs(30);
        fence.proved(7, Instant::now(), timeout);
        fence.proved(7, Instant::now() - Duration::from_secs(9), timeout);
        assert!(fence.open_for(7) > Duration::from_secs(9));
    }

    #[test]
    fn a_gate_closes_for_a_session_that_lost_its_lease() {
        let fence = Arc::new(fence());
        let gate = CopyGate::new(Arc::clone(&fence), Duration::from_secs(5));
        fence.proved(7, Instant::now(), Duration::from_secs(30));
        gate.work_under(7);
        assert!(gate.holds());
        assert!(gate.open_for() > Duration::from_secs(9));
        gate.work_under(8);
        assert!(!gate.holds());
        assert!(gate.open_for().is_zero());
        assert!(gate.before_last_byte().is_err());
    }

    /// A node that resets the connection while bytes wait for its acknowledgement ends
    /// the copy at once: the kernel's count of them never falls after a reset.
    #[test]
    fn the_last_byte_waits_for_no_node_that_reset_the_connection() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let fence = Arc::new(fence());
        let gate = CopyGate::new(Arc::clone(&fence), Duration::from_secs(30));
        fence.proved(7, Instant::now(), Duration::from_secs(60));
        gate.work_under(7);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (node, _) = listener.accept().unwrap();
        // More than the node's buffers take while it reads nothing.
        client.set_nonblocking(true).unwrap();
        let chunk = vec![7u8; 1 << 20];
        while client.write(&chunk).is_ok() {}
        gate.writing_on(client.as_raw_fd());
        assert!(tcp_queue::unacknowledged(client.as_raw_fd()).unwrap() > LAST_BYTE_BACKLOG);
        // Closed with unread bytes: the node's kernel resets the connection.
        drop(node);
        let started = Instant::now();
        assert!(gate.before_last_byte().is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
