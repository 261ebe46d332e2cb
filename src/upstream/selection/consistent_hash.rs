//! `consistent_hash`: a Ketama ring over the request's hash key.
//!
//! Each backend puts 160 points per unit of weight on a ring of u32 hashes,
//! placed exactly as NGINX's `hash ... consistent` and `pingora-ketama` do:
//! point k is `crc32("IP\0PORT" ‖ le_bytes(point k-1))`, starting from 0. A
//! key goes to the first point at or after `crc32(key)`, wrapping around.
//! Since a backend's points depend only on its own address and weight,
//! removing one of N backends only remaps the keys whose point was one of its
//! points; every other key keeps its backend. Shares follow weights
//! (±a few % at 160 points per unit).
//!
//! Why not wrap `pingora_ketama::Continuum`: it panics on weight 0, maps a
//! point to an address that then needs a hash-map lookup, and when two
//! backends' points collide on one hash it keeps whichever the unstable sort
//! left first, which can change when an unrelated backend leaves. Here a
//! collision goes to the lower address (set order), so the remap guarantee
//! holds exactly; otherwise the rings are identical.
//!
//! Cost: a pick is one crc32 of the key and a binary search over
//! 160·Σweights points (8 bytes each), no allocation. Building is
//! O(P log P) for P points. Fallback walks the ring onward and yields each
//! further backend once (a bitset, allocated only on fallback), so at most n
//! items; it stops after one full turn. Weight-0 (draining) backends have no
//! points.

use std::collections::BTreeSet;
use std::sync::Arc;

use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr;

use super::candidates::Candidates;
use super::SelectionContext;

/// Ring points per unit of weight, as in NGINX and `pingora-ketama`.
pub const POINTS_PER_WEIGHT: usize = 160;
/// The config's largest weight. Heavier backends (only possible through
/// Pingora's API) count as this, so a ring's size stays bounded.
const MAX_WEIGHT: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    hash: u32,
    /// Candidate position; on equal hashes the lower (lower address) wins.
    cand: u32,
}

pub struct ConsistentHash {
    cands: Candidates,
    /// Sorted by hash, hashes unique.
    ring: Box<[Point]>,
}

/// The bytes a backend's points are seeded with: "IP\0PORT" as NGINX does.
fn node_name(addr: &SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::Inet(a) => format!("{}\0{}", a.ip(), a.port()).into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

impl ConsistentHash {
    fn new(cands: Candidates) -> Self {
        let weight = |c: usize| cands.weight(c).min(MAX_WEIGHT);
        let total: usize = (0..cands.len()).map(weight).sum();
        let mut ring = Vec::with_capacity(total.saturating_mul(POINTS_PER_WEIGHT));
        for c in 0..cands.len() {
            let b = cands.get(c);
            let mut seed = crc32fast::Hasher::new();
            seed.update(&node_name(&b.addr));
            let mut prev: u32 = 0;
            for _ in 0..weight(c) * POINTS_PER_WEIGHT {
                let mut h = seed.clone();
                h.update(&prev.to_le_bytes());
                prev = h.finalize();
                ring.push(Point {
                    hash: prev,
                    cand: c as u32,
                });
            }
        }
        ring.sort_unstable();
        ring.dedup_by_key(|p| p.hash);
        Self {
            cands,
            ring: ring.into(),
        }
    }

    /// Ring index of the first point at or after the key's hash.
    fn position(&self, key: &[u8]) -> usize {
        let h = crc32fast::hash(key);
        let i = self.ring.partition_point(|p| p.hash < h);
        if i == self.ring.len() {
            0
        } else {
            i
        }
    }
}

impl BackendSelection for ConsistentHash {
    type Iter = RingIter;
    type Config = SelectionContext;

    fn build_with_config(backends: &BTreeSet<Backend>, ctx: &SelectionContext) -> Self {
        Self::new(Candidates::new(backends, Some(ctx)))
    }

    fn build(backends: &BTreeSet<Backend>) -> Self {
        Self::new(Candidates::new(backends, None))
    }

    fn iter(self: &Arc<Self>, key: &[u8]) -> RingIter {
        RingIter {
            at: self.position(key),
            sel: Arc::clone(self),
            walked: 0,
            yielded: 0,
            seen: None,
        }
    }
}

/// The key's backend, then each further backend met walking the ring onward.
pub struct RingIter {
    sel: Arc<ConsistentHash>,
    at: usize,
    /// Ring points stepped over so far.
    walked: usize,
    /// Backends yielded so far.
    yielded: usize,
    /// One bit per candidate already yielded; made on the first fallback.
    seen: Option<Vec<u64>>,
}

/// Sets `cand`'s bit; true if it was clear.
fn mark(seen: &mut [u64], cand: usize) -> bool {
    let (word, bit) = (cand / 64, 1u64 << (cand % 64));
    let fresh = seen[word] & bit == 0;
    seen[word] |= bit;
    fresh
}

impl BackendIter for RingIter {
    fn next(&mut self) -> Option<&Backend> {
        let (ring, cands) = (&self.sel.ring, &self.sel.cands);
        if ring.is_empty() || self.yielded == cands.len() {
            return None;
        }
        if self.yielded == 0 {
            // The first choice: no bookkeeping unless a fallback follows.
            self.yielded = 1;
            return Some(cands.get(ring[self.at].cand as usize));
        }
        let seen = self.seen.get_or_insert_with(|| {
            let mut bits = vec![0u64; cands.len().div_ceil(64)];
            mark(&mut bits, ring[self.at].cand as usize);
            bits
        });
        while self.walked + 1 < ring.len() {
            self.walked += 1;
            self.at = (self.at + 1) % ring.len();
            let cand = ring[self.at].cand as usize;
            if mark(seen, cand) {
                self.yielded += 1;
                return Some(cands.get(cand));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
