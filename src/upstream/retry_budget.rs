//! The retry budget of one upstream (Envoy's and Finagle's retry budgets):
//! over a sliding 10 s window, retries ≤ `ratio` × first tries + 30.
//!
//! Why: when an upstream fails as a whole, every request would otherwise
//! become `1 + retries` requests and the proxy multiplies the load on the
//! backends that are left. The budget lets retries mask a few failing
//! requests (a share of traffic, plus a floor of 3 a second so a quiet
//! upstream can still retry) and turns them off when everything fails.
//!
//! A pure state machine over injected time: the caller passes `now`. The
//! window is ten one-second buckets, each one `AtomicU64` packing the second
//! it counts, its first tries and its retries, so recording is one CAS on
//! the request path and nothing locks. A bucket whose second is more than
//! 9 s old counts nothing and is reset by the next write to it. Two retries
//! decided at the same instant on two threads may both pass the check (the
//! window is read, then the retry counted): the budget can be passed by the
//! number of threads racing, never more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Seconds in the window, and buckets.
pub const WINDOW_SECS: u64 = 10;
/// Retries the budget always allows in a window, whatever the ratio.
pub const FLOOR: u64 = 30;

const COUNT_BITS: u32 = 19;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const SEC_BITS: u32 = 64 - 2 * COUNT_BITS;
const SEC_MASK: u64 = (1 << SEC_BITS) - 1;

/// The retry budget of one upstream. `Send + Sync`, lock-free.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    /// The instant second 0 starts at: the first `now` seen.
    origin: OnceLock<Instant>,
    buckets: [AtomicU64; WINDOW_SECS as usize],
}

/// One bucket's content: which second, first tries, retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    sec: u64,
    firsts: u64,
    retries: u64,
}

impl Bucket {
    fn unpack(word: u64) -> Self {
        Self {
            sec: word >> (2 * COUNT_BITS),
            firsts: (word >> COUNT_BITS) & COUNT_MAX,
            retries: word & COUNT_MAX,
        }
    }

    fn pack(self) -> u64 {
        ((self.sec & SEC_MASK) << (2 * COUNT_BITS))
            | (self.firsts.min(COUNT_MAX) << COUNT_BITS)
            | self.retries.min(COUNT_MAX)
    }
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per first try (0.2 for `20%`) over
    /// the window, plus [`FLOOR`]. A negative or NaN ratio counts as 0.
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_finite() && ratio > 0.0 {
            ratio
        } else if ratio == f64::INFINITY {
            f64::MAX
        } else {
            0.0
        };
        Self {
            ratio,
            origin: OnceLock::new(),
            buckets: Default::default(),
        }
    }

    /// A request's first try, at `now`.
    pub fn record_request(&self, now: Instant) {
        self.add(self.second(now), 1, 0);
    }

    /// Whether a retry at `now` fits the budget; if so it is counted as one.
    pub fn try_retry(&self, now: Instant) -> bool {
        let sec = self.second(now);
        let (firsts, retries) = self.window(sec);
        if (retries + 1) as f64 > self.ratio * firsts as f64 + FLOOR as f64 {
            return false;
        }
        self.add(sec, 0, 1);
        true
    }

    /// Whole seconds since the first `now` this budget saw (an earlier
    /// `now`, from another thread's clock read, counts as second 0).
    fn second(&self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_init(|| now);
        now.saturating_duration_since(origin).as_secs() & SEC_MASK
    }

    /// First tries and retries counted in the window ending with second `sec`.
    fn window(&self, sec: u64) -> (u64, u64) {
        let (mut firsts, mut retries) = (0, 0);
        for back in 0..WINDOW_SECS {
            let want = sec.wrapping_sub(back) & SEC_MASK;
            let bucket = Bucket::unpack(self.slot(want).load(Ordering::Acquire));
            if bucket.sec == want {
                firsts += bucket.firsts;
                retries += bucket.retries;
            }
        }
        (firsts, retries)
    }

    fn slot(&self, sec: u64) -> &AtomicU64 {
        &self.buckets[(sec % WINDOW_SECS) as usize]
    }

    /// Counts into second `sec`'s bucket, resetting it if it held an older
    /// second. A bucket already holding a newer second (a `now` read before
    /// another thread's, recorded after it) drops the count: it is a second
    /// out of the window by then.
    fn add(&self, sec: u64, firsts: u64, retries: u64) {
        let slot = self.slot(sec);
        let mut current = slot.load(Ordering::Acquire);
        loop {
            let bucket = Bucket::unpack(current);
            let ahead = bucket.sec.wrapping_sub(sec) & SEC_MASK;
            let next = if ahead == 0 {
                Bucket {
                    sec,
                    firsts: bucket.firsts + firsts,
                    retries: bucket.retries + retries,
                }
            } else if ahead < SEC_MASK / 2 && current != 0 {
                return;
            } else {
                Bucket {
                    sec,
                    firsts,
                    retries,
                }
            };
            match slot.compare_exchange_weak(
                current,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests;
