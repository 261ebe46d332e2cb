//! Live load: exact in-flight request (or TCP connection) counts per backend.
//!
//! The table lives outside the rebuilt selectors and is indexed by the
//! backend's position in the config, so counts survive selector rebuilds.
//! It changes only through [`InflightGuard`]: acquiring increments, dropping
//! decrements. The proxy keeps the guard in the request context, so every
//! way a request can end (success, error, client abort, retry) releases it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct LoadTable {
    inflight: Box<[AtomicUsize]>,
}

impl LoadTable {
    pub fn new(backends: usize) -> Arc<Self> {
        Arc::new(Self {
            inflight: (0..backends).map(|_| AtomicUsize::new(0)).collect(),
        })
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
        self.table.inflight[self.index].fetch_sub(1, Ordering::Relaxed);
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
