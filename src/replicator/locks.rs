//! Item locks in ZooKeeper, taken and released in batches.
//!
//! Each queue item has its own lock node, `<root>/<key><md5 of the item>`, ephemeral,
//! holding `hostname:pid`: the old replicators create and check exactly these nodes, so
//! old and new never copy one item at once. What is new is how many go in one request.
//! ZooKeeper syncs its log to disk once per transaction, so a `multi` that creates (or
//! deletes) sixteen lock nodes costs about what one create costs. A `multi` is all or
//! nothing: when one of its locks is held by someone else, nothing is created, and that
//! one lock is settled on its own (held elsewhere, or a stale lock of ours to take over)
//! before the rest go again in one request.
//!
//! A request whose answer is lost (the ZooKeeper server we talk to went silent) may or
//! may not have been carried out, and the session usually outlives it: the client moves
//! to another server of the ensemble within the session timeout. A lock created or left
//! undeleted that way is still ours, and would block its item from every replicator until
//! our process ends. Such locks are `Leftovers`: deleted at the start of a later round,
//! if still ours; and a lock of our session met again when taking it is a leftover too,
//! since a worker only locks items it has claimed in this process.

use crate::log_line;
use crate::zk::NodeKind;
use crate::zk_state::ZkState;
use parking_lot::Mutex;

/// Locks that may still be ours after a request whose answer was lost (see the module's
/// comment), shared by the workers of a process.
#[derive(Default)]
pub struct Leftovers(Mutex<Vec<String>>);

impl Leftovers {
    fn add(&self, paths: &[String]) {
        if !paths.is_empty() {
            self.0.lock().extend_from_slice(paths);
        }
    }

    /// Deletes the leftover locks that our session holds; forgets those it does not (gone
    /// with an expired session, or taken since by someone else). A lock is touched only
    /// while `claim` holds its item for us (a worker of ours that claimed it may be
    /// copying under it, our session's lock again); the others, and those ZooKeeper still
    /// does not answer for, are kept for the next sweep.
    pub fn sweep(&self, store: &ZkState, claim: impl Fn(&str) -> bool, unclaim: impl Fn(&str)) {
        let paths = std::mem::take(&mut *self.0.lock());
        if paths.is_empty() {
            return;
        }
        let zk = store.session();
        let mut kept = Vec::new();
        for path in paths {
            if !claim(&path) {
                kept.push(path);
                continue;
            }
            let done = match zk.get_with_owner(&path) {
                Ok(Some((_, owner))) if owner == zk.session_id() => zk.delete(&path).map(|_| ()),
                Ok(_) => Ok(()),
                Err(err) => Err(err),
            };
            unclaim(&path);
            if done.is_err() {
                kept.push(path);
            }
        }
        if !kept.is_empty() {
            log_line!("{} leftover lock(s) still to delete", kept.len());
        }
        self.add(&kept);
    }
}

/// Takes the locks at `paths` with `token` as their data; for each path, whether we hold
/// it now. An error (ZooKeeper unreachable, session gone) holds none: the locks settled
/// before it are released again, and those whose request went unanswered are leftovers.
pub fn take(
    store: &ZkState,
    token: &str,
    paths: &[String],
    leftovers: &Leftovers,
) -> crate::Result<Vec<bool>> {
    let mut held = vec![false; paths.len()];
    let mut pending: Vec<usize> = (0..paths.len()).collect();
    let attempt = (|| {
        while !pending.is_empty() {
            let batch: Vec<String> = pending.iter().map(|&i| paths[i].clone()).collect();
            match store
                .session()
                .create_all(&batch, token.as_bytes(), NodeKind::Ephemeral)?
            {
                Ok(()) => {
                    pending.iter().for_each(|&i| held[i] = true);
                    pending.clear();
                }
                Err(taken) => {
                    let i = pending.remove(taken);
                    held[i] = take_one(store, token, &paths[i])?;
                }
            }
        }
        Ok(())
    })();
    if let Err(err) = attempt {
        let ours: Vec<String> = held_paths(paths, &held);
        release(store, &ours, leftovers);
        let unknown: Vec<String> = pending.iter().map(|&i| paths[i].clone()).collect();
        leftovers.add(&unknown);
        return Err(err);
    }
    Ok(held)
}

/// One lock that a batch found taken: false when another process holds it. Our own
/// token under an older session of ours is stale (that session is gone or going) and is
/// taken over; under our session, it is a leftover (see the module's comment), ours.
fn take_one(store: &ZkState, token: &str, path: &str) -> crate::Result<bool> {
    let zk = store.session();
    let data = || token.as_bytes().to_vec();
    match zk.get_with_owner(path)? {
        Some((holder, owner)) if holder == token.as_bytes() && owner == zk.session_id() => Ok(true),
        Some((holder, owner)) if holder == token.as_bytes() && owner != zk.session_id() => {
            zk.delete(path)?;
            zk.create(path, data(), NodeKind::Ephemeral)
        }
        Some(_) => Ok(false),
        // Released in between: try once more.
        None => zk.create(path, data(), NodeKind::Ephemeral),
    }
}

/// Deletes the locks at `paths`, in one request when it can. A lock already gone (our
/// session ended and took it) is skipped; on a failure the rest are leftovers.
pub fn release(store: &ZkState, paths: &[String], leftovers: &Leftovers) {
    let mut pending: Vec<String> = paths.to_vec();
    while !pending.is_empty() {
        match store.session().delete_all(&pending) {
            Ok(Ok(())) => return,
            Ok(Err(gone)) => {
                pending.remove(gone);
            }
            Err(err) => {
                log_line!(
                    "cannot delete {} lock(s) ({err}); they are deleted later, or go with our session",
                    pending.len()
                );
                leftovers.add(&pending);
                return;
            }
        }
    }
}

/// The paths whose flag is set.
pub fn held_paths(paths: &[String], held: &[bool]) -> Vec<String> {
    paths
        .iter()
        .zip(held)
        .filter(|(_, held)| **held)
        .map(|(path, _)| path.clone())
        .collect()
}
