//! What the clients of every peer (Backpack nodes, Redis servers) do alike, in one place:
//! which peer to ask first, and when a failed exchange on a pooled connection deserves one
//! more try.

use rand::seq::SliceRandom;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The address to connect to for `host:port` (the first the system's resolver gives), None
/// when it does not resolve. A blocking call: never on the upload path (daemons resolve on
/// their ZooKeeper thread, which keeps the answers current; see `cluster::sync`).
pub fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
}

/// "Failed recently, try last." A peer that failed is asked after the others for a while,
/// so a dead peer does not cost a connect timeout on every request; it is never excluded,
/// so it is still tried when every other peer failed too (a last hope).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cooldown {
    until: Option<Instant>,
}

impl Cooldown {
    /// Notes how an exchange went: a failure starts a cooldown of `period`, a success ends
    /// it.
    pub fn record(&mut self, worked: bool, period: Duration) {
        self.until = if worked {
            None
        } else {
            Some(Instant::now() + period)
        };
    }

    pub fn is_cooling(&self) -> bool {
        self.until.is_some_and(|until| until > Instant::now())
    }
}

/// `peers` in the order to try them: random, those cooling down last.
pub fn try_order<T>(mut peers: Vec<T>, cooling: impl Fn(&T) -> bool) -> Vec<T> {
    peers.shuffle(&mut rand::rng());
    peers.sort_by_key(|peer| cooling(peer));
    peers
}

/// The one retry rule for pooled connections: an exchange that failed on a connection
/// taken from the pool may have met a connection that died while idle (the peer
/// restarted), so it is worth one more try on a fresh connection. Not after a timeout: a
/// slow peer would cost its timeout twice.
pub fn worth_a_fresh_try(pooled: bool, timed_out: bool) -> bool {
    pooled && !timed_out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooling_peers_go_last_and_recover() {
        let mut cooldown = Cooldown::default();
        assert!(!cooldown.is_cooling());
        cooldown.record(false, Duration::from_secs(60));
        assert!(cooldown.is_cooling());
        cooldown.record(true, Duration::from_secs(60));
        assert!(!cooldown.is_cooling());
        for _ in 0..20 {
            let order = try_order(vec![1, 2, 3, 4], |peer| *peer == 2);
            assert_eq!(order.last(), Some(&2));
            assert_eq!(order.len(), 4);
        }
        assert!(worth_a_fresh_try(true, false));
        assert!(!worth_a_fresh_try(true, true) && !worth_a_fresh_try(false, false));
    }
}
