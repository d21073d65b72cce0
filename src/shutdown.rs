//! How a daemon stops, the same for every daemon: the first SIGTERM or SIGINT asks it to
//! drain (take no new work, finish what is in flight, then exit 0); a second one exits at
//! once, with code 1, for an operator who will not wait.
//!
//! The signals are read on a thread of their own (`signal-hook`'s iterator: no handler
//! code of ours runs in signal context). The daemon's own code only asks `Shutdown`
//! whether a stop was asked, or waits for one.

use crate::error::{Error, Result};
use crate::log_line;
use parking_lot::{Condvar, Mutex};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether the daemon was asked to stop.
#[derive(Default)]
pub struct Shutdown {
    requested: Mutex<bool>,
    changed: Condvar,
}

impl Shutdown {
    /// Listens for SIGTERM and SIGINT from now on. `draining` says what the daemon does
    /// on the first signal, for the log ("finishing uploads in flight").
    pub fn on_signals(draining: &'static str) -> Result<Arc<Shutdown>> {
        let mut signals = Signals::new([SIGTERM, SIGINT])
            .map_err(|err| Error::invalid(format!("cannot handle signals: {err}")))?;
        let shutdown = Arc::new(Shutdown::default());
        let asked = Arc::clone(&shutdown);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut received = signals.forever();
                if let Some(signal) = received.next() {
                    let name = match signal {
                        SIGTERM => "SIGTERM".to_string(),
                        SIGINT => "SIGINT".to_string(),
                        other => format!("signal {other}"),
                    };
                    log_line!("{name}: {draining}; a second signal exits at once");
                    asked.request();
                }
                if received.next().is_some() {
                    log_line!("second signal: exiting now");
                    std::process::exit(1);
                }
            })
            .map_err(|err| Error::invalid(format!("cannot start the signal thread: {err}")))?;
        Ok(shutdown)
    }

    /// Asks for a stop from inside the daemon (the replicator's `--once` giving up).
    pub fn request(&self) {
        *self.requested.lock() = true;
        self.changed.notify_all();
    }

    pub fn is_requested(&self) -> bool {
        *self.requested.lock()
    }

    /// Blocks the calling thread until a stop is asked.
    pub fn wait(&self) {
        let mut requested = self.requested.lock();
        while !*requested {
            self.changed.wait(&mut requested);
        }
    }

    /// Blocks the calling thread until a stop is asked or `timeout` passes; whether one
    /// was asked.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut requested = self.requested.lock();
        while !*requested {
            if self
                .changed
                .wait_until(&mut requested, deadline)
                .timed_out()
            {
                break;
            }
        }
        *requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_wakes_a_waiter_at_once() {
        let shutdown = Arc::new(Shutdown::default());
        assert!(!shutdown.wait_timeout(Duration::from_millis(10)));
        let asked = Arc::clone(&shutdown);
        let started = Instant::now();
        let waiter = std::thread::spawn(move || asked.wait_timeout(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        shutdown.request();
        assert!(waiter.join().unwrap_or(false));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(shutdown.is_requested());
        shutdown.wait();
    }
}
