//! Test helpers shared by the policy modules.

use std::collections::BTreeSet;
use std::sync::Arc;

use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;

use super::{index_of, BackendIndex};

/// Backend `i` listens on port 10000 + i with `weights[i]`, and carries
/// `BackendIndex(i)`, so set order = index order.
pub fn set(weights: &[usize]) -> BTreeSet<Backend> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let mut b = Backend::new_with_weight(&format!("127.0.0.1:{}", 10000 + i), w).unwrap();
            b.ext.insert(BackendIndex(i));
            b
        })
        .collect()
}

/// The first choice of `picks` successive picks, as backend indices.
pub fn firsts<S>(sel: &Arc<S>, picks: usize) -> Vec<usize>
where
    S: BackendSelection,
    S::Iter: BackendIter,
{
    (0..picks)
        .map(|_| index_of(sel.iter(b"").next().expect("a first choice")).unwrap())
        .collect()
}

/// Everything one pick's iterator yields, in order, as backend indices.
/// Fails if it yields more than `cap` items: iterators must end.
pub fn members<S>(sel: &Arc<S>, cap: usize) -> Vec<usize>
where
    S: BackendSelection,
    S::Iter: BackendIter,
{
    members_for(sel, b"", cap)
}

pub fn members_for<S>(sel: &Arc<S>, key: &[u8], cap: usize) -> Vec<usize>
where
    S: BackendSelection,
    S::Iter: BackendIter,
{
    let mut it = sel.iter(key);
    let mut out = Vec::new();
    while let Some(b) = it.next() {
        out.push(index_of(b).unwrap());
        assert!(
            out.len() <= cap,
            "iterator did not end within {cap} items: {out:?}"
        );
    }
    out
}
