//! `round_robin`: each backend in turn, weights ignored. One atomic
//! increment per pick; the iterator then walks the ring from that start so a
//! rejected candidate falls through to the next one in order.
//!
//! Each step past a rejected candidate also advances the shared counter, so
//! the next request starts after the backend that took over. Without that, a
//! down or draining backend's turn would always land on its ring neighbour
//! (with a, b, c and b down: a, c, c, a, c, c); with it the survivors keep
//! alternating evenly (a, c, a, c).

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
        Self {
            backends: backends.iter().cloned().collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> RingIter {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        RingIter {
            sel: Arc::clone(self),
            start,
            step: 0,
        }
    }
}

/// Visits every backend once, starting at `start`.
pub struct RingIter {
    sel: Arc<RoundRobin>,
    start: usize,
    step: usize,
}

impl BackendIter for RingIter {
    fn next(&mut self) -> Option<&Backend> {
        let n = self.sel.backends.len();
        if self.step >= n {
            return None;
        }
        if self.step > 0 {
            // The previous candidate was turned away: take its turn too.
            self.sel.next.fetch_add(1, Ordering::Relaxed);
        }
        let b = &self.sel.backends[(self.start + self.step) % n];
        self.step += 1;
        Some(b)
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
        let mut it = rr.iter(b"");
        let all: Vec<u16> =
            std::iter::from_fn(|| it.next().map(|b| b.addr.as_inet().unwrap().port())).collect();
        assert_eq!(all, [9000, 9001, 9002]);
    }

    #[test]
    fn survivors_alternate_when_one_backend_is_turned_away() {
        let rr = Arc::new(RoundRobin::build(&set(3)));
        let port = |b: &Backend| b.addr.as_inet().unwrap().port();
        let picks: Vec<u16> = (0..6)
            .map(|_| {
                let mut it = rr.iter(b"");
                loop {
                    let p = port(it.next().unwrap());
                    if p != 9001 {
                        break p;
                    }
                }
            })
            .collect();
        assert_eq!(picks, [9000, 9002, 9000, 9002, 9000, 9002]);
    }
}
