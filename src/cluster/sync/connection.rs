//! The ZooKeeper thread's session as a state machine: no session, connected, or
//! disconnected (the client reconnects by itself, keeping the session and its watches).
//! It owns the back-off between attempts and says when it next needs the thread.
//!
//! Every change of state is published at once to the process (`SessionCell`, read by the
//! replicator's lock code, and `ZkHealth`, read by `/stats` and `/metrics`), before any
//! snapshot built from the session: a reader may act on a snapshot at once.

use super::status::{SessionCell, ZkHealth};
use super::{Message, SyncSettings};
use crate::error::{Error, Result};
use crate::log_line;
use crate::zk_state::ZkState;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use zookeeper_client::SessionState;

/// Back-off between attempts while ZooKeeper does not answer: no busy loop, ever.
const MIN_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// While a session is disconnected, its client retries with a back-off that grows to
/// seconds. So after this long we also try a new session: whichever connects first wins.
const PROBE_AFTER: Duration = Duration::from_secs(1);
/// How often a process without a working session asks whether any server takes a TCP
/// connection (`zk::ServerProbe`), and how long it waits for an answer: a session is tried
/// only when one does, so a session attempt never waits out its timeout on servers that
/// drop every packet, and a healed network is noticed within half a second.
const PROBE_EVERY: Duration = Duration::from_millis(250);
const PROBE_WAIT: Duration = Duration::from_millis(100);
/// The shortest sleep while disconnected: the state may change any moment.
const DISCONNECTED_TICK: Duration = Duration::from_millis(100);

enum State {
    /// No session: one is opened at `retry_at`.
    Closed,
    /// Connected: calls go through.
    Up(Arc<ZkState>),
    /// The connection broke and the client is reconnecting; calls would only time out.
    /// From `probe_at`, a new session is tried beside it.
    Down {
        store: Arc<ZkState>,
        probe_at: Instant,
    },
}

/// What the thread's session is doing, and when it may be tried next.
pub(super) struct Link {
    state: State,
    /// When the next attempt may go: a new session, or reads after a failed call.
    retry_at: Instant,
    backoff: Duration,
    /// Which session's events count: each new session gets the next number, and events
    /// of replaced sessions are ignored.
    generation: u64,
    servers: String,
    root: String,
    zk_timeout: Duration,
    session_timeout: Duration,
    /// Where the session's events go: the thread's own queue.
    events: mpsc::Sender<Message>,
    health: Arc<ZkHealth>,
    published: Arc<SessionCell>,
    probe: crate::zk::ServerProbe,
}

impl Link {
    pub(super) fn new(
        settings: &SyncSettings,
        events: mpsc::Sender<Message>,
        health: Arc<ZkHealth>,
        published: Arc<SessionCell>,
    ) -> Link {
        Link {
            state: State::Closed,
            retry_at: Instant::now(),
            backoff: MIN_RETRY,
            generation: 0,
            servers: settings.zk_servers.clone(),
            root: settings.root.clone(),
            zk_timeout: settings.zk_timeout,
            session_timeout: settings.session_timeout,
            events,
            health,
            published,
            probe: Default::default(),
        }
    }

    /// Opens a session when one is due: none is open and the back-off has passed, or
    /// the one open has been disconnected past `PROBE_AFTER`. True when a new session
    /// opened: everything must be read again.
    pub(super) fn connect_if_due(&mut self, now: Instant) -> bool {
        let probe = match &self.state {
            State::Closed if now >= self.retry_at => false,
            State::Down { probe_at, .. } if now >= *probe_at => true,
            _ => return false,
        };
        if !self.probe.any_accepts(&self.servers, PROBE_WAIT) {
            let next = Instant::now() + PROBE_EVERY;
            match &mut self.state {
                State::Down { probe_at, .. } => *probe_at = next,
                _ => self.retry_at = self.retry_at.max(next),
            }
            return false;
        }
        match (self.open(self.zk_timeout), &mut self.state) {
            (Ok(store), _) => {
                if probe {
                    log_line!("ZooKeeper answers again; the old session had not reconnected yet, using the new one");
                }
                self.enter(State::Up(store));
                self.retry_at = Instant::now();
                true
            }
            (Err(_), State::Down { probe_at, .. }) => {
                *probe_at = Instant::now() + PROBE_EVERY;
                false
            }
            (Err(err), _) => {
                log_line!("{err}; retrying in {:.1}s", self.backoff.as_secs_f64());
                self.back_off();
                false
            }
        }
    }

    /// The session to read with: connected, and not backing off after a failed call.
    pub(super) fn ready(&self, now: Instant) -> Option<Arc<ZkState>> {
        self.connected().filter(|_| now >= self.retry_at)
    }

    /// The session, when connected.
    pub(super) fn connected(&self) -> Option<Arc<ZkState>> {
        match &self.state {
            State::Up(store) => Some(Arc::clone(store)),
            _ => None,
        }
    }

    /// The session, connected or not (a last flush at shutdown tries it anyway).
    pub(super) fn any(&self) -> Option<Arc<ZkState>> {
        match &self.state {
            State::Up(store) | State::Down { store, .. } => Some(Arc::clone(store)),
            State::Closed => None,
        }
    }

    /// A call succeeded: the next failure backs off from the start again.
    pub(super) fn answered(&mut self) {
        self.backoff = MIN_RETRY;
    }

    /// A call failed: back off; a session that ZooKeeper ended is dropped (a live one is
    /// kept: its client reconnects by itself and keeps the session and its watches).
    pub(super) fn failed(&mut self, err: &Error, what: &str) {
        let ended = self
            .any()
            .is_some_and(|store| store.session().state().is_terminated());
        log_line!(
            "{what} failed: {err}{}",
            if ended { "; opening a new session" } else { "" }
        );
        if ended {
            self.enter(State::Closed);
        }
        self.back_off();
    }

    /// A watch fired, so ZooKeeper answers: what is waiting may go now.
    pub(super) fn retry_now(&mut self) {
        self.retry_at = self.retry_at.min(Instant::now());
    }

    /// Whether an event of session `generation` counts.
    pub(super) fn is_current(&self, generation: u64) -> bool {
        generation == self.generation
    }

    /// A state change of the current session. True when everything must be read again.
    pub(super) fn on_session_event(&mut self, event: SessionState) -> bool {
        match (event, &self.state) {
            (SessionState::SyncConnected, State::Up(store) | State::Down { store, .. }) => {
                // Back after a disconnection: re-read everything, so a change made while
                // we were away is not missed.
                log_line!("ZooKeeper connection back; re-reading the configuration");
                let store = Arc::clone(store);
                self.enter(State::Up(store));
                self.backoff = MIN_RETRY;
                self.retry_at = Instant::now();
                true
            }
            (event, _) if event.is_terminated() => {
                log_line!("ZooKeeper session ended ({event}); opening a new one");
                self.enter(State::Closed);
                self.backoff = MIN_RETRY;
                self.retry_at = Instant::now();
                false
            }
            // The client reports every reconnect attempt; act on the first.
            (event, State::Up(store)) => {
                log_line!("ZooKeeper connection: {event}; serving the last configuration");
                let store = Arc::clone(store);
                self.enter(State::Down {
                    store,
                    probe_at: Instant::now() + PROBE_AFTER,
                });
                false
            }
            _ => false,
        }
    }

    /// When the session needs the thread next: to open a session, to probe, or to read
    /// (`reads_due`: when reads fall due; they wait out a back-off, and while
    /// disconnected they wait for the reconnection instead).
    pub(super) fn wake_at(&self, reads_due: Option<Instant>, now: Instant) -> Option<Instant> {
        match &self.state {
            State::Closed => Some(self.retry_at),
            State::Up(_) => reads_due.map(|due| due.max(self.retry_at)),
            State::Down { probe_at, .. } => Some((*probe_at).max(now + DISCONNECTED_TICK)),
        }
    }

    /// Closes the session (the thread ends).
    pub(super) fn close(&mut self) {
        self.enter(State::Closed);
    }

    fn back_off(&mut self) {
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_RETRY);
    }

    /// Moves to `state` and tells the process.
    fn enter(&mut self, state: State) {
        self.health.set_state(match &state {
            State::Closed => "connecting",
            State::Up(_) => "connected",
            State::Down { .. } => "disconnected",
        });
        self.state = state;
        self.published.set(&self.any());
    }

    /// Opens a new session; its events carry a new generation number.
    fn open(&mut self, timeout: Duration) -> Result<Arc<ZkState>> {
        let events = self.events.clone();
        let generation = self.generation + 1;
        let store = ZkState::open_watching(
            &self.servers,
            &self.root,
            timeout,
            self.session_timeout,
            move |event| {
                let _ = events.send(Message::Zk(generation, event));
            },
        )?;
        self.generation = generation;
        log_line!(
            "ZooKeeper session 0x{:x} open ({})",
            store.session().session_id(),
            self.servers
        );
        Ok(Arc::new(store))
    }
}
