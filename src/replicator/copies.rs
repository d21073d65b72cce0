//! The process's copies: copy lanes, coroutines that each make one copy at a time.
//!
//! A copy is two waits on nodes (the `GET`'s answer, then the `PUT`'s). A worker thread
//! that waited in each of them slept and woke twice per copy, and those thread switches
//! were the largest part of the replicator's CPU. Coroutines wait without leaving their
//! thread: the copies in flight share `may`'s worker, which sleeps only when all of them
//! wait and then wakes to every answer that came meanwhile.
//!
//! A round's thread (its ZooKeeper and Redis work blocks, so it stays a thread) hands its
//! items to the lanes and sleeps once, until the last of them is done. There are
//! `--concurrency` lanes, each with its own slot: a ureq agent (its own pool of node
//! connections) and the fence's gate those connections ask before they write. A lane
//! makes one copy at a time, so its gate always knows which socket a body goes out on.

use super::copy::{copy_from_any, NotCopied, Plan};
use super::fence::CopyGate;
use super::give_up::FailureKind;
use super::metrics::{Metrics, Reason};
use crate::log_line;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What to copy: a queue item's text and its plan, or why it has none.
pub type PlannedItem<'a> = (&'a str, &'a Result<Plan, (Reason, String)>);

/// One copy's outcome: copied, not copied (why), or cut by the fence (`Err(None)`: not
/// the item's failure; also for copies not started once the fence closed, and for a copy
/// that panicked).
pub type Copied = Result<(), Option<NotCopied>>;

/// An agent and the gate its connections ask: what one lane copies with.
pub struct CopySlot {
    pub agent: ureq::Agent,
    pub gate: Arc<CopyGate>,
    /// Makes the lane's agent anew (an empty pool of node connections), for a new
    /// session (see `fresh_for`).
    pub new_agent: Arc<dyn Fn(&Arc<CopyGate>) -> ureq::Agent + Send + Sync>,
    /// The session of the lane's last copy; 0 before the first.
    pub session: i64,
}

impl CopySlot {
    /// Before a copy under `session`: a lane whose last copy was under another session
    /// drops its node connections. A new session means the last one expired, which
    /// takes a network that failed for a whole session timeout, and connections kept
    /// through it may still carry that failure: after a partition in which the session
    /// expired, copies on connections kept from before it stalled for 4-5 s each; on
    /// fresh ones, none did.
    fn fresh_for(&mut self, session: i64) {
        if self.session != 0 && self.session != session {
            self.agent = (self.new_agent)(&self.gate);
        }
        self.session = session;
    }
}

/// Hands copies to the lanes.
pub struct Copier {
    jobs: may::sync::mpmc::Sender<Job>,
    metrics: Arc<Metrics>,
}

/// One copy for a lane.
struct Job {
    plan: Plan,
    session: i64,
    reply: Reply,
}

/// What a round's copies share: their outcomes, how many are left, and whether the
/// fence cut one (then the others do not start).
struct RoundState {
    outcomes: parking_lot::Mutex<Vec<Option<Copied>>>,
    left: AtomicUsize,
    done: may::sync::SyncFlag,
    fenced: AtomicBool,
}

/// Where a copy's outcome goes. Dropped unsent (a lane that panicked, or lanes gone),
/// it says "not copied, left queued", so that the round never waits for it forever.
struct Reply {
    round: Arc<RoundState>,
    index: usize,
    sent: bool,
}

impl Reply {
    fn send(mut self, outcome: Copied) {
        self.sent = true;
        self.round.finish(self.index, outcome);
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if !self.sent {
            self.round.finish(self.index, Err(None));
        }
    }
}

impl RoundState {
    /// Records one outcome; the last one wakes the round's thread. (The lock is held only
    /// to store it: never across a wait.)
    fn finish(&self, index: usize, outcome: Copied) {
        if let Some(place) = self.outcomes.lock().get_mut(index) {
            *place = Some(outcome);
        }
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.fire();
        }
    }
}

impl Copier {
    /// Starts one lane per slot, as coroutines; they end when the copier is dropped.
    pub fn start(slots: Vec<CopySlot>, metrics: Arc<Metrics>, quiet: bool) -> Copier {
        let (jobs, lanes) = may::sync::mpmc::channel::<Job>();
        for mut slot in slots {
            let (lanes, metrics) = (lanes.clone(), Arc::clone(&metrics));
            may::go!(move || {
                while let Ok(job) = lanes.recv() {
                    slot.fresh_for(job.session);
                    // A copy that panics (a defect) leaves its item queued, and the lane
                    // goes on: lanes that ended one by one would stall the replicator.
                    let copy = AssertUnwindSafe(|| copy_one(&slot, &job, &metrics, quiet));
                    let outcome = std::panic::catch_unwind(copy).unwrap_or_else(|_| {
                        log_line!("a copy of {} panicked; left queued", job.plan.item.path);
                        Err(None)
                    });
                    job.reply.send(outcome);
                }
            });
        }
        Copier { jobs, metrics }
    }

    /// Copies every item under `session`'s locks, as many at once as there are lanes;
    /// the outcomes in the items' order. Returns once all are done.
    pub fn copy_all(&self, items: &[PlannedItem<'_>], session: i64) -> Vec<Copied> {
        let round = Arc::new(RoundState {
            outcomes: parking_lot::Mutex::new(items.iter().map(|_| None).collect()),
            left: AtomicUsize::new(items.len()),
            done: may::sync::SyncFlag::new(),
            fenced: AtomicBool::new(false),
        });
        for (index, (text, plan)) in items.iter().enumerate() {
            let reply = Reply {
                round: Arc::clone(&round),
                index,
                sent: false,
            };
            match plan {
                Ok(plan) => {
                    let job = Job {
                        plan: plan.clone(),
                        session,
                        reply,
                    };
                    // A send fails only with no lane left: the job's reply says so.
                    let _ = self.jobs.send(job);
                }
                Err((reason, why)) => {
                    self.metrics.failed(*reason);
                    log_line!("queue item {text} left queued: {why}");
                    reply.send(Err(Some(NotCopied {
                        reason: *reason,
                        why: why.clone(),
                        kind: FailureKind::Attempt,
                    })));
                }
            }
        }
        if !items.is_empty() {
            round.done.wait();
        }
        let outcomes = std::mem::take(&mut *round.outcomes.lock());
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Err(None)))
            .collect()
    }
}

/// Makes one job's copy on `slot`, or says why it did not.
fn copy_one(slot: &CopySlot, job: &Job, metrics: &Metrics, quiet: bool) -> Copied {
    let round = &job.reply.round;
    // Each copy starts under a lease that holds; when it lapses, the round stops and its
    // items wait for fresh locks.
    slot.gate.work_under(job.session);
    if round.fenced.load(Ordering::Relaxed) || !slot.gate.holds() {
        round.fenced.store(true, Ordering::Relaxed);
        return Err(None);
    }
    let started = Instant::now();
    metrics.in_flight.inc();
    let copied = copy_from_any(&slot.agent, &slot.gate, &job.plan);
    metrics.in_flight.dec();
    let seconds = started.elapsed().as_secs_f64();
    let item = &job.plan.item;
    match copied {
        Ok((from, bytes)) => {
            metrics.copies.inc();
            metrics.copied_bytes.inc_by(bytes);
            metrics.copy_seconds.observe(seconds);
            if !quiet {
                log_line!(
                    "copy {} {from} -> {} {bytes} bytes in {:.1} ms: ok",
                    item.path,
                    item.to,
                    seconds * 1000.0
                );
            }
            Ok(())
        }
        // Cut by the fence: not the item's failure, and said once by the lease keeper.
        Err(_) if !slot.gate.holds() => {
            round.fenced.store(true, Ordering::Relaxed);
            metrics.cut.inc();
            log_line!(
                "copy {} -> {} cut after {:.1} ms: the session is not confirmed; left queued",
                item.path,
                item.to,
                seconds * 1000.0
            );
            Err(None)
        }
        Err(not) => {
            metrics.failed(not.reason);
            log_line!(
                "copy {} [{}] -> {} in {:.1} ms: failed, left queued ({})",
                item.path,
                item.from.join(","),
                item.to,
                seconds * 1000.0,
                not.why
            );
            Err(Some(not))
        }
    }
}
