//! A cap on the bytes of upload bodies held in memory at once.
//!
//! Bodies up to `--memory-body` are kept in memory so that a node failure can be retried
//! without a spool file. Per upload that is cheap, but it multiplies with concurrency: 64
//! clients sending 1 MiB photos held 64 MiB, and 10 000 would hold 10 GiB. So every
//! in-memory body first takes its size from this budget (`--memory-budget`); a body that
//! does not fit is spooled like a large one, which costs a write to the page cache instead
//! of memory.

use std::sync::atomic::{AtomicU64, Ordering};

pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

/// Bytes taken from the budget; given back when dropped.
pub struct Reservation<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `bytes` from the budget, or None when they do not fit.
    pub fn reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let wanted = used
                .checked_add(bytes)
                .filter(|&total| total <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(used, wanted, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Reservation {
                        budget: self,
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    /// Bytes of bodies in memory right now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryBudget;

    #[test]
    fn reservations_fit_the_limit_and_are_given_back() {
        let budget = MemoryBudget::new(100);
        let a = budget.reserve(60).expect("fits");
        assert!(budget.reserve(41).is_none());
        let b = budget.reserve(40).expect("fits exactly");
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(budget.reserve(60).is_some());
        drop(b);
        assert_eq!(budget.used(), 0);
        assert!(budget.reserve(u64::MAX).is_none());
    }
}
