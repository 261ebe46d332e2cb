//! `p2c`: power of two choices. Two *distinct* backends drawn uniformly at
//! random; the one with fewer in-flight requests per unit of weight goes
//! first (on a tie, the first drawn).
//!
//! Sampling two instead of scanning all keeps a pick O(1) (two random draws,
//! two atomic loads) while avoiding the herding of "always the global least
//! loaded", and it reduces the worst backend's excess load exponentially
//! compared with one random choice (Mitzenmacher). Loads come live from the
//! upstream's load table. Fallback: the other of the two, then every backend
//! once in ring order from a random start. With one backend, that one.
//! Weight-0 (draining) backends are never drawn.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use pingora::lb::selection::BackendSelection;
use pingora::lb::Backend;

use super::candidates::{Candidates, ChosenThenRing, HasCandidates};
use super::{rng, SelectionContext};

pub struct P2c {
    cands: Candidates,
}

impl HasCandidates for P2c {
    fn candidates(&self) -> &Candidates {
        &self.cands
    }
}

/// Two distinct positions in `0..n` (n ≥ 2), uniformly among such pairs.
fn two_distinct(n: usize) -> (usize, usize) {
    let a = rng::below(n);
    let b = rng::below(n - 1);
    (a, if b >= a { b + 1 } else { b })
}

impl BackendSelection for P2c {
    type Iter = ChosenThenRing<P2c>;
    type Config = SelectionContext;

    fn build_with_config(backends: &BTreeSet<Backend>, ctx: &SelectionContext) -> Self {
        Self {
            cands: Candidates::new(backends, Some(ctx)),
        }
    }

    fn build(backends: &BTreeSet<Backend>) -> Self {
        Self {
            cands: Candidates::new(backends, None),
        }
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> Self::Iter {
        let chosen = match self.cands.len() {
            0 => [None, None],
            1 => [Some(0), None],
            n => {
                let (a, b) = two_distinct(n);
                if self.cands.compare_load(b, a) == Ordering::Less {
                    [Some(b), Some(a)]
                } else {
                    [Some(a), Some(b)]
                }
            }
        };
        ChosenThenRing::new(self, chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{firsts, members, set};
    use super::*;
    use crate::upstream::load::LoadTable;
    use proptest::prelude::*;

    fn p2c(weights: &[usize]) -> (Arc<P2c>, Arc<LoadTable>) {
        let load = LoadTable::new(weights.len());
        let ctx = SelectionContext {
            load: Arc::clone(&load),
        };
        (Arc::new(P2c::build_with_config(&set(weights), &ctx)), load)
    }

    #[test]
    fn the_lighter_of_the_two_goes_first() {
        let (p, load) = p2c(&[1, 1]);
        let _g = [load.acquire(0), load.acquire(0)];
        assert_eq!(firsts(&p, 50), [1; 50]);
        let mut all = members(&p, 10);
        all.dedup();
        assert_eq!(all[..2], [1, 0]);
    }

    #[test]
    fn the_most_loaded_backend_is_never_first() {
        // The heaviest can only win against itself, and the two are distinct.
        let (p, load) = p2c(&[1, 1, 1, 1, 1]);
        let _g: Vec<_> = (0..3).map(|_| load.acquire(2)).collect();
        assert!(firsts(&p, 2_000).iter().all(|&i| i != 2));
    }

    #[test]
    fn one_backend_is_always_chosen_and_none_is_safe() {
        let (p, _) = p2c(&[0, 4, 0]);
        assert_eq!(firsts(&p, 10), [1; 10]);
        assert_eq!(members(&p, 10), [1, 1]);
        assert!(members(&p2c(&[]).0, 10).is_empty());
    }

    proptest! {
        #[test]
        fn the_two_choices_are_distinct_members(n in 2usize..40) {
            for _ in 0..50 {
                let (a, b) = two_distinct(n);
                prop_assert!(a < n && b < n && a != b);
            }
        }

        #[test]
        fn fallback_visits_every_serving_backend(weights in prop::collection::vec(0usize..3, 0..12)) {
            let (p, _) = p2c(&weights);
            let mut seen = members(&p, weights.len() + 2);
            if seen.len() > 2 {
                prop_assert_ne!(seen[0], seen[1], "the two choices are distinct");
            }
            seen.sort();
            seen.dedup();
            let serving: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
            prop_assert_eq!(seen, serving);
        }
    }
}
