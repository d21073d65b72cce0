//! The ZooKeeper thread's loop: do what is due, then sleep until the earliest deadline of
//! its parts (or a message) and handle what woke it.

use super::build::Builder;
use super::connection::Link;
use super::flush::{FlushScope, SizeFlusher};
use super::plan::ReadPlan;
use super::publish::Publisher;
use super::read::Mirror;
use super::status::ZkHealth;
use super::{Message, Shared, SyncSettings};
use crate::log_line;
use crate::state::Paths;
use crate::zk::ZkEvent;
use crate::zk_state::ZkState;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The thread's state: its parts, and when names are looked up again.
pub(super) struct Keeper {
    link: Link,
    plan: ReadPlan,
    mirror: Mirror,
    builder: Builder,
    publisher: Publisher,
    /// None in a process that counts no sizes (the replicator, bp-nginx-gen).
    flusher: Option<SizeFlusher>,
    health: Arc<ZkHealth>,
    paths: Paths,
    resolve_every: Duration,
    next_resolve: Instant,
}

impl Keeper {
    pub(super) fn new(
        settings: SyncSettings,
        paths: Paths,
        shared: &Shared,
        events: mpsc::Sender<Message>,
    ) -> Keeper {
        let size_refresh = settings.sizes.as_ref().map(|sizes| sizes.refresh_every);
        // The size poll starts at a random point of its interval (see `ReadPlan::new`).
        let phase = size_refresh
            .unwrap_or_default()
            .mul_f64(rand::random::<f64>());
        let link = Link::new(
            &settings,
            events,
            Arc::clone(&shared.health),
            Arc::clone(&shared.session),
        );
        let flusher = settings.sizes.clone().map(|accounting| {
            SizeFlusher::new(
                accounting,
                paths.clone(),
                Arc::clone(&shared.sizes),
                Arc::clone(&shared.snapshot),
            )
        });
        Keeper {
            link,
            plan: ReadPlan::new(size_refresh, phase),
            mirror: Mirror::new(paths.clone(), settings.sizes.is_some()),
            builder: Builder::new(paths.clone(), settings.uses_queue, settings.redis_timeout),
            publisher: Publisher::new(Arc::clone(&shared.snapshot), settings.sizes.is_some()),
            flusher,
            health: Arc::clone(&shared.health),
            paths,
            resolve_every: settings.resolve_every,
            next_resolve: Instant::now() + settings.resolve_every,
        }
    }

    /// Runs until told to stop: do what is due, sleep until the next deadline or message.
    pub(super) fn run(mut self, messages: mpsc::Receiver<Message>) {
        loop {
            self.work(Instant::now());
            let wake = self.wake_at(Instant::now());
            let mut next = messages
                .recv_timeout(wake.saturating_duration_since(Instant::now()))
                .ok();
            while let Some(message) = next {
                if !self.handle(message) {
                    return;
                }
                next = messages.try_recv().ok();
            }
        }
    }

    /// Does what is due at `now`: a session to open, reads, a lookup round, a flush.
    fn work(&mut self, now: Instant) {
        if self.link.connect_if_due(now) {
            self.plan.everything();
        }
        if let Some(store) = self.link.ready(now) {
            self.read_due(&store, now);
        }
        if now >= self.next_resolve {
            if self.builder.refresh_addresses() {
                self.publish();
            }
            self.next_resolve = Instant::now() + self.resolve_every;
        }
        if self.flusher.as_ref().is_some_and(|f| now >= f.next_at()) {
            self.flush_due();
        }
    }

    /// The earliest deadline: the session's, the next lookup round, the next flush.
    fn wake_at(&self, now: Instant) -> Instant {
        let deadlines = [
            self.link.wake_at(self.plan.due_at(now), now),
            self.flusher.as_ref().map(SizeFlusher::next_at),
        ];
        deadlines
            .into_iter()
            .flatten()
            .fold(self.next_resolve, Instant::min)
    }

    /// Handles one message; false when the thread must end.
    fn handle(&mut self, message: Message) -> bool {
        match message {
            Message::Zk(generation, _) if !self.link.is_current(generation) => {}
            Message::Zk(_, ZkEvent::Changed(path)) => {
                self.plan.changed(path);
                self.link.retry_now();
            }
            Message::Zk(_, ZkEvent::Session(state)) => {
                if self.link.on_session_event(state) {
                    self.plan.everything();
                }
            }
            Message::Flush(done) => {
                if let (Some(store), Some(flusher)) = (self.link.any(), &mut self.flusher) {
                    if let Err(err) = flusher.flush(&store, FlushScope::All) {
                        log_line!("applying size increments failed: {err}");
                    }
                }
                let _ = done.send(());
            }
            Message::Stop(done) => {
                self.link.close();
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    /// Reads what the plan says is due, and publishes what changed.
    fn read_due(&mut self, store: &ZkState, now: Instant) {
        let Some(reads) = self.plan.take_due(now) else {
            return;
        };
        match self.mirror.read(store, &reads) {
            Ok(changed) => {
                self.health.read_now();
                self.plan.size_nodes(self.mirror.size_nodes());
                self.link.answered();
                if changed {
                    self.publish();
                }
            }
            Err(err) => {
                self.plan.failed(reads);
                self.link.failed(&err, "reading the configuration");
            }
        }
    }

    /// The periodic flush; also a liveness probe: `zookeeper_last_read_ms` stays small
    /// while ZooKeeper answers, even when nothing changes. While disconnected the
    /// increments stay pending; none is lost.
    fn flush_due(&mut self) {
        let Some(flusher) = &mut self.flusher else {
            return;
        };
        let flushed = match self.link.connected() {
            Some(store) => store
                .session()
                .get(&self.paths.shards_map())
                .map(|_| self.health.read_now())
                .and_then(|()| flusher.flush(&store, FlushScope::Due)),
            None => Ok(()),
        };
        flusher.schedule_next();
        if let Err(err) = flushed {
            self.link.failed(&err, "applying size increments");
        }
    }

    fn publish(&mut self) {
        let built = self.builder.build(self.mirror.raw());
        self.publisher.publish(built);
    }
}
