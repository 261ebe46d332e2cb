use std::net::SocketAddr as StdAddr;

use proptest::prelude::*;

use super::super::testing::{members_for, set};
use super::*;
use crate::upstream::selection::index_of;

fn ring(weights: &[usize]) -> Arc<ConsistentHash> {
    Arc::new(ConsistentHash::build(&set(weights)))
}

/// Backend index of each of `keys` keys.
fn owners(r: &Arc<ConsistentHash>, keys: usize) -> Vec<usize> {
    (0..keys)
        .map(|k| index_of(r.iter(format!("key-{k}").as_bytes()).next().unwrap()).unwrap())
        .collect()
}

#[test]
fn same_key_same_backend_across_rebuilds() {
    let a = owners(&ring(&[1, 2, 1, 3]), 2_000);
    let b = owners(&ring(&[1, 2, 1, 3]), 2_000);
    assert_eq!(a, b);
    let r = ring(&[1, 2, 1, 3]);
    let again: Vec<usize> = (0..2_000)
        .map(|k| index_of(r.iter(format!("key-{k}").as_bytes()).next().unwrap()).unwrap())
        .collect();
    assert_eq!(a, again);
}

#[test]
fn removing_a_backend_moves_only_its_keys() {
    let weights = [1, 2, 1, 1, 3, 1, 1, 2, 1, 1];
    let before = owners(&ring(&weights), 10_000);
    for gone in 0..weights.len() {
        // Build without `gone`; backends keep their addresses and indices.
        let rest: BTreeSet<Backend> = set(&weights)
            .into_iter()
            .filter(|b| index_of(b) != Some(gone))
            .collect();
        let after = owners(&Arc::new(ConsistentHash::build(&rest)), 10_000);
        for (k, (&was, &now)) in before.iter().zip(&after).enumerate() {
            assert!(
                was == now || was == gone,
                "key-{k} moved {was} -> {now} when {gone} left"
            );
            assert_ne!(now, gone);
        }
    }
}

#[test]
fn adding_a_backend_only_takes_keys() {
    let before = owners(&ring(&[1; 8]), 10_000);
    let after = owners(&ring(&[1; 9]), 10_000);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    assert!(before.iter().zip(&after).all(|(&b, &a)| b == a || a == 8));
    // About 1/9 of the keys.
    assert!((600..1_700).contains(&moved), "{moved} keys moved");
}

#[test]
fn shares_follow_weights() {
    let weights = [1, 2, 3, 4, 1, 1, 4, 2];
    let total: usize = weights.iter().sum();
    let keys = 100_000;
    let mut counts = vec![0usize; weights.len()];
    for o in owners(&ring(&weights), keys) {
        counts[o] += 1;
    }
    for (i, (&c, &w)) in counts.iter().zip(&weights).enumerate() {
        let expected = (keys * w / total) as f64;
        let off = (c as f64 - expected).abs() / expected;
        assert!(
            off < 0.25,
            "backend {i} (weight {w}) got {c}, expected ~{expected}: {counts:?}"
        );
    }
}

#[test]
fn same_ring_as_pingora_ketama() {
    let weights = [1, 3, 2, 1, 1];
    let r = ring(&weights);
    let buckets: Vec<pingora_ketama::Bucket> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            pingora_ketama::Bucket::new(StdAddr::from(([127, 0, 0, 1], 10000 + i as u16)), w as u32)
        })
        .collect();
    let theirs = pingora_ketama::Continuum::new(&buckets);
    for k in 0..5_000 {
        let key = format!("/some/path/{k}");
        let ours = r
            .iter(key.as_bytes())
            .next()
            .and_then(|b| b.addr.as_inet().copied());
        assert_eq!(ours, theirs.node(key.as_bytes()), "key {key}");
    }
}

#[test]
fn draining_and_empty_sets_are_safe() {
    let r = ring(&[0, 2, 0]);
    assert!(owners(&r, 100).iter().all(|&i| i == 1));
    assert!(members_for(&ring(&[0, 0]), b"k", 5).is_empty());
    assert!(members_for(&ring(&[]), b"k", 5).is_empty());
}

proptest! {
    #[test]
    fn fallback_yields_each_serving_backend_once(
        weights in prop::collection::vec(0usize..4, 0..20),
        key in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let r = ring(&weights);
        let order = members_for(&r, &key, weights.len());
        let mut seen = order.clone();
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), order.len(), "no repeats: {:?}", order);
        let serving: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
        prop_assert_eq!(seen, serving);
    }
}
