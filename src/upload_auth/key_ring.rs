//! The upload keys in force, kept current from their file without a restart.
//!
//! The file is re-read on SIGHUP and whenever it changes: a thread looks at its metadata
//! (device, inode, size, times) four times a second, so an edit in place and a new file
//! renamed over the old one are both seen within a second. A file that cannot be read or
//! does not parse leaves the keys in force as they were, and the log says why; each
//! outcome is told to `KeyEvents` (for `/metrics`).
//!
//! Uploads read the keys with `with_current()`: a short read lock, never held across
//! anything that waits.

use super::keys::UploadKeys;
use crate::error::{Error, Result};
use crate::log_line;
use parking_lot::RwLock;
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::Signals;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the file's metadata is looked at.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// What the key ring tells whoever counts: a reload that took (`true`) or failed.
pub trait KeyEvents: Send + Sync {
    fn keys_reloaded(&self, took: bool);
}

/// The keys in force, and when they last changed.
pub struct KeyRing {
    path: PathBuf,
    in_force: RwLock<InForce>,
}

/// Keys and the moment they were read, replaced together.
struct InForce {
    keys: Arc<UploadKeys>,
    loaded_at: SystemTime,
}

impl InForce {
    fn now(keys: UploadKeys) -> InForce {
        InForce {
            keys: Arc::new(keys),
            loaded_at: SystemTime::now(),
        }
    }
}

impl KeyRing {
    /// Loads `path`: an error here stops the coordinator from starting.
    pub fn load(path: &Path) -> Result<Arc<KeyRing>> {
        let keys = UploadKeys::load(path)
            .map_err(|why| Error::invalid(format!("--upload-keys: {why}")))?;
        log_line!(
            "upload tokens required; keys in force from {}: {}",
            path.display(),
            keys.id_list()
        );
        Ok(Arc::new(KeyRing {
            path: path.to_path_buf(),
            in_force: RwLock::new(InForce::now(keys)),
        }))
    }

    /// Keeps the keys current from threads of their own (SIGHUP, and the file's changes);
    /// `events` hears of every reload.
    pub fn watch(self: &Arc<KeyRing>, events: Arc<dyn KeyEvents>) -> Result<()> {
        let (hangups, woken) = mpsc::channel();
        on_hangups(move || hangups.send(()).is_ok())?;
        let watched = Arc::clone(self);
        spawn("upload-keys", move || watched.keep_current(&woken, &events))
    }

    /// The keys in force now.
    pub fn current(&self) -> Arc<UploadKeys> {
        Arc::clone(&self.in_force.read().keys)
    }

    /// `check` on the keys in force, under the read lock: for a check that never waits
    /// (it costs the lock's two atomic operations, not also an `Arc`'s two).
    pub fn with_current<T>(&self, check: impl FnOnce(&UploadKeys) -> T) -> T {
        check(&self.in_force.read().keys)
    }

    /// The file the keys come from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the keys in force were read.
    pub fn loaded_at(&self) -> SystemTime {
        self.in_force.read().loaded_at
    }

    fn keep_current(&self, hangups: &mpsc::Receiver<()>, events: &Arc<dyn KeyEvents>) {
        let mut seen = stamp(&self.path);
        loop {
            let hangup = match hangups.recv_timeout(POLL_EVERY) {
                Ok(()) => true,
                Err(mpsc::RecvTimeoutError::Timeout) => false,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let now = stamp(&self.path);
            if !hangup && now == seen {
                continue;
            }
            seen = now;
            let why = match hangup {
                true => "SIGHUP",
                false => "the file changed",
            };
            events.keys_reloaded(self.reload(why));
        }
    }

    /// Reads the file again: whether the keys it holds are now in force.
    fn reload(&self, why: &str) -> bool {
        let shown = self.path.display();
        match UploadKeys::load(&self.path) {
            Ok(keys) => {
                let ids = keys.id_list();
                *self.in_force.write() = InForce::now(keys);
                log_line!("upload keys reloaded from {shown} ({why}); in force: {ids}");
                true
            }
            Err(err) => {
                let ids = self.current().id_list();
                log_line!("upload keys not reloaded ({why}): {err}; still in force: {ids}");
                false
            }
        }
    }
}

/// Without `--upload-keys`, SIGHUP (`systemctl reload`) has nothing to re-read: it is
/// logged and otherwise ignored, rather than ending the process as it would by default.
pub fn ignore_hangups() -> Result<()> {
    on_hangups(|| {
        log_line!("SIGHUP: nothing to re-read (no --upload-keys)");
        true
    })
}

/// Runs `each` on every SIGHUP from now on, on a thread of its own, until it answers
/// false.
fn on_hangups(mut each: impl FnMut() -> bool + Send + 'static) -> Result<()> {
    let mut signals = Signals::new([SIGHUP])
        .map_err(|err| Error::invalid(format!("cannot handle SIGHUP: {err}")))?;
    spawn("sighup", move || {
        for _ in signals.forever() {
            if !each() {
                return;
            }
        }
    })
}

/// What identifies the file's content without reading it; None when it cannot be read.
fn stamp(path: &Path) -> Option<(u64, u64, u64, i64, i64, i64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map(|_| ())
        .map_err(|err| Error::invalid(format!("cannot start the {name} thread: {err}")))
}
