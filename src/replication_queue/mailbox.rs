//! A mailbox for one waiting push: the turns the group commit tells it, and the wake-up.
//!
//! `may`'s mpsc channel would do, but it is built for long streams: each channel
//! allocates and zeroes a block of slots, which at 1 KiB uploads (one mailbox per upload)
//! was about 1.5 % of the coordinator's CPU. A push is told at most two things (lead,
//! then done), so a short list under a lock and one `Blocker` are enough. A `Blocker`
//! parks a coroutine or a plain thread, whichever made the mailbox.
//!
//! Like a channel, a mailbox says when its other end is gone: `recv` returns `Closed`
//! once the postbox is dropped with nothing left to read (a leader that unwound), and
//! `send` gives the turn back once the inbox is dropped (a push that is no longer
//! waiting).

use may::sync::Blocker;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// The sending end, kept in the waiting list.
pub struct Postbox<T>(Arc<Slot<T>>);

/// The receiving end, kept by the waiting push.
pub struct Inbox<T>(Arc<Slot<T>>);

/// No turn will come: the postbox is gone, or the wait was cancelled.
#[derive(Debug)]
pub struct Closed;

struct Slot<T> {
    state: Mutex<State<T>>,
    blocker: Blocker,
}

struct State<T> {
    turns: VecDeque<T>,
    postbox_gone: bool,
    inbox_gone: bool,
}

/// A new mailbox. Made by the one who will wait on it: the blocker parks the coroutine
/// (or the thread) that calls this.
pub fn mailbox<T>() -> (Postbox<T>, Inbox<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State {
            turns: VecDeque::with_capacity(2),
            postbox_gone: false,
            inbox_gone: false,
        }),
        blocker: Blocker::new(false),
    });
    (Postbox(slot.clone()), Inbox(slot))
}

impl<T> Postbox<T> {
    /// Leaves `turn` for the inbox and wakes it; gives `turn` back when the inbox is gone.
    pub fn send(&self, turn: T) -> Result<(), T> {
        {
            let mut state = self.0.state.lock();
            if state.inbox_gone {
                return Err(turn);
            }
            state.turns.push_back(turn);
        }
        self.0.blocker.unpark();
        Ok(())
    }
}

impl<T> Drop for Postbox<T> {
    fn drop(&mut self) {
        let wake = {
            let mut state = self.0.state.lock();
            state.postbox_gone = true;
            // A turn still unread wakes it anyway (or already did), and it reads the
            // state again before it parks.
            state.turns.is_empty()
        };
        if wake {
            self.0.blocker.unpark();
        }
    }
}

impl<T> Inbox<T> {
    /// Parks until a turn is there (the oldest first), or no turn can come.
    pub fn recv(&self) -> Result<T, Closed> {
        loop {
            {
                let mut state = self.0.state.lock();
                if let Some(turn) = state.turns.pop_front() {
                    return Ok(turn);
                }
                if state.postbox_gone {
                    return Err(Closed);
                }
            }
            // An unpark between the check above and this park is not lost: the blocker
            // keeps it, and this park returns at once.
            if self.0.blocker.park(None).is_err() {
                return Err(Closed);
            }
        }
    }

    /// The oldest turn there, without waiting.
    pub fn try_recv(&self) -> Option<T> {
        self.0.state.lock().turns.pop_front()
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        self.0.state.lock().inbox_gone = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn turns_arrive_in_order_and_a_dropped_postbox_ends_the_wait() {
        let (postbox, inbox) = mailbox();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            postbox.send(1).expect("inbox there");
            postbox.send(2).expect("inbox there");
        });
        assert_eq!(inbox.recv().ok(), Some(1));
        assert_eq!(inbox.recv().ok(), Some(2));
        sender.join().expect("sender");
        assert!(
            inbox.recv().is_err(),
            "nothing can come after the postbox is gone"
        );
    }

    #[test]
    fn a_waiter_parked_before_the_postbox_drops_wakes() {
        let (postbox, inbox) = mailbox::<u8>();
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(postbox);
        });
        assert!(inbox.recv().is_err());
        dropper.join().expect("dropper");
    }

    #[test]
    fn sending_to_a_gone_inbox_gives_the_turn_back() {
        let (postbox, inbox) = mailbox();
        drop(inbox);
        assert_eq!(postbox.send(7), Err(7));
    }
}
