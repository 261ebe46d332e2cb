//! `least_conn`: the backend with the fewest in-flight requests (TCP: open
//! connections) per unit of weight.
//!
//! Loads come live from the upstream's [`LoadTable`](crate::upstream::load::LoadTable),
//! which survives rebuilds. `a` is lighter than `b` when
//! `inflight_a × weight_b < inflight_b × weight_a`, compared in integers.
//! Ties go round robin: the scan starts just after the previous winner and
//! keeps the first strictly lighter backend, so equally loaded backends take
//! turns (NGINX breaks least_conn ties the same way).
//!
//! Cost: one scan of every backend per pick, O(n) atomic loads and
//! multiplications, no allocation. Fallback, only when the first choice is
//! rejected: the others by load (snapshotted then, so the sort is consistent),
//! ties in rotation order; O(n log n) and one allocation. Weight-0
//! (draining) backends are never offered.

use std::cmp::Ordering as Cmp;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;

use super::candidates::{compare_load, Candidates, RingWalk};
use super::SelectionContext;

pub struct LeastConn {
    cands: Candidates,
    /// Position of the previous winner; the next scan starts after it.
    last: AtomicUsize,
}

impl LeastConn {
    fn new(cands: Candidates) -> Self {
        Self {
            // So the very first scan starts at position 0.
            last: AtomicUsize::new(cands.len().saturating_sub(1)),
            cands,
        }
    }
}

impl BackendSelection for LeastConn {
    type Iter = LeastConnIter;
    type Config = SelectionContext;

    fn build_with_config(backends: &BTreeSet<Backend>, ctx: &SelectionContext) -> Self {
        Self::new(Candidates::new(backends, Some(ctx)))
    }

    fn build(backends: &BTreeSet<Backend>) -> Self {
        Self::new(Candidates::new(backends, None))
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> LeastConnIter {
        let n = self.cands.len();
        let start = self.last.load(Ordering::Relaxed).wrapping_add(1);
        let cands = &self.cands;
        let mut walk = RingWalk::new(start, n);
        let mut best = walk.next_pos();
        if let Some(mut b) = best {
            let (mut b_load, mut b_weight) = (cands.inflight(b), cands.weight(b));
            while let Some(pos) = walk.next_pos() {
                let (load, weight) = (cands.inflight(pos), cands.weight(pos));
                if compare_load(load, weight, b_load, b_weight) == Cmp::Less {
                    (b, b_load, b_weight) = (pos, load, weight);
                }
            }
            self.last.store(b, Ordering::Relaxed);
            best = Some(b);
        }
        LeastConnIter {
            sel: Arc::clone(self),
            first: best,
            first_done: false,
            start,
            rest: None,
        }
    }
}

/// The least loaded backend, then the others from least to most loaded.
pub struct LeastConnIter {
    sel: Arc<LeastConn>,
    /// The winner of the scan; `None` when there are no candidates.
    first: Option<usize>,
    first_done: bool,
    start: usize,
    /// Built on the first fallback: the other positions, lightest last (popped).
    rest: Option<Vec<usize>>,
}

impl LeastConnIter {
    fn ranked_rest(&self) -> Vec<usize> {
        let cands = &self.sel.cands;
        let mut walk = RingWalk::new(self.start, cands.len());
        let mut snapshot: Vec<(usize, usize)> = std::iter::from_fn(|| walk.next_pos())
            .filter(|&p| Some(p) != self.first)
            .map(|p| (p, cands.inflight(p)))
            .collect();
        // Stable: equal loads keep rotation order.
        snapshot
            .sort_by(|&(a, la), &(b, lb)| compare_load(la, cands.weight(a), lb, cands.weight(b)));
        snapshot.into_iter().rev().map(|(p, _)| p).collect()
    }
}

impl BackendIter for LeastConnIter {
    fn next(&mut self) -> Option<&Backend> {
        let pos = if !self.first_done {
            self.first_done = true;
            self.first?
        } else {
            if self.rest.is_none() {
                self.rest = Some(self.ranked_rest());
            }
            self.rest.as_mut()?.pop()?
        };
        Some(self.sel.cands.get(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{firsts, members, set};
    use super::*;
    use crate::upstream::load::LoadTable;
    use proptest::prelude::*;

    fn least_conn(weights: &[usize]) -> (Arc<LeastConn>, Arc<LoadTable>) {
        let load = LoadTable::new(weights.len());
        let ctx = SelectionContext {
            load: Arc::clone(&load),
        };
        (
            Arc::new(LeastConn::build_with_config(&set(weights), &ctx)),
            load,
        )
    }

    #[test]
    fn picks_the_fewest_in_flight_per_weight() {
        let (lc, load) = least_conn(&[1, 1, 3]);
        let _g = [
            load.acquire(0),
            load.acquire(1),
            load.acquire(1),
            load.acquire(2),
            load.acquire(2),
        ];
        // Loads per weight: 1, 2, 2/3.
        assert_eq!(firsts(&lc, 5), [2; 5]);
        // Fallback: the rest, lightest first.
        assert_eq!(members(&lc, 10), [2, 0, 1]);
    }

    #[test]
    fn ties_take_turns() {
        let (lc, load) = least_conn(&[1, 1, 1, 1]);
        assert_eq!(firsts(&lc, 8), [0, 1, 2, 3, 0, 1, 2, 3]);
        // Only backends 1 and 3 tie for least: they alternate.
        let _g = [load.acquire(0), load.acquire(2)];
        assert_eq!(firsts(&lc, 4), [1, 3, 1, 3]);
    }

    #[test]
    fn in_flight_requests_spread_over_backends() {
        let (lc, load) = least_conn(&[1, 2]);
        let guards: Vec<_> = (0..30).map(|_| load.acquire(firsts(&lc, 1)[0])).collect();
        assert_eq!((load.inflight(0), load.inflight(1)), (10, 20));
        drop(guards);
    }

    #[test]
    fn draining_and_empty_sets_are_safe() {
        let (lc, _) = least_conn(&[0, 1, 0]);
        assert_eq!(members(&lc, 10), [1]);
        assert!(members(&least_conn(&[0, 0]).0, 10).is_empty());
        let plain = Arc::new(LeastConn::build(&set(&[2, 1])));
        assert_eq!(firsts(&plain, 2), [0, 1]);
    }

    proptest! {
        #[test]
        fn first_choice_has_minimal_load_per_weight(
            backends in prop::collection::vec((1usize..5, 0usize..6), 1..10),
        ) {
            let weights: Vec<usize> = backends.iter().map(|b| b.0).collect();
            let (lc, load) = least_conn(&weights);
            let _guards: Vec<_> = backends
                .iter()
                .enumerate()
                .flat_map(|(i, &(_, n))| (0..n).map(move |_| i))
                .map(|i| load.acquire(i))
                .collect();
            let order = members(&lc, 100);
            prop_assert_eq!(order.len(), weights.len());
            for pair in order.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let cmp = compare_load(load.inflight(a), weights[a], load.inflight(b), weights[b]);
                prop_assert_ne!(cmp, Cmp::Greater, "order {:?}", order);
            }
        }
    }
}
