//! How many workers serve clients: as few as keep up with the load.
//!
//! With homes (see the module above), each worker serves its own clients. Spreading them
//! over every worker is right when the coordinator is what limits the uploads: measured
//! on two cores with sink nodes, two workers took 1.15-1.18x the uploads of one. It is
//! wrong when something else is: with WebDAV nodes on the same two cores, two workers
//! took the same uploads/s as one at 1.25x the CPU per upload, each waking for its own
//! clients where one would find several ready at once.
//!
//! So the workers that take clients are the first `active` ones, and `active` follows
//! the load (`sizing`): it grows by one when the active workers are busy, and shrinks by
//! one when one fewer would do. New clients go to the active home with the fewest;
//! between two requests a client moves when its home is no longer active or holds more
//! than its share.

use super::{home_of, move_home, workers, Home};
use may::net::TcpStream;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Which homes take clients, and how many each holds.
pub struct Steering {
    active: AtomicUsize,
    /// Bumped at every change of `active`: a client whose move failed tries again only
    /// after the next change.
    generation: AtomicUsize,
    clients: Vec<AtomicUsize>,
    /// Requests begun, per home (each counter on its own cache line: a worker's clients
    /// count into their home's only).
    requests: Vec<PerHome>,
}

#[repr(align(128))]
#[derive(Default)]
struct PerHome(AtomicU64);

/// One client connection's place: its home, counted in `Steering::clients` until the
/// connection ends.
pub struct Placement {
    steering: Arc<Steering>,
    home: Home,
    /// The generation in which a move to a better home failed.
    stuck_in: Option<usize>,
}

impl Default for Steering {
    fn default() -> Steering {
        Steering {
            active: AtomicUsize::new(1),
            generation: AtomicUsize::new(0),
            clients: (0..workers()).map(|_| AtomicUsize::new(0)).collect(),
            requests: (0..workers()).map(|_| PerHome::default()).collect(),
        }
    }
}

impl Steering {
    /// The workers that take clients now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// The worker threads there are.
    pub fn workers(&self) -> usize {
        self.clients.len()
    }

    /// Requests begun so far, all homes.
    pub(super) fn requests(&self) -> u64 {
        self.requests
            .iter()
            .map(|home| home.0.load(Ordering::Relaxed))
            .sum()
    }

    /// Lets `active` workers take clients (called by `sizing`).
    pub(super) fn set_active(&self, active: usize) {
        self.active
            .store(active.clamp(1, self.workers()), Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The active home with the fewest clients.
    fn emptiest(&self) -> Home {
        let active = self.active().min(self.clients.len()).max(1);
        let home = (0..active)
            .min_by_key(|&home| self.clients[home].load(Ordering::Relaxed))
            .unwrap_or(0);
        Home(home)
    }

    /// A new client's stream, moved to the active home with the fewest clients.
    pub fn place(self: &Arc<Self>, stream: TcpStream) -> io::Result<(TcpStream, Placement)> {
        let stream = move_home(stream, self.emptiest())?;
        let home = home_of(&stream);
        self.clients[home.0 % self.clients.len()].fetch_add(1, Ordering::Relaxed);
        let placement = Placement {
            steering: Arc::clone(self),
            home,
            stuck_in: None,
        };
        Ok((stream, placement))
    }
}

impl Placement {
    pub fn home(&self) -> Home {
        self.home
    }

    /// Called before each request: counts it, and says where this client should move
    /// first, if anywhere. The move is counted at once, so that clients deciding at the
    /// same time spread out instead of all taking the same home.
    pub fn before_request(&mut self) -> Option<Home> {
        let target = {
            let steering = &*self.steering;
            let homes = steering.clients.len();
            steering.requests[self.home.0 % homes]
                .0
                .fetch_add(1, Ordering::Relaxed);
            if self.stuck_in == Some(steering.generation.load(Ordering::Relaxed)) {
                return None;
            }
            let target = steering.emptiest();
            let count = |home: Home| steering.clients[home.0 % homes].load(Ordering::Relaxed);
            let outside = self.home.0 >= steering.active();
            if target == self.home || (!outside && count(self.home) <= count(target) + 1) {
                return None;
            }
            target
        };
        self.recount(target);
        Some(target)
    }

    /// After a move to the home `before_request` named: where the socket is now (a move
    /// that could not reach it is not tried again until `active` changes).
    pub fn moved(&mut self, now: Home) {
        if now != self.home {
            self.recount(now);
            self.stuck_in = Some(self.steering.generation.load(Ordering::Relaxed));
        }
    }

    fn recount(&mut self, to: Home) {
        let clients = &self.steering.clients;
        clients[self.home.0 % clients.len()].fetch_sub(1, Ordering::Relaxed);
        clients[to.0 % clients.len()].fetch_add(1, Ordering::Relaxed);
        self.home = to;
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let clients = &self.steering.clients;
        clients[self.home.0 % clients.len()].fetch_sub(1, Ordering::Relaxed);
    }
}
