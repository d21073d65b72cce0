//! Which items the workers of this process hold now, so that two of them never take the
//! same item (without asking ZooKeeper).

use parking_lot::Mutex;
use std::collections::HashSet;

/// Items some worker of this process is working on, by their lock's path (one per item).
#[derive(Default)]
pub struct Claims(Mutex<HashSet<String>>);

impl Claims {
    /// Claims up to `most` of the jobs, in order, skipping those another worker holds
    /// (a job's item is known by its lock's path, `lock_of`); returns those claimed.
    pub(super) fn claim<J>(
        &self,
        jobs: impl Iterator<Item = J>,
        lock_of: impl Fn(&J) -> &str,
        most: usize,
    ) -> Vec<J> {
        let mut held = self.0.lock();
        jobs.filter(|job| held.insert(lock_of(job).to_string()))
            .take(most)
            .collect()
    }

    /// Lets go of the items whose locks are at `paths`.
    pub(super) fn release<'p>(&self, paths: impl IntoIterator<Item = &'p str>) {
        let mut held = self.0.lock();
        for path in paths {
            held.remove(path);
        }
    }

    /// Claims the item whose lock is at `path`, unless a worker holds it.
    pub(super) fn claim_lock(&self, path: &str) -> bool {
        self.0.lock().insert(path.to_string())
    }

    pub(super) fn release_lock(&self, path: &str) {
        self.0.lock().remove(path);
    }
}
