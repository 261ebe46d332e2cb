//! Circuit breaking: per backend, stop sending requests to a backend that
//! keeps failing, then let a few probes find out whether it has recovered.
//!
//! [`Breaker`] is a pure state machine: every method takes `now`, nothing
//! reads a clock, so tests drive it with injected instants. [`Breakers`] is the
//! thread-safe table for one upstream, indexed like the load table (backend
//! position in the config).
//!
//! ```text
//!            consecutive_failures in a row, or
//!            failure share ≥ failure_rate over `window` (≥ min_requests seen)
//!   Closed ─────────────────────────────────────────────▶ Open { until }
//!      ▲                                                   │  now ≥ until
//!      │ all half_open_requests probes succeed             ▼
//!      └──────────────────────────────────────────── HalfOpen ── a probe fails,
//!                                                       │       or is not heard
//!                                                       │       of within open_for
//!                                                       └──────▶ Open { until }
//! ```
//!
//! Invariants and units:
//! - The failure-rate window is a ring of [`BUCKETS`] buckets of
//!   `window / BUCKETS` each, so memory is constant; an outcome stops counting
//!   between `0.9 × window` and `window` after it was recorded.
//! - `failure_rate` is compared in parts per million (integer math, so
//!   `0.3` with 3 failures in 10 trips exactly).
//! - Every admission hands out a [`Permit`]; an outcome counts only if its
//!   permit was issued in the breaker's current phase. Reports from requests
//!   admitted before a trip (or from a probe already written off) are ignored,
//!   so stale news can neither close nor re-open the breaker.
//! - While half-open at most `half_open_requests` probes are admitted. A probe
//!   that has not reported `open_for` after the latest probe was admitted is
//!   counted as failed (the breaker opens again), so a lost report never wedges
//!   the breaker half-open.
//! - Time never runs backwards inside a breaker: a `now` older than one already
//!   seen (threads racing to the lock) is treated as the newest one seen.
//!
//! Where it sits: the proxy asks [`Breakers::try_acquire`] last in the
//! `accept` check of `upstream_peer` (so an admission always means the backend
//! is used), keeps the permit in the request context, and reports the
//! [`Outcome`] once the attempt is settled: connect errors, timeouts, resets
//! and 5xx are failures.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::CircuitBreaker;

/// Buckets per failure-rate window.
pub const BUCKETS: usize = 10;

/// How one admitted request went, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// What a breaker reports to `/metrics` and `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    /// The `switchyard_circuit_state` gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }

    /// The `/status` `circuit` field: `closed`, `open` or `half_open`.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

/// Leave to send one request; hand it back with the outcome. Not `Clone`, so
/// one admission reports at most once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "report the outcome with record(), or the admission goes unaccounted"]
pub struct Permit {
    phase: u64,
}

/// The breaker's phase, with what each phase needs to decide the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed {
        /// Failures since the last success.
        consecutive: u32,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        /// Probes admitted in this half-open phase.
        admitted: u32,
        /// Probes that reported success.
        successes: u32,
        /// When the latest probe was admitted; `None` before the first.
        last_admitted: Option<Instant>,
    },
}

/// One backend's circuit breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    consecutive_failures: u32,
    /// `failure_rate` in parts per million.
    rate_ppm: u64,
    min_requests: u32,
    open_for: Duration,
    half_open_requests: u32,
    phase: Phase,
    /// Bumped on every phase change; permits from other phases are stale.
    phase_id: u64,
    window: Window,
    /// The newest `now` seen.
    latest: Option<Instant>,
}

impl Breaker {
    pub fn new(cfg: &CircuitBreaker) -> Self {
        Self {
            consecutive_failures: cfg.consecutive_failures.max(1),
            rate_ppm: (cfg.failure_rate.clamp(0.0, 1.0) * 1e6).round() as u64,
            min_requests: cfg.min_requests.max(1),
            open_for: cfg.open_for,
            half_open_requests: cfg.half_open_requests.max(1),
            phase: Phase::Closed { consecutive: 0 },
            phase_id: 0,
            window: Window::new(cfg.window),
            latest: None,
        }
    }

    /// Admits one request, or refuses it: always while closed; never while
    /// open; while half-open, up to `half_open_requests` probes.
    pub fn try_acquire(&mut self, now: Instant) -> Option<Permit> {
        let now = self.clock(now);
        if let Phase::Open { until } = self.phase {
            if now < until {
                return None;
            }
            self.enter(Phase::HalfOpen {
                admitted: 0,
                successes: 0,
                last_admitted: None,
            });
        }
        if let Phase::HalfOpen {
            admitted,
            successes,
            last_admitted,
        } = self.phase
        {
            if admitted >= self.half_open_requests {
                // Budget spent. Probes silent for `open_for` count as failed.
                let lost = last_admitted
                    .is_some_and(|at| now.saturating_duration_since(at) >= self.open_for);
                if lost {
                    self.trip(now);
                }
                return None;
            }
            self.phase = Phase::HalfOpen {
                admitted: admitted + 1,
                successes,
                last_admitted: Some(now),
            };
        }
        Some(Permit {
            phase: self.phase_id,
        })
    }

    /// Counts the outcome of a request admitted with `permit`.
    pub fn record(&mut self, now: Instant, permit: Permit, outcome: Outcome) {
        let now = self.clock(now);
        if permit.phase != self.phase_id {
            return;
        }
        match (&mut self.phase, outcome) {
            (Phase::Closed { consecutive }, Outcome::Success) => {
                *consecutive = 0;
                self.window.add(now, Outcome::Success);
            }
            (Phase::Closed { consecutive }, Outcome::Failure) => {
                *consecutive = consecutive.saturating_add(1);
                let in_a_row = *consecutive >= self.consecutive_failures;
                let (total, failures) = self.window.add(now, Outcome::Failure);
                let by_rate = total >= u64::from(self.min_requests)
                    && failures * 1_000_000 >= self.rate_ppm * total;
                if in_a_row || by_rate {
                    self.trip(now);
                }
            }
            // Permits are never issued while open.
            (Phase::Open { .. }, _) => {}
            (Phase::HalfOpen { successes, .. }, Outcome::Success) => {
                *successes += 1;
                if *successes >= self.half_open_requests {
                    self.window.clear();
                    self.enter(Phase::Closed { consecutive: 0 });
                }
            }
            (Phase::HalfOpen { .. }, Outcome::Failure) => self.trip(now),
        }
    }

    /// The state as of `now`, without changing anything: an open breaker whose
    /// `until` has passed already reports half-open.
    pub fn state(&self, now: Instant) -> State {
        match self.phase {
            Phase::Closed { .. } => State::Closed,
            Phase::Open { until } if now < until => State::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    fn trip(&mut self, now: Instant) {
        // Config durations are at most a year, far from `Instant`'s range.
        let until = now.checked_add(self.open_for).unwrap_or(now);
        self.enter(Phase::Open { until });
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.phase_id = self.phase_id.wrapping_add(1);
    }

    fn clock(&mut self, now: Instant) -> Instant {
        let now = self.latest.map_or(now, |l| l.max(now));
        self.latest = Some(now);
        now
    }
}

/// Outcome counts over the last `window`, in [`BUCKETS`] buckets.
#[derive(Debug, Clone)]
struct Window {
    bucket_nanos: u128,
    /// Bucket `i` holds outcomes of the slot `epoch` with `epoch % BUCKETS == i`.
    buckets: [Bucket; BUCKETS],
    /// Time zero for slot numbers: the first outcome recorded.
    origin: Option<Instant>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    total: u32,
    failures: u32,
}

impl Window {
    fn new(window: Duration) -> Self {
        Self {
            bucket_nanos: (window.as_nanos() / BUCKETS as u128).max(1),
            buckets: [Bucket::default(); BUCKETS],
            origin: None,
        }
    }

    /// Adds one outcome; returns (total, failures) over the window.
    fn add(&mut self, now: Instant, outcome: Outcome) -> (u64, u64) {
        let origin = *self.origin.get_or_insert(now);
        let epoch = (now.saturating_duration_since(origin).as_nanos() / self.bucket_nanos) as u64;
        let slot = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        slot.total = slot.total.saturating_add(1);
        if outcome == Outcome::Failure {
            slot.failures = slot.failures.saturating_add(1);
        }
        let oldest = epoch.saturating_sub(BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.epoch >= oldest && b.epoch <= epoch && b.total > 0)
            .fold((0, 0), |(t, f), b| {
                (t + u64::from(b.total), f + u64::from(b.failures))
            })
    }

    fn clear(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
        self.origin = None;
    }
}

/// The breakers of one upstream, one per backend index. Without a
/// `circuit_breaker` config it holds nothing and admits everything.
#[derive(Debug)]
pub struct Breakers {
    slots: Box<[Mutex<Breaker>]>,
}

impl Breakers {
    pub fn new(cfg: Option<&CircuitBreaker>, backends: usize) -> Self {
        let slots = match cfg {
            Some(cfg) => (0..backends)
                .map(|_| Mutex::new(Breaker::new(cfg)))
                .collect(),
            None => Box::default(),
        };
        Self { slots }
    }

    /// See [`Breaker::try_acquire`]. Call it only when the request will go to
    /// backend `index` if admitted, since a half-open admission spends a probe.
    pub fn try_acquire(&self, index: usize, now: Instant) -> Option<Permit> {
        match self.slots.get(index) {
            Some(slot) => lock(slot).try_acquire(now),
            None => Some(Permit { phase: 0 }),
        }
    }

    /// See [`Breaker::record`].
    pub fn record(&self, index: usize, now: Instant, permit: Permit, outcome: Outcome) {
        if let Some(slot) = self.slots.get(index) {
            lock(slot).record(now, permit, outcome);
        }
    }

    /// Backend `index` takes over the breaker of `from_index` in `from`
    /// (same settings; a reload rebuilt the upstream): open stays open.
    pub fn carry(&self, index: usize, from: &Breakers, from_index: usize) {
        if let (Some(to), Some(src)) = (self.slots.get(index), from.slots.get(from_index)) {
            let state = lock(src).clone();
            *lock(to) = state;
        }
    }

    /// See [`Breaker::state`]; `Closed` for an upstream without breakers.
    pub fn state(&self, index: usize, now: Instant) -> State {
        self.slots
            .get(index)
            .map_or(State::Closed, |slot| lock(slot).state(now))
    }
}

/// A panic while holding the lock leaves a consistent breaker (every update
/// is a few plain assignments), so a poisoned lock is used as is.
fn lock(slot: &Mutex<Breaker>) -> std::sync::MutexGuard<'_, Breaker> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
