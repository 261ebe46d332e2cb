//! What the weight-aware policies choose from: the backends with weight > 0,
//! in config order (so ties go to the backend listed first, as an operator
//! reading the YAML expects), each with its slot in the load table.
//!
//! Weight 0 means draining, so these policies never offer such a backend;
//! an upstream whose weights are all 0 has no candidates and every pick is
//! `None` (the proxy answers 503). Built once per selector (re)build; reads
//! are lock-free.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use pingora::lb::selection::BackendIter;
use pingora::lb::Backend;

use super::{index_of, rng, SelectionContext};
use crate::upstream::load::LoadTable;

pub struct Candidates {
    backends: Box<[Backend]>,
    /// Load-table index of each candidate (its config position).
    slots: Box<[usize]>,
    /// Each candidate's weight, packed for load scans.
    weights: Box<[usize]>,
    load: Arc<LoadTable>,
}

impl Candidates {
    /// With a context, loads come from the upstream's shared table. Without
    /// one (Pingora's plain `build`) they come from a private all-zero table,
    /// so load-aware policies still work, as if nothing were in flight.
    pub fn new(set: &BTreeSet<Backend>, ctx: Option<&SelectionContext>) -> Self {
        let mut backends: Vec<Backend> = set.iter().filter(|b| b.weight > 0).cloned().collect();
        // Config order; backends without an index (not built by `Upstream`) keep set order, last.
        backends.sort_by_key(|b| index_of(b).unwrap_or(usize::MAX));
        let backends: Box<[Backend]> = backends.into();
        let load = match ctx {
            Some(c) => Arc::clone(&c.load),
            None => LoadTable::new(set.len()),
        };
        let weights = backends.iter().map(|b| b.weight).collect();
        // A backend without an index (not built by `Upstream`) reads slot
        // usize::MAX, which the table answers with 0: never another's load.
        let slots = backends
            .iter()
            .map(|b| index_of(b).unwrap_or(usize::MAX))
            .collect();
        Self {
            backends,
            slots,
            weights,
            load,
        }
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }

    pub fn get(&self, i: usize) -> &Backend {
        &self.backends[i]
    }

    pub fn weight(&self, i: usize) -> usize {
        self.weights[i]
    }

    /// Backend `i`'s in-flight count now.
    pub fn inflight(&self, i: usize) -> usize {
        self.load.inflight(self.slots[i])
    }

    /// `Less` when backend `a` carries less load per unit of weight than `b`.
    pub fn compare_load(&self, a: usize, b: usize) -> Ordering {
        compare_load(
            self.inflight(a),
            self.weights[a],
            self.inflight(b),
            self.weights[b],
        )
    }
}

/// Compares `load_a / weight_a` with `load_b / weight_b` exactly, in integers
/// (cross-multiplied in u128, so no overflow and no float rounding). Weights
/// here are never 0; if one were, it would compare as infinitely loaded.
pub fn compare_load(load_a: usize, weight_a: usize, load_b: usize, weight_b: usize) -> Ordering {
    match (weight_a, weight_b) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        _ => (load_a as u128 * weight_b as u128).cmp(&(load_b as u128 * weight_a as u128)),
    }
}

/// Walks positions `start, start+1, …` modulo `len`, each once. One
/// compare per step, no division (this is least_conn's inner loop).
#[derive(Clone, Copy, Debug)]
pub struct RingWalk {
    pos: usize,
    left: usize,
    len: usize,
}

impl RingWalk {
    pub fn new(start: usize, len: usize) -> Self {
        Self {
            pos: if len == 0 { 0 } else { start % len },
            left: len,
            len,
        }
    }

    pub fn next_pos(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let pos = self.pos;
        self.pos += 1;
        if self.pos == self.len {
            self.pos = 0;
        }
        Some(pos)
    }
}

/// A selector that chooses among [`Candidates`].
pub trait HasCandidates {
    fn candidates(&self) -> &Candidates;
}

/// Up to two chosen positions, then every candidate once in ring order from
/// a fresh random start, so when the chosen ones are rejected the load they
/// would have had spreads evenly over the rest. At most n + 2 items.
pub struct ChosenThenRing<S> {
    sel: Arc<S>,
    chosen: [Option<usize>; 2],
    next_chosen: usize,
    ring: Option<RingWalk>,
}

impl<S: HasCandidates> ChosenThenRing<S> {
    pub fn new(sel: &Arc<S>, chosen: [Option<usize>; 2]) -> Self {
        Self {
            sel: Arc::clone(sel),
            chosen,
            next_chosen: 0,
            ring: None,
        }
    }
}

impl<S: HasCandidates> BackendIter for ChosenThenRing<S> {
    fn next(&mut self) -> Option<&Backend> {
        let cands = self.sel.candidates();
        while let Some(slot) = self.chosen.get(self.next_chosen) {
            self.next_chosen += 1;
            if let Some(pos) = *slot {
                return Some(cands.get(pos));
            }
        }
        let n = cands.len();
        let ring = self
            .ring
            .get_or_insert_with(|| RingWalk::new(rng::below(n), n));
        ring.next_pos().map(|pos| cands.get(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_per_weight_compares_exactly() {
        assert_eq!(compare_load(2, 2, 1, 1), Ordering::Equal);
        assert_eq!(compare_load(3, 2, 1, 1), Ordering::Greater);
        assert_eq!(compare_load(1, 3, 1, 2), Ordering::Less);
        assert_eq!(
            compare_load(usize::MAX, 1000, usize::MAX, 999),
            Ordering::Less
        );
        assert_eq!(compare_load(0, 0, 5, 1), Ordering::Greater);
    }

    #[test]
    fn ring_walk_visits_each_position_once() {
        let mut w = RingWalk::new(7, 5);
        let seen: Vec<usize> = std::iter::from_fn(|| w.next_pos()).collect();
        assert_eq!(seen, [2, 3, 4, 0, 1]);
        assert_eq!(RingWalk::new(3, 0).next_pos(), None);
    }

    #[test]
    fn draining_backends_are_not_candidates() {
        let set: BTreeSet<Backend> = [("127.0.0.1:1", 0), ("127.0.0.1:2", 3)]
            .iter()
            .map(|(a, w)| Backend::new_with_weight(a, *w).unwrap())
            .collect();
        let c = Candidates::new(&set, None);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(0).weight, 3);
        assert_eq!(c.inflight(0), 0);
    }
}
