//! `round_robin`: each backend in turn, weights ignored. One atomic
//! increment per pick; the iterator then walks the ring from that start so a
//! rejected candidate falls through to the next one in order.
//!
//! When the backend whose turn it is gets turned away (down, draining, slow
//! start), the walk continues from a random other position rather than from
//! its ring neighbour; otherwise the neighbour would inherit every one of its
//! turns (with a, b, c and b down: a, c, c, a, c, c). This way the survivors
//! share them evenly, and the shared counter is not disturbed, so a ramping
//! backend is still offered exactly its own turns.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;

use super::SelectionContext;

pub struct RoundRobin {
    backends: Box<[Backend]>,
    next: AtomicUsize,
}

impl BackendSelection for RoundRobin {
    type Iter = RingIter;
    type Config = SelectionContext;

    fn build(backends: &BTreeSet<Backend>) -> Self {
        // Turns follow config order (set order for backends without an index).
        let mut backends: Vec<Backend> = backends.iter().cloned().collect();
        backends.sort_by_key(|b| super::index_of(b).unwrap_or(usize::MAX));
        Self {
            backends: backends.into(),
            next: AtomicUsize::new(0),
        }
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> RingIter {
        let n = self.backends.len().max(1);
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        RingIter {
            sel: Arc::clone(self),
            start,
            offset: 0,
            step: 0,
        }
    }
}

/// Visits every backend once: `start`, then the others in ring order from a
/// random position.
pub struct RingIter {
    sel: Arc<RoundRobin>,
    start: usize,
    /// Where the fallback walk begins, relative to `start`; drawn on the
    /// first fallback step.
    offset: usize,
    step: usize,
}

impl BackendIter for RingIter {
    fn next(&mut self) -> Option<&Backend> {
        let n = self.sel.backends.len();
        if self.step >= n {
            return None;
        }
        let index = if self.step == 0 {
            self.start
        } else {
            if self.step == 1 {
                self.offset = super::rng::below(n - 1);
            }
            // The n - 1 positions other than `start`, in ring order.
            (self.start + 1 + (self.offset + self.step - 1) % (n - 1)) % n
        };
        self.step += 1;
        self.sel.backends.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> BTreeSet<Backend> {
        (0..n)
            .map(|i| Backend::new(&format!("127.0.0.1:{}", 9000 + i)).unwrap())
            .collect()
    }

    #[test]
    fn takes_turns_and_walks_the_ring() {
        let rr = Arc::new(RoundRobin::build(&set(3)));
        let firsts: Vec<u16> = (0..6)
            .map(|_| rr.iter(b"").next().unwrap().addr.as_inet().unwrap().port())
            .collect();
        assert_eq!(firsts, [9000, 9001, 9002, 9000, 9001, 9002]);
        for _ in 0..20 {
            let mut it = rr.iter(b"");
            let mut all: Vec<u16> =
                std::iter::from_fn(|| it.next().map(|b| b.addr.as_inet().unwrap().port()))
                    .collect();
            assert_eq!(all.len(), 3);
            all.sort();
            assert_eq!(all, [9000, 9001, 9002]);
        }
    }

    #[test]
    fn survivors_share_the_turns_of_a_backend_turned_away() {
        let rr = Arc::new(RoundRobin::build(&set(3)));
        let port = |b: &Backend| b.addr.as_inet().unwrap().port();
        let mut counts = std::collections::HashMap::new();
        for _ in 0..3000 {
            let mut it = rr.iter(b"");
            let pick = loop {
                let p = port(it.next().unwrap());
                if p != 9001 {
                    break p;
                }
            };
            *counts.entry(pick).or_insert(0) += 1;
        }
        // Each survivor: its own 1000 turns plus about half of the 1000 lost ones.
        for p in [9000, 9002] {
            let c = counts[&p];
            assert!((1350..=1650).contains(&c), "{counts:?}");
        }
    }
}
