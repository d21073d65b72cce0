//! Group commit for replication items: concurrent uploads share one `SADD` per Redis
//! server instead of one each.
//!
//! Every upload that pushes joins a waiting list. If no write is in flight, it becomes the
//! *leader*: it takes the list (itself included), writes all their items in one command,
//! gives every member the outcome, and hands the lead to the first upload that joined
//! meanwhile. The others park until their batch is written. Under load a batch collects
//! the uploads that arrived during the previous round trip, so Redis sees one command (and
//! the coordinator makes one write and one read per server) for many uploads; alone, an
//! upload writes at once, as before.
//!
//! No coroutine exists for this: the leader is always an upload that needs the write
//! anyway, and a follower costs one wakeup.
//!
//! A follower waits on its mailbox without a timeout. Every way out of a leader's turn
//! either sends to each member of its batch or drops their postboxes (a panic in `write`
//! unwinds through the batch), so a follower always wakes: with its outcome, with the
//! lead, or with a closed mailbox. A timed wait was tried as a guard against lost
//! wakeups and dropped: in `may` each timed park arms a timer on the one timer thread
//! and each early wake disarms it, which wakes that thread; at 1 KiB uploads that was
//! about a tenth of the coordinator's CPU (the README's design note "Waiting on other
//! coroutines").

use super::mailbox::{mailbox, Inbox, Postbox};
use parking_lot::Mutex;

/// What a batch's write gave: how many servers took the items, or why none did.
pub type Outcome = Result<usize, String>;

/// Most pushes written as one command: bounds a command's size and a batch's latency.
const MOST_PER_BATCH: usize = 256;

/// The waiting list of one queue handle (see the module's comment).
#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A leader is writing a batch (or has been told to and is waking up).
    writing: bool,
    /// Pushes not yet in a batch, in arrival order.
    waiting: Vec<Waiter>,
}

struct Waiter {
    items: Vec<String>,
    mailbox: Postbox<Turn>,
}

/// What a waiting push is told.
enum Turn {
    /// Its batch was written.
    Done(Outcome),
    /// It leads the next batch.
    Lead,
}

impl GroupCommit {
    /// Writes `items` with `write` (called with the items of a whole batch, by one pusher
    /// at a time) and returns the outcome of the batch they went in.
    pub fn push(&self, items: Vec<String>, write: impl Fn(&[String]) -> Outcome) -> Outcome {
        let (mailbox, inbox) = mailbox();
        let lead_now = {
            let mut state = self.state.lock();
            state.waiting.push(Waiter { items, mailbox });
            !std::mem::replace(&mut state.writing, true)
        };
        if !lead_now {
            match wait(&inbox) {
                Ok(Turn::Lead) => {}
                Ok(Turn::Done(outcome)) => return outcome,
                Err(why) => return Err(why),
            }
        }
        self.lead(&write);
        match inbox.try_recv() {
            Some(Turn::Done(outcome)) => outcome,
            _ => Err("the batch holding these items was not written".into()),
        }
    }

    /// Writes one batch (which holds the leader's own push) and hands the lead on.
    fn lead(&self, write: &impl Fn(&[String]) -> Outcome) {
        let mut batch: Vec<Waiter> = {
            let mut state = self.state.lock();
            let take = state.waiting.len().min(MOST_PER_BATCH);
            state.waiting.drain(..take).collect()
        };
        // Hands the lead on even if `write` panics, so no push waits forever.
        let _hand_off = HandOff(self);
        let items: Vec<String> = batch
            .iter_mut()
            .flat_map(|waiter| std::mem::take(&mut waiter.items))
            .collect();
        let outcome = write(&items);
        for waiter in batch {
            // A follower that is gone (its upload ended) needs no answer.
            let _ = waiter.mailbox.send(Turn::Done(outcome.clone()));
        }
    }
}

/// Ends a leader's turn: the first push that joined meanwhile leads next, or nobody
/// writes until the next push comes.
struct HandOff<'a>(&'a GroupCommit);

impl Drop for HandOff<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        loop {
            let Some(next) = state.waiting.first() else {
                state.writing = false;
                return;
            };
            if next.mailbox.send(Turn::Lead).is_ok() {
                return;
            }
            // Its upload is gone: it cannot lead.
            state.waiting.remove(0);
        }
    }
}

/// Parks until the mailbox has a turn, or its postbox is gone.
fn wait(inbox: &Inbox<Turn>) -> Result<Turn, String> {
    inbox
        .recv()
        .map_err(|_| "the batch holding these items was not written".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn concurrent_pushes_share_writes_and_all_get_the_outcome() {
        let commit = Arc::new(GroupCommit::default());
        let writes = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let (commit, writes, written) = (commit.clone(), writes.clone(), written.clone());
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| {
                            commit.push(vec![format!("{t}-{i}")], |items| {
                                writes.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_micros(300));
                                written.lock().extend(items.iter().cloned());
                                Ok(items.len())
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for thread in threads {
            let outcomes = thread.join().expect("pusher");
            assert!(outcomes.iter().all(|o| matches!(o, Ok(n) if *n >= 1)));
        }
        let mut written = written.lock().clone();
        written.sort();
        written.dedup();
        assert_eq!(written.len(), 16 * 50, "every item written once");
        let writes = writes.load(Ordering::SeqCst);
        assert!(writes < 16 * 50, "{writes} writes for 800 pushes");
    }

    #[test]
    fn a_failed_write_fails_every_push_of_its_batch_and_the_next_still_writes() {
        let commit = GroupCommit::default();
        assert_eq!(
            commit.push(vec!["a".into()], |_| Err("down".into())),
            Err("down".into())
        );
        assert_eq!(
            commit.push(vec!["b".into()], |items| Ok(items.len())),
            Ok(1)
        );
    }

    /// Followers wait without a timeout, so a leader that dies mid-write must still
    /// wake every member of its batch: with an error, never a hang.
    #[test]
    fn a_leader_that_panics_wakes_its_batch_with_an_error() {
        let commit = Arc::new(GroupCommit::default());
        let pusher = |delay_ms: u64, write: fn(&[String]) -> Outcome| {
            let commit = commit.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay_ms));
                commit.push(vec![format!("{delay_ms}")], write)
            })
        };
        // The first leader writes slowly; the second and third join meanwhile and form
        // the next batch, which the second leads and whose write panics.
        let first = pusher(0, |items| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(items.len())
        });
        let second = pusher(60, |_| panic!("the write died"));
        let third = pusher(120, |items| Ok(items.len()));
        let (told, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = told.send(third.join());
        });
        let third = answer
            .recv_timeout(Duration::from_secs(5))
            .expect("the third push was never woken");
        assert!(matches!(third, Ok(Err(_))), "{third:?}");
        assert!(second.join().is_err(), "the second push's write panicked");
        assert_eq!(first.join().ok(), Some(Ok(1)));
        // The queue still writes afterwards.
        assert_eq!(
            commit.push(vec!["d".into()], |items| Ok(items.len())),
            Ok(1)
        );
    }
}
