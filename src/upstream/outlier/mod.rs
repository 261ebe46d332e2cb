//! Outlier detection: eject a backend that live traffic shows to be failing
//! or slow, for a while that grows with each ejection (SPEC "Outlier
//! detection"; Envoy's outlier detection, with a latency detector).
//!
//! [`Outliers`] is the table of one upstream, indexed like the load table.
//! Every method takes `now`: the proxy passes the clock, `switchyard sim
//! outliers` simulated instants, the tests whatever they like.
//!
//! ```text
//!  report(index, now, ended, latency)          per attempt, lock-free:
//!    ├─ consecutive 5xx / gateway failures ── count reached ──▶ eject(5xx | gateway)
//!    ├─ latency ──▶ sketch of the current interval (one atomic add)
//!    └─ first report after an interval ended ─▶ judge it (one thread wins a CAS):
//!         latency::slow_backends ──▶ eject(latency), slowest first
//!
//!  eject: under a mutex (rare): not if already ejected, nor if `max_ejected`
//!         backends are; else ejected until now + base_ejection × count (≤ 10×)
//!  ejected(index, now): one atomic load; the first call after `until` sees
//!         the backend return (and logs it)
//! ```
//!
//! Invariants:
//! - The request path takes no lock: counters and sketches are atomics.
//! - At most `max_ejected` backends are ejected at once (rounded down, at
//!   least one of two or more): [`Outliers::eject`] counts them under its
//!   mutex before ejecting another.
//! - Latencies go to the sketch of their interval's parity; the judge of
//!   interval `e` empties sketch `e % 2` while interval `e + 1` fills the
//!   other one. (After an idle gap of an even number of intervals, a few
//!   latencies of the new interval can be judged with the old one: harmless.)
//! - An ejection resets the backend's counters: it returns with a clean slate.

pub mod latency;
pub mod sketch;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::OutlierDetection;
use crate::upstream::ended::Ended;
use sketch::Sketch;

/// The longest ejection, in multiples of `base_ejection`.
pub const MAX_MULTIPLE: u32 = 10;

/// Why a backend was ejected: the `reason` label of
/// `switchyard_outlier_ejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Consecutive5xx,
    Gateway,
    Latency,
}

impl Reason {
    pub const ALL: [Reason; 3] = [Reason::Consecutive5xx, Reason::Gateway, Reason::Latency];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Consecutive5xx => "5xx",
            Reason::Gateway => "gateway",
            Reason::Latency => "latency",
        }
    }
}

/// One backend's ejection state, for `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// Ejected now.
    pub ejected: bool,
    /// How long until it returns (zero when not ejected).
    pub remaining: Duration,
    /// Ejections so far.
    pub count: u32,
}

struct Slot {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// Ejected until this many ns after `origin`; 0 = not ejected.
    until: AtomicU64,
    ejections: AtomicU32,
    /// Ejections by [`Reason`], in `Reason::ALL` order.
    by_reason: [AtomicU64; 3],
    /// The latencies of the even and the odd intervals.
    sketches: [Sketch; 2],
}

impl Slot {
    fn new() -> Self {
        Self {
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            by_reason: Default::default(),
            sketches: Default::default(),
        }
    }
}

/// The outlier detection of one upstream.
pub struct Outliers {
    cfg: OutlierDetection,
    /// For the log lines: the upstream's name and each backend's `addr`.
    upstream: String,
    addrs: Vec<String>,
    /// Time zero of `until` and of interval numbers.
    origin: Instant,
    interval_ns: u64,
    slots: Box<[Slot]>,
    /// The interval whose latencies are being collected (not judged yet).
    current: AtomicU64,
    /// Most backends ejected at once.
    cap: usize,
    /// Held to decide an ejection (never on a request that ejects nothing).
    ejecting: Mutex<()>,
}

impl Outliers {
    /// The table for backends named `addrs` of upstream `upstream`; time
    /// zero is `origin`.
    pub fn new(
        cfg: &OutlierDetection,
        upstream: &str,
        addrs: Vec<String>,
        origin: Instant,
    ) -> Self {
        let n = addrs.len();
        let cap = match n * cfg.max_ejected_percent.min(100) as usize / 100 {
            0 if n >= 2 => 1,
            c => c,
        };
        Self {
            cfg: cfg.clone(),
            upstream: upstream.to_string(),
            slots: (0..n).map(|_| Slot::new()).collect(),
            addrs,
            origin,
            interval_ns: nanos(cfg.interval).max(1),
            current: AtomicU64::new(0),
            cap,
            ejecting: Mutex::new(()),
        }
    }

    /// Backend `index` takes over what backend `was` of `old` had (a reload
    /// rebuilt the upstream): an ejection in progress, for the time it has
    /// left, and the counts that set the next ejection's length.
    pub fn carry(&self, index: usize, old: &Outliers, was: usize, now: Instant) {
        let (Some(new), Some(had)) = (self.slots.get(index), old.slots.get(was)) else {
            return;
        };
        let until = had.until.load(Ordering::Acquire);
        let left = until.saturating_sub(old.at(now));
        if until != 0 && left > 0 {
            new.until.store(self.at(now) + left, Ordering::Release);
        }
        new.ejections
            .store(had.ejections.load(Ordering::Relaxed), Ordering::Relaxed);
        for (n, h) in new.by_reason.iter().zip(&had.by_reason) {
            n.store(h.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Whether backend `index` is ejected at `now`. The first call after
    /// its ejection ran out logs its return.
    pub fn ejected(&self, index: usize, now: Instant) -> bool {
        let Some(slot) = self.slots.get(index) else {
            return false;
        };
        let until = slot.until.load(Ordering::Acquire);
        if until == 0 {
            return false;
        }
        if self.at(now) < until {
            return true;
        }
        if slot
            .until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            log::info!(
                "upstream {}: backend {} returns from ejection",
                self.upstream,
                self.addrs[index]
            );
        }
        false
    }

    /// What one attempt on backend `index` tells: its ending, and how long
    /// its response head took (`None` without one).
    pub fn report(&self, index: usize, now: Instant, ended: Ended, latency: Option<Duration>) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let cfg = &self.cfg;
        let fives = bump(&slot.consecutive_5xx, ended.is_5xx());
        let gateway = bump(&slot.consecutive_gateway, ended.is_gateway_failure());
        if cfg.consecutive_gateway_failures > 0 && gateway >= cfg.consecutive_gateway_failures {
            self.eject(index, now, Reason::Gateway, "");
        } else if cfg.consecutive_5xx > 0 && fives >= cfg.consecutive_5xx {
            self.eject(index, now, Reason::Consecutive5xx, "");
        }
        if cfg.latency_factor > 0.0 {
            let epoch = self.at(now) / self.interval_ns;
            if let Some(latency) = latency {
                slot.sketches[(epoch % 2) as usize].record(latency);
            }
            let current = self.current.load(Ordering::Relaxed);
            if epoch > current
                && self
                    .current
                    .compare_exchange(current, epoch, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                self.judge(current, now);
            }
        }
    }

    /// Judges interval `epoch` (just ended): its slow backends are ejected.
    fn judge(&self, epoch: u64, now: Instant) {
        let parity = (epoch % 2) as usize;
        let intervals: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let counts = s.sketches[parity].take();
                (!self.ejected(i, now)).then_some(counts)
            })
            .collect();
        for slow in latency::slow_backends(&intervals, self.cfg.latency_factor) {
            let why = format!(
                " (median {:.1} ms, {:.1}x the others' {:.1} ms)",
                slow.median_us / 1e3,
                slow.ratio(),
                slow.others_us / 1e3
            );
            self.eject(slow.index, now, Reason::Latency, &why);
        }
    }

    /// Ejects backend `index` unless it is already, or `max_ejected` are.
    /// True when it was ejected.
    fn eject(&self, index: usize, now: Instant, reason: Reason, why: &str) -> bool {
        let _held = self.ejecting.lock().unwrap_or_else(|e| e.into_inner());
        let t = self.at(now);
        let ejected_now = |s: &Slot| s.until.load(Ordering::Acquire) > t;
        let slot = &self.slots[index];
        if ejected_now(slot) {
            return false;
        }
        let ejected = self.slots.iter().filter(|s| ejected_now(s)).count();
        if ejected >= self.cap {
            log::debug!(
                "upstream {}: backend {} not ejected ({}): max_ejected ({}) reached",
                self.upstream,
                self.addrs[index],
                reason.label(),
                self.cap
            );
            return false;
        }
        let count = slot.ejections.load(Ordering::Relaxed).saturating_add(1);
        let time = self
            .cfg
            .base_ejection
            .saturating_mul(count.min(MAX_MULTIPLE));
        slot.ejections.store(count, Ordering::Relaxed);
        slot.by_reason[reason as usize].fetch_add(1, Ordering::Relaxed);
        slot.consecutive_5xx.store(0, Ordering::Relaxed);
        slot.consecutive_gateway.store(0, Ordering::Relaxed);
        // `max(1)`: 0 means "not ejected".
        slot.until
            .store(t.saturating_add(nanos(time)).max(1), Ordering::Release);
        log::warn!(
            "upstream {}: backend {} ejected for {:?} ({}, ejection {count}){why}",
            self.upstream,
            self.addrs[index],
            time,
            reason.label()
        );
        true
    }

    /// Backend `index`'s ejection as of `now`.
    pub fn ejection(&self, index: usize, now: Instant) -> Ejection {
        let Some(slot) = self.slots.get(index) else {
            return Ejection {
                ejected: false,
                remaining: Duration::ZERO,
                count: 0,
            };
        };
        let t = self.at(now);
        let until = slot.until.load(Ordering::Acquire);
        Ejection {
            ejected: until > t,
            remaining: Duration::from_nanos(until.saturating_sub(t)),
            count: slot.ejections.load(Ordering::Relaxed),
        }
    }

    /// Ejections of backend `index` for `reason` so far.
    pub fn ejections(&self, index: usize, reason: Reason) -> u64 {
        self.slots
            .get(index)
            .map_or(0, |s| s.by_reason[reason as usize].load(Ordering::Relaxed))
    }

    /// Nanoseconds from `origin` to `now` (0 before it).
    fn at(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.origin))
    }
}

/// Adds one to a run of failures, or ends it; returns the run's length.
/// A success on a backend that was not failing writes nothing, so the
/// common case does not bounce the counter's cache line between threads.
fn bump(run: &AtomicU32, failed: bool) -> u32 {
    if failed {
        run.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    } else {
        if run.load(Ordering::Relaxed) != 0 {
            run.store(0, Ordering::Relaxed);
        }
        0
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
