//! `random`: a uniformly random backend, weights ignored.
//!
//! One draw from a per-thread wyrand generator per pick (O(1), no shared
//! state, so no contention between worker threads). Fallback when the choice
//! is rejected: every backend once in ring order from a second random start,
//! so a down backend's share spreads evenly rather than landing on its
//! neighbour. Weight-0 (draining) backends are never offered: "uniform" is
//! over the backends that may take new requests.

use std::collections::BTreeSet;
use std::sync::Arc;

use pingora::lb::selection::BackendSelection;
use pingora::lb::Backend;

use super::candidates::{Candidates, ChosenThenRing, HasCandidates};
use super::{rng, SelectionContext};

pub struct Random {
    cands: Candidates,
}

impl HasCandidates for Random {
    fn candidates(&self) -> &Candidates {
        &self.cands
    }
}

impl BackendSelection for Random {
    type Iter = ChosenThenRing<Random>;
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
        let n = self.cands.len();
        let first = (n > 0).then(|| rng::below(n));
        ChosenThenRing::new(self, [first, None])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{firsts, members, set};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roughly_uniform_whatever_the_weights() {
        let r = Arc::new(Random::build(&set(&[1, 5, 1, 2])));
        let mut counts = [0u32; 4];
        for i in firsts(&r, 40_000) {
            counts[i] += 1;
        }
        // Expected 10 000 each; 5 sigma is about 430.
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn draining_backends_are_never_offered() {
        let r = Arc::new(Random::build(&set(&[0, 1, 0, 1])));
        for _ in 0..50 {
            assert!(members(&r, 10).iter().all(|&i| i == 1 || i == 3));
        }
        assert!(members(&Arc::new(Random::build(&set(&[0]))), 10).is_empty());
    }

    proptest! {
        #[test]
        fn fallback_visits_every_serving_backend(weights in prop::collection::vec(0usize..3, 0..12)) {
            let r = Arc::new(Random::build(&set(&weights)));
            let mut seen = members(&r, weights.len() + 2);
            seen.sort();
            seen.dedup();
            let serving: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
            prop_assert_eq!(seen, serving);
        }
    }
}
