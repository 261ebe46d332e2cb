//! `weighted_round_robin`: NGINX's smooth weighted round robin.
//!
//! Each step every backend's `current` grows by its weight, the largest
//! `current` wins (the first in set order on a tie) and pays back the total
//! weight. Weights 5,1,1 give `a a b a c a a`; over any Σweights consecutive
//! picks each backend gets exactly its weight, interleaved rather than bunched.
//!
//! The sequence only depends on the weights, so it is computed once per
//! (re)build: weights are divided by their gcd (which leaves the sequence
//! unchanged and shortens its period), one period is stored, and a pick is one
//! atomic increment plus an array read (O(1), ~ns). Building costs
//! O(period × backends); when that would exceed [`PRECOMPUTE_WORK`] (very
//! many backends with large, coprime weights) the same algorithm runs live
//! under a mutex instead, O(backends) per pick: same picks, slower.
//!
//! Weight-0 (draining) backends never appear. Fallback when the first choice
//! is rejected: a few weight-proportional random draws (so a down backend's
//! share spreads over the others by weight, as NGINX's skipping does), then
//! every backend once in ring order after the first choice, so a usable
//! backend is always found if one exists. At most `backends + 5` candidates.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;

use super::candidates::{Candidates, RingWalk};
use super::{rng, SelectionContext};

/// Build work (period × backends) above which the sequence runs live.
pub const PRECOMPUTE_WORK: usize = 1 << 24;
/// Weighted random draws tried after a rejected first choice.
const FALLBACK_DRAWS: usize = 4;

pub struct WeightedRoundRobin {
    cands: Candidates,
    order: Order,
    /// Running sums of the weights, for weighted random fallback draws.
    cumulative: Box<[u64]>,
    next: AtomicUsize,
}

enum Order {
    /// One period of the smooth sequence, as candidate positions.
    Precomputed(Box<[u32]>),
    Live(Mutex<Smooth>),
}

/// NGINX's smooth weighted round robin state. i128 so that no weight a
/// `Backend` can carry overflows (`current` stays within ±Σweights).
#[derive(Clone, Debug)]
struct Smooth {
    weights: Box<[i128]>,
    current: Box<[i128]>,
    total: i128,
}

impl Smooth {
    /// `weights` must all be > 0 and not empty.
    fn new(weights: &[u64]) -> Self {
        let g = weights.iter().copied().fold(0, gcd).max(1);
        let weights: Box<[i128]> = weights.iter().map(|w| i128::from(w / g)).collect();
        Self {
            total: weights.iter().sum(),
            current: vec![0; weights.len()].into(),
            weights,
        }
    }

    fn period(&self) -> usize {
        usize::try_from(self.total).unwrap_or(usize::MAX)
    }

    fn step(&mut self) -> usize {
        let mut best = 0;
        for i in 0..self.weights.len() {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        best
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl WeightedRoundRobin {
    fn new(cands: Candidates, precompute_work: usize) -> Self {
        let weights: Vec<u64> = (0..cands.len()).map(|i| cands.weight(i) as u64).collect();
        let cumulative = weights
            .iter()
            .scan(0u64, |sum, &w| {
                // Saturating: only weights far beyond the config's 1000 could
                // overflow, and they must not panic.
                *sum = sum.saturating_add(w);
                Some(*sum)
            })
            .collect();
        let order = if weights.is_empty() {
            Order::Precomputed(Box::new([]))
        } else {
            let mut smooth = Smooth::new(&weights);
            let work = smooth.period().saturating_mul(weights.len());
            if work <= precompute_work {
                Order::Precomputed((0..smooth.period()).map(|_| smooth.step() as u32).collect())
            } else {
                Order::Live(Mutex::new(smooth))
            }
        };
        Self {
            cands,
            order,
            cumulative,
            next: AtomicUsize::new(0),
        }
    }

    /// The next position in the smooth sequence; `None` without candidates.
    fn advance(&self) -> Option<usize> {
        match &self.order {
            Order::Precomputed(seq) if seq.is_empty() => None,
            Order::Precomputed(seq) => {
                Some(seq[self.next.fetch_add(1, Ordering::Relaxed) % seq.len()] as usize)
            }
            Order::Live(m) => Some(
                m.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .step(),
            ),
        }
    }

    /// A position drawn with probability weight / Σweights.
    fn draw(&self) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        let r = rng::below(total as usize) as u64;
        self.cumulative.partition_point(|&c| c <= r)
    }
}

impl BackendSelection for WeightedRoundRobin {
    type Iter = WrrIter;
    type Config = SelectionContext;

    fn build_with_config(backends: &BTreeSet<Backend>, ctx: &SelectionContext) -> Self {
        Self::new(Candidates::new(backends, Some(ctx)), PRECOMPUTE_WORK)
    }

    fn build(backends: &BTreeSet<Backend>) -> Self {
        Self::new(Candidates::new(backends, None), PRECOMPUTE_WORK)
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> WrrIter {
        let first = self.advance();
        let n = self.cands.len();
        WrrIter {
            sel: Arc::clone(self),
            first,
            draws_left: FALLBACK_DRAWS.min(n.saturating_sub(1)),
            ring: RingWalk::new(first.map_or(0, |p| p + 1), n),
        }
    }
}

/// The sequence's pick, then weighted draws, then the ring.
pub struct WrrIter {
    sel: Arc<WeightedRoundRobin>,
    first: Option<usize>,
    draws_left: usize,
    ring: RingWalk,
}

impl BackendIter for WrrIter {
    fn next(&mut self) -> Option<&Backend> {
        let pos = if let Some(p) = self.first.take() {
            p
        } else if self.draws_left > 0 {
            self.draws_left -= 1;
            self.sel.draw()
        } else {
            self.ring.next_pos()?
        };
        Some(self.sel.cands.get(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{firsts, members, set};
    use super::*;
    use proptest::prelude::*;

    fn wrr(weights: &[usize], work: usize) -> Arc<WeightedRoundRobin> {
        Arc::new(WeightedRoundRobin::new(
            Candidates::new(&set(weights), None),
            work,
        ))
    }

    #[test]
    fn five_one_one_is_interleaved_like_nginx() {
        for work in [PRECOMPUTE_WORK, 0] {
            let picks = firsts(&wrr(&[5, 1, 1], work), 14);
            assert_eq!(
                picks,
                [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0],
                "work limit {work}"
            );
        }
    }

    #[test]
    fn gcd_reduction_keeps_the_sequence() {
        assert_eq!(
            firsts(&wrr(&[10, 2, 2], PRECOMPUTE_WORK), 7),
            firsts(&wrr(&[5, 1, 1], 0), 7)
        );
    }

    #[test]
    fn draining_backends_are_never_offered_and_all_zero_is_empty() {
        let s = wrr(&[0, 2, 0, 1], PRECOMPUTE_WORK);
        for _ in 0..20 {
            assert!(members(&s, 100).iter().all(|&i| i == 1 || i == 3));
        }
        assert!(members(&wrr(&[0, 0], PRECOMPUTE_WORK), 100).is_empty());
        assert!(members(&wrr(&[], PRECOMPUTE_WORK), 100).is_empty());
    }

    #[test]
    fn fallback_reaches_every_serving_backend() {
        let s = wrr(&[100, 1, 1, 1], PRECOMPUTE_WORK);
        let mut all = members(&s, 100);
        all.sort();
        all.dedup();
        assert_eq!(all, [0, 1, 2, 3]);
    }

    proptest! {
        #[test]
        fn every_window_of_one_period_is_exact(
            weights in prop::collection::vec(1usize..12, 1..8),
            offset in 0usize..50,
            live in any::<bool>(),
        ) {
            let s = wrr(&weights, if live { 0 } else { PRECOMPUTE_WORK });
            let g = weights.iter().fold(0, |a, &w| gcd(a as u64, w as u64) as usize);
            let period: usize = weights.iter().sum::<usize>() / g;
            firsts(&s, offset);
            let mut counts = vec![0; weights.len()];
            for i in firsts(&s, period) {
                counts[i] += 1;
            }
            let expected: Vec<usize> = weights.iter().map(|w| w / g).collect();
            prop_assert_eq!(counts, expected);
        }

        #[test]
        fn live_and_precomputed_agree(weights in prop::collection::vec(0usize..20, 1..10)) {
            prop_assume!(weights.iter().any(|&w| w > 0));
            let a = firsts(&wrr(&weights, PRECOMPUTE_WORK), 60);
            let b = firsts(&wrr(&weights, 0), 60);
            prop_assert_eq!(a, b);
        }
    }
}
