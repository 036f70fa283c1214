//! Bytes of response bodies held at once by one host call (`fetch` or `fetch-many`).
//!
//! A call's responses are all handed to the guest together when the call returns, so
//! each body read is kept until then. Without a bound, `fetch-many` could hold its 1,024
//! responses of up to 64 MiB each: 64 GiB. Bodies reserve their bytes here as they arrive
//! (a known `Content-Length` at once); a body that does not fit fails that request, and
//! the others of the call go on.
//!
//! Nothing waits for room: the room is given back only when the call returns, and the
//! call returns only when every request of it is done, so a request waiting here would
//! wait for itself. The guest learns which requests did not fit and can ask for them in
//! a later call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The bytes one call may still hold.
#[derive(Debug)]
pub(crate) struct Budget {
    left: AtomicU64,
    /// The whole budget, which a refusal names.
    limit: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            left: AtomicU64::new(limit),
            limit,
        })
    }
}

/// Bytes taken from a [`Budget`] for one body, given back when dropped unless kept.
#[derive(Debug)]
pub(crate) struct Held {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Held {
    /// Nothing held yet.
    pub(crate) fn new(budget: &Arc<Budget>) -> Held {
        Held {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Makes the reservation at least `bytes`, or fails when the budget has no room
    /// for the difference (taking nothing then).
    pub(crate) fn reserve(&mut self, bytes: u64) -> Result<(), u64> {
        let more = bytes.saturating_sub(self.bytes);
        if more == 0 {
            return Ok(());
        }
        // One atomic step, so concurrent bodies never take more than the budget between
        // them.
        self.budget
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(more)
            })
            .map_err(|_| self.budget.limit)?;
        self.bytes = bytes;
        Ok(())
    }

    /// Keeps the bytes taken for good: a body handed over stays held until its call
    /// returns, when the call's whole budget goes.
    pub(crate) fn keep(mut self) {
        self.bytes = 0;
    }

    /// Gives back what is held beyond `bytes` (a body shorter than its `Content-Length`
    /// said, or a HEAD answer).
    pub(crate) fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            self.budget
                .left
                .fetch_add(self.bytes - bytes, Ordering::Relaxed);
            self.bytes = bytes;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_share_the_budget_and_give_back_what_they_drop() {
        let budget = Budget::new(100);
        let mut a = Held::new(&budget);
        a.reserve(60).unwrap();
        let mut b = Held::new(&budget);
        assert_eq!(b.reserve(50), Err(100), "only 40 left");
        b.reserve(40).unwrap();
        assert!(Held::new(&budget).reserve(1).is_err());
        a.shrink_to(10);
        drop(b);
        let mut c = Held::new(&budget);
        c.reserve(90).unwrap();
        assert!(c.reserve(91).is_err());
        drop((a, c));
        assert_eq!(budget.left.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn concurrent_bodies_never_take_more_than_the_budget() {
        let budget = Budget::new(10_000);
        let kept: u64 = std::thread::scope(|s| {
            let takers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut held = Vec::new();
                        for n in 1..200 {
                            let mut h = Held::new(&budget);
                            if h.reserve(n).is_ok() {
                                held.push(h);
                            }
                        }
                        let bytes = held.iter().map(|h| h.bytes).sum::<u64>();
                        std::mem::forget(held);
                        bytes
                    })
                })
                .collect();
            takers.into_iter().map(|t| t.join().unwrap()).sum()
        });
        assert!(kept <= 10_000, "{kept}");
        assert_eq!(budget.left.load(Ordering::Relaxed), 10_000 - kept);
    }
}
