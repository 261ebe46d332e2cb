//! Live load: exact in-flight request (or TCP connection) counts per backend.
//!
//! The table lives outside the rebuilt selectors and is indexed by the
//! backend's position in the config, so counts survive selector rebuilds.
//! It changes only through [`InflightGuard`]: acquiring increments, dropping
//! decrements. The proxy keeps the guard in the request context, so every
//! way a request can end (success, error, client abort, retry) releases it.
//!
//! A backend's `max_conns` is enforced here: [`LoadTable::try_acquire`]
//! takes a slot with one compare-and-swap, or none when the backend is
//! full, so concurrent picks never push it past its cap. A dropped guard
//! tells the upstream's wait queue (when it has one) a slot is free.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::queue::WaitQueue;

#[derive(Debug)]
pub struct LoadTable {
    inflight: Box<[AtomicUsize]>,
    /// Each backend's `max_conns`; 0 = no cap.
    caps: Box<[usize]>,
    queue: Option<Arc<WaitQueue>>,
}

impl LoadTable {
    pub fn new(backends: usize) -> Arc<Self> {
        Self::with_caps(vec![0; backends], None)
    }

    /// A table whose backend `i` takes at most `caps[i]` (0 = any number),
    /// waking `queue`'s head whenever a slot frees.
    pub fn with_caps(caps: Vec<usize>, queue: Option<Arc<WaitQueue>>) -> Arc<Self> {
        Arc::new(Self {
            inflight: caps.iter().map(|_| AtomicUsize::new(0)).collect(),
            caps: caps.into(),
            queue,
        })
    }

    /// One more in-flight request on backend `index`, unless it is at its
    /// cap (`None`).
    pub fn try_acquire(self: &Arc<Self>, index: usize) -> Option<InflightGuard> {
        let cap = self.caps.get(index).copied().unwrap_or(0);
        if cap == 0 {
            return Some(self.acquire(index));
        }
        self.inflight[index]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        Some(InflightGuard {
            table: Arc::clone(self),
            index,
        })
    }

    /// Backend `index`'s `max_conns` (0 = no cap).
    pub fn cap(&self, index: usize) -> usize {
        self.caps.get(index).copied().unwrap_or(0)
    }

    /// Counts one more in-flight request on backend `index` until the guard drops.
    pub fn acquire(self: &Arc<Self>, index: usize) -> InflightGuard {
        self.inflight[index].fetch_add(1, Ordering::Relaxed);
        InflightGuard {
            table: Arc::clone(self),
            index,
        }
    }

    pub fn inflight(&self, index: usize) -> usize {
        self.inflight
            .get(index)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn len(&self) -> usize {
        self.inflight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inflight.is_empty()
    }
}

/// One in-flight request on one backend; releases it on drop.
#[derive(Debug)]
pub struct InflightGuard {
    table: Arc<LoadTable>,
    index: usize,
}

impl InflightGuard {
    pub fn backend(&self) -> usize {
        self.index
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.table.inflight[self.index].fetch_sub(1, Ordering::Release);
        if let Some(queue) = &self.table.queue {
            queue.slot_freed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_and_release() {
        let t = LoadTable::new(2);
        let a = t.acquire(0);
        let b = t.acquire(0);
        let c = t.acquire(1);
        assert_eq!((t.inflight(0), t.inflight(1)), (2, 1));
        drop(a);
        assert_eq!(t.inflight(0), 1);
        drop((b, c));
        assert_eq!((t.inflight(0), t.inflight(1)), (0, 0));
    }

    #[test]
    fn a_capped_backend_takes_no_more_than_its_cap() {
        let t = LoadTable::with_caps(vec![2, 0], None);
        let a = t.try_acquire(0).unwrap();
        let _b = t.try_acquire(0).unwrap();
        assert!(t.try_acquire(0).is_none());
        assert_eq!(t.inflight(0), 2);
        let many: Vec<_> = (0..10).map(|_| t.try_acquire(1).unwrap()).collect();
        assert_eq!(t.inflight(1), 10);
        drop(a);
        assert!(t.try_acquire(0).is_some());
        drop(many);
    }

    #[test]
    fn replacing_a_guard_releases_the_old_one() {
        let t = LoadTable::new(2);
        let mut slot = Some(t.acquire(0));
        assert_eq!(t.inflight(0), 1);
        slot.replace(t.acquire(1)); // a retry moves the request to backend 1
        assert_eq!((t.inflight(0), t.inflight(1)), (0, 1));
        drop(slot);
        assert_eq!(t.inflight(1), 0);
    }
}
