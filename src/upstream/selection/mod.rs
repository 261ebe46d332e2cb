//! Balancing policies, each a Pingora [`BackendSelection`] so `LoadBalancer`
//! keeps discovery, health and rebuild-on-change. A policy only *orders*
//! candidates; whether a candidate may be used (up, not draining, not tried
//! yet in this request) is decided by one `accept` function in
//! [`super::Upstream::select`].
//!
//! Every selector is built with the upstream's [`SelectionContext`]: the
//! shared load table, so load-aware policies read live in-flight counts that
//! survive rebuilds.

mod candidates;
mod consistent_hash;
mod least_conn;
mod p2c;
mod random;
mod rng;
mod round_robin;
#[cfg(test)]
mod testing;
mod weighted_round_robin;

pub use consistent_hash::ConsistentHash;
pub use least_conn::LeastConn;
pub use p2c::P2c;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use weighted_round_robin::WeightedRoundRobin;

use std::sync::Arc;

use pingora::lb::Backend;

use super::load::LoadTable;

/// Handed to every selector at (re)build.
#[derive(Clone, Debug)]
pub struct SelectionContext {
    pub load: Arc<LoadTable>,
}

/// The config position of a backend, stored in its `ext` when the upstream is
/// built so selectors and the proxy can index per-backend tables in O(1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendIndex(pub usize);

pub fn index_of(b: &Backend) -> Option<usize> {
    b.ext.get::<BackendIndex>().map(|i| i.0)
}
