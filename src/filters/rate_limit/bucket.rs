//! The token bucket itself: pure, exact, 16 bytes of state.
//!
//! A [`Limit`] holds the parameters (`rate` tokens per `per`, capacity
//! `burst`) and a time origin; a [`Bucket`] holds one number, the instant at
//! which it will be full again (GCRA's "theoretical arrival time"). Times are
//! kept in *scaled units*: nanoseconds since the origin × `rate`. In those
//! units one token is exactly `per` in nanoseconds and refill adds exactly
//! `rate` units per nanosecond, so all arithmetic is integer and nothing
//! drifts however long the bucket lives (`rate: 3, per: 1s` grants 3 tokens
//! every second, not 3 every 999,999,999 ns).
//!
//! Invariant: the tokens available at `now` are
//! `burst − max(0, full_at − now) / per`, never more than `burst`, and a take
//! succeeds only when at least one whole token is available.

use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// The outcome of one take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Whole tokens left after this take.
    pub remaining: u64,
    /// The bucket capacity (`burst`).
    pub limit: u64,
    /// For a denial, the time until one token is available; zero when allowed.
    pub retry_after: Duration,
}

impl Decision {
    /// `retry_after` for the `Retry-After` header: whole seconds, rounded up,
    /// at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// Bucket parameters and the time origin all of its buckets count from.
#[derive(Debug, Clone)]
pub struct Limit {
    /// Tokens added per `per_ns`.
    rate: u128,
    /// One token, in scaled units (= `per` in nanoseconds).
    per_ns: u128,
    /// Capacity in tokens.
    burst: u64,
    origin: Instant,
}

impl Limit {
    /// `origin` is time zero; later calls must pass instants at or after it
    /// (earlier ones count as `origin`). Zero values are raised to the
    /// smallest meaningful ones (validation already rejects them).
    pub fn new(rate: u64, per: Duration, burst: u64, origin: Instant) -> Self {
        Self {
            rate: u128::from(rate.max(1)),
            per_ns: per.as_nanos().max(1),
            burst: burst.max(1),
            origin,
        }
    }

    pub fn from_config(cfg: &RateLimit, origin: Instant) -> Self {
        Self::new(cfg.rate, cfg.per, cfg.burst, origin)
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// `now` in scaled units.
    pub(super) fn scaled(&self, now: Instant) -> u128 {
        now.saturating_duration_since(self.origin)
            .as_nanos()
            .saturating_mul(self.rate)
    }

    fn capacity(&self) -> u128 {
        u128::from(self.burst).saturating_mul(self.per_ns)
    }
}

/// One bucket's state: when it will be full, in scaled units. Stored as two
/// `u64` halves so a map entry stays 8-byte aligned (24 bytes with its key,
/// not 32).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    full_at: [u64; 2],
}

impl Bucket {
    /// A full bucket (as is any bucket never taken from).
    pub const FULL: Bucket = Bucket { full_at: [0, 0] };

    /// Takes one token at `now` if there is one.
    pub fn take(&mut self, limit: &Limit, now: Instant) -> Decision {
        self.take_scaled(limit, limit.scaled(now))
    }

    /// True when the bucket holds `burst` tokens at `now_s` (scaled): it is
    /// then indistinguishable from a fresh bucket and may be forgotten.
    pub(super) fn is_full(&self, now_s: u128) -> bool {
        self.full_at() <= now_s
    }

    pub(super) fn full_at(&self) -> u128 {
        (u128::from(self.full_at[0]) << 64) | u128::from(self.full_at[1])
    }

    fn set_full_at(&mut self, v: u128) {
        self.full_at = [(v >> 64) as u64, v as u64];
    }

    pub(super) fn take_scaled(&mut self, limit: &Limit, now_s: u128) -> Decision {
        let cap = limit.capacity();
        let base = self.full_at().max(now_s);
        // Scaled units the bucket is short of full, and short after this take.
        let missing = base - now_s;
        let after = missing.saturating_add(limit.per_ns);
        if after <= cap {
            self.set_full_at(base.saturating_add(limit.per_ns));
            Decision {
                allowed: true,
                remaining: whole_tokens(cap - after, limit.per_ns),
                limit: limit.burst,
                retry_after: Duration::ZERO,
            }
        } else {
            // Refill runs at `rate` units per nanosecond.
            let wait_ns = (after - cap).div_ceil(limit.rate);
            Decision {
                allowed: false,
                remaining: whole_tokens(cap.saturating_sub(missing), limit.per_ns),
                limit: limit.burst,
                retry_after: Duration::from_nanos(u64::try_from(wait_ns).unwrap_or(u64::MAX)),
            }
        }
    }
}

fn whole_tokens(units: u128, per_ns: u128) -> u64 {
    u64::try_from(units / per_ns).unwrap_or(u64::MAX)
}
