//! Laws every policy obeys, checked the way the proxy uses them: through
//! the [`Walk`](crate::upstream::Walk) behind [`Pick`].

use std::sync::Arc;

use pingora::lb::selection::{BackendIter, BackendSelection};
use proptest::prelude::*;

use super::testing::{members, set};
use super::*;
use crate::upstream::health::HealthEvents;
use crate::upstream::{walk, Pick};

fn load_balancer<S>(weights: &[usize]) -> Arc<dyn Pick>
where
    S: BackendSelection<Config = SelectionContext> + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    let ctx = SelectionContext {
        load: LoadTable::new(weights.len()),
    };
    let names = (0..weights.len()).map(|i| i.to_string()).collect();
    Arc::new(walk::<S>(
        &set(weights),
        &ctx,
        HealthEvents::new("t", names),
    ))
}

/// Whatever single backend `accept` allows, the pick finds it if the policy
/// may choose it (weight > 0, or any for round robin), and nothing else.
fn finds_the_one_accepted<S>(weights: &[usize], target: usize, weight_blind: bool)
where
    S: BackendSelection<Config = SelectionContext> + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    let lb = load_balancer::<S>(weights);
    let choosable = target < weights.len() && (weight_blind || weights[target] > 0);
    for key in [&b"a"[..], b"b", b"client-42"] {
        let got = lb.pick(key, &|i| i == target);
        assert_eq!(
            got,
            choosable.then_some(target),
            "weights {weights:?}, target {target}"
        );
    }
}

/// One pick's raw iterator ends within n + 5 items and yields only members,
/// covering every backend the policy may choose.
fn iterates_every_choosable<S>(weights: &[usize], weight_blind: bool)
where
    S: BackendSelection + 'static,
    S::Iter: BackendIter,
{
    let sel = Arc::new(S::build(&set(weights)));
    let mut seen = members(&sel, weights.len() + 5);
    seen.sort();
    seen.dedup();
    let choosable: Vec<usize> = (0..weights.len())
        .filter(|&i| weight_blind || weights[i] > 0)
        .collect();
    assert_eq!(seen, choosable, "weights {weights:?}");
}

fn all_laws(weights: &[usize], target: usize) {
    finds_the_one_accepted::<RoundRobin>(weights, target, true);
    finds_the_one_accepted::<WeightedRoundRobin>(weights, target, false);
    finds_the_one_accepted::<LeastConn>(weights, target, false);
    finds_the_one_accepted::<P2c>(weights, target, false);
    finds_the_one_accepted::<ConsistentHash>(weights, target, false);
    finds_the_one_accepted::<Random>(weights, target, false);
    iterates_every_choosable::<RoundRobin>(weights, true);
    iterates_every_choosable::<WeightedRoundRobin>(weights, false);
    iterates_every_choosable::<LeastConn>(weights, false);
    iterates_every_choosable::<P2c>(weights, false);
    iterates_every_choosable::<ConsistentHash>(weights, false);
    iterates_every_choosable::<Random>(weights, false);
}

#[test]
fn edge_cases() {
    all_laws(&[], 0);
    all_laws(&[0], 0);
    all_laws(&[0, 0, 0], 1);
    all_laws(&[1], 0);
    all_laws(&[1000, 1], 1);
    all_laws(&[1; 200], 199);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn every_policy_finds_an_acceptable_backend(
        weights in prop::collection::vec(0usize..5, 0..40),
        target in 0usize..40,
    ) {
        all_laws(&weights, target);
    }
}
