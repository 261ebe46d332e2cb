//! Balancing policies, each a Pingora [`BackendSelection`] so `LoadBalancer`
//! keeps discovery, health and rebuild-on-change. A policy only *orders*
//! candidates; whether a candidate may be used (up, not draining, not tried
//! yet in this request) is decided by one `accept` function in
//! [`super::Upstream::select`].
//!
//! Every selector is built with the upstream's [`SelectionContext`]: the
//! shared load table, so load-aware policies read live in-flight counts that
//! survive rebuilds.
//!
//! | policy | first choice | cost per pick | fallback order |
//! |---|---|---|---|
//! | [`RoundRobin`] | next in turn, weights ignored | O(1) | ring order |
//! | [`WeightedRoundRobin`] | NGINX smooth WRR, precomputed | O(1) | weighted draws, then ring |
//! | [`LeastConn`] | least in-flight ÷ weight, ties in turn | O(n) | by load |
//! | [`P2c`] | lighter of two distinct random | O(1) | the other, then ring |
//! | [`ConsistentHash`] | Ketama ring on the key | O(log points) | onward on the ring |
//! | [`Random`] | uniform random | O(1) | ring from a random start |
//!
//! Shared invariants, each tested: a selector only yields members of its
//! set; its iterator yields every backend it may choose (so a usable one is
//! found if any exists) and ends after at most n + 5 items; building and
//! picking never panic, whatever the weights, including an empty set and all
//! weights 0. Weight 0 means draining: all policies except `round_robin`
//! leave such backends out entirely (round robin yields them and `accept`
//! rejects them).

mod candidates;
mod consistent_hash;
mod least_conn;
mod p2c;
mod random;
pub(crate) mod rng;
mod round_robin;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod weighted_round_robin;

pub use consistent_hash::ConsistentHash;
pub use least_conn::LeastConn;
pub use p2c::P2c;
pub use random::Random;
pub use rng::seed_thread;
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
