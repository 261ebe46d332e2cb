//! `max_inflight`: concurrent requests on a route. A request holds a
//! [`Slot`] from admission to its end; dropping it (however the request
//! ended) gives the slot back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct InflightLimit {
    max: usize,
    current: Arc<AtomicUsize>,
}

/// One admitted request's share of the limit.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl InflightLimit {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            current: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A slot, or `None` when `max` requests already hold one.
    pub fn try_acquire(&self) -> Option<Slot> {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(&self.current)))
    }

    /// Requests holding a slot now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back_on_drop() {
        let limit = InflightLimit::new(2);
        let a = limit.try_acquire().unwrap();
        let b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        drop(a);
        let c = limit.try_acquire().unwrap();
        assert_eq!(limit.current(), 2);
        drop((b, c));
        assert_eq!(limit.current(), 0);
    }
}
