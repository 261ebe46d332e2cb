//! Per-route rate limiting: a token bucket per key, `rate` tokens per `per`,
//! capacity `burst` (see [`bucket`] for the exact arithmetic).
//!
//! [`RateLimiter`] is the in-memory (`store: local`) store of one route. It
//! owns the route's buckets and decides each request; [`redis_store`] is the
//! shared one (`store: redis://...`). The proxy holds either as a [`Store`],
//! calls [`Store::check_request`] in `request_filter` and answers 429 with
//! `Retry-After: `[`Decision::retry_after_secs`] when it is denied.
//!
//! Keys (`key:` in the config):
//! - `client_ip`: the socket peer's address (IPv4-mapped IPv6 counts as the
//!   IPv4 address). A peer without an IP (Unix socket) uses the empty key.
//! - `header:NAME`: the first value of that header, as bytes. Requests
//!   *without* the header all share one bucket, the one of the empty value, so
//!   leaving the header out never escapes the limit.
//! - `route`: one bucket for the whole route (the empty key).
//!
//! Memory is bounded. Keys are stored as 64-bit fingerprints (SipHash with a
//! per-process random key), never as the key itself: an entry is 24 bytes
//! plus the table's overhead. Two keys whose fingerprints collide share a
//! bucket, which can only limit them more, never less; an attacker cannot aim
//! for a collision without the random key. Buckets live in [`SHARDS`]
//! independently locked shards, each holding at most `max_keys / SHARDS`
//! (rounded up) entries. When a new key arrives at a full shard:
//! 1. buckets that have fully refilled are forgotten — a full bucket is exactly
//!    what a fresh one would be, so eviction never gives a client back tokens
//!    it had spent, and never touches a bucket that is still draining;
//! 2. if none has refilled, the new key is counted against the shard's shared
//!    *overflow* bucket (same limit) until room appears. All keys that could
//!    not get their own bucket together get one bucket's worth, so a flood of
//!    distinct keys is limited harder, not let through.
//!
//! Sweeping is skipped until the earliest time any entry can be full, so a
//! shard whose buckets are all draining costs one comparison per new key.
//!
//! Time never runs backwards inside a shard: a `now` older than one already
//! seen there (threads racing to the lock) counts as the newest one seen.

pub mod bucket;
pub mod redis_store;
mod store;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use http::HeaderMap;

use crate::config::{RateKey, RateLimit};
pub use bucket::{Bucket, Decision, Limit};
pub use redis_store::RedisLimiter;
pub use store::Store;

/// Independently locked parts of a store.
pub const SHARDS: usize = 64;

/// Keys one route's store remembers by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The buckets of one route.
#[derive(Debug)]
pub struct RateLimiter {
    limit: Limit,
    key: RateKey,
    fingerprint: RandomState,
    shards: Box<[Mutex<Shard>]>,
    shard_cap: usize,
}

#[derive(Debug)]
struct Shard {
    buckets: HashMap<u64, Bucket, BuildHasherDefault<PassThrough>>,
    /// Shared by the keys that found the shard full of draining buckets.
    overflow: Bucket,
    /// The newest time seen, scaled.
    clock: u128,
    /// No entry is full before this time (scaled), so sweeping earlier frees nothing.
    next_sweep: u128,
}

impl RateLimiter {
    /// A store for `cfg` remembering up to [`DEFAULT_MAX_KEYS`] keys; `now` is
    /// its time origin.
    pub fn new(cfg: &RateLimit, now: Instant) -> Self {
        Self::with_max_keys(cfg, DEFAULT_MAX_KEYS, now)
    }

    /// As [`RateLimiter::new`], remembering up to `max_keys` keys (rounded up
    /// to a multiple of [`SHARDS`]).
    pub fn with_max_keys(cfg: &RateLimit, max_keys: usize, now: Instant) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    buckets: HashMap::default(),
                    overflow: Bucket::FULL,
                    clock: 0,
                    next_sweep: 0,
                })
            })
            .collect();
        Self {
            limit: Limit::from_config(cfg, now),
            key: cfg.key.clone(),
            fingerprint: RandomState::new(),
            shards,
            shard_cap: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Decides one request: takes a token from the bucket its key names.
    /// `client_ip` is the socket peer; `headers` the request headers.
    pub fn check_request(
        &self,
        client_ip: Option<IpAddr>,
        headers: &HeaderMap,
        now: Instant,
    ) -> Decision {
        match &self.key {
            RateKey::ClientIp => match client_ip.map(|ip| ip.to_canonical()) {
                Some(IpAddr::V4(ip)) => self.check(&ip.octets(), now),
                Some(IpAddr::V6(ip)) => self.check(&ip.octets(), now),
                None => self.check(b"", now),
            },
            RateKey::Header(name) => {
                let value = headers
                    .get(name.as_str())
                    .map_or(&b""[..], |v| v.as_bytes());
                self.check(value, now)
            }
            RateKey::Route => self.check(b"", now),
        }
    }

    /// Takes a token from the bucket of `key` at `now`.
    pub fn check(&self, key: &[u8], now: Instant) -> Decision {
        let fp = self.fingerprint.hash_one(key);
        // Bits the map itself uses little: hashbrown takes the low bits for
        // the slot and the top 7 for its tag.
        let mut shard = lock(&self.shards[(fp >> 40) as usize % SHARDS]);
        let now_s = self.limit.scaled(now).max(shard.clock);
        shard.clock = now_s;
        if let Some(bucket) = shard.buckets.get_mut(&fp) {
            return bucket.take_scaled(&self.limit, now_s);
        }
        if shard.buckets.len() >= self.shard_cap {
            shard.sweep(now_s);
        }
        if shard.buckets.len() >= self.shard_cap {
            return shard.overflow.take_scaled(&self.limit, now_s);
        }
        let mut bucket = Bucket::FULL;
        let decision = bucket.take_scaled(&self.limit, now_s);
        shard.next_sweep = shard.next_sweep.min(bucket.full_at());
        shard.buckets.insert(fp, bucket);
        decision
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).buckets.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys this store remembers.
    pub fn max_keys(&self) -> usize {
        self.shard_cap * SHARDS
    }

    pub fn limit(&self) -> &Limit {
        &self.limit
    }
}

impl Shard {
    /// Forgets every bucket that is full at `now_s`.
    fn sweep(&mut self, now_s: u128) {
        if now_s < self.next_sweep {
            return;
        }
        let mut earliest = u128::MAX;
        self.buckets.retain(|_, b| {
            let keep = !b.is_full(now_s);
            if keep {
                earliest = earliest.min(b.full_at());
            }
            keep
        });
        self.next_sweep = earliest;
    }
}

/// Updates are plain assignments, so a poisoned shard is still consistent.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

/// The map's keys are already keyed SipHash fingerprints: hash them as is.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests;
