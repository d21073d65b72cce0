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

use crate::log_line;
use crate::zk::NodeKind;
use crate::zk_state::ZkState;

/// Takes the locks at `paths` with `token` as their data; for each path, whether we hold
/// it now. An error (ZooKeeper unreachable, session gone) holds none... except the locks
/// settled before it, which are released again.
pub fn take(store: &ZkState, token: &str, paths: &[String]) -> crate::Result<Vec<bool>> {
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
        release(store, &ours);
        return Err(err);
    }
    Ok(held)
}

/// One lock that a batch found taken: false when another process holds it. Our own
/// token under an older session of ours is stale (that session is gone or going) and is
/// taken over.
fn take_one(store: &ZkState, token: &str, path: &str) -> crate::Result<bool> {
    let zk = store.session();
    let data = || token.as_bytes().to_vec();
    match zk.get_with_owner(path)? {
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
/// session ended and took it) is skipped; a failure is logged: the lock then goes with
/// our session.
pub fn release(store: &ZkState, paths: &[String]) {
    let mut pending: Vec<String> = paths.to_vec();
    while !pending.is_empty() {
        match store.session().delete_all(&pending) {
            Ok(Ok(())) => return,
            Ok(Err(gone)) => {
                pending.remove(gone);
            }
            Err(err) => {
                log_line!(
                    "cannot delete {} lock(s) ({err}); they go with our session",
                    pending.len()
                );
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
