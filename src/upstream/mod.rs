//! Upstream groups: the backends of one `upstreams:` entry, the policy that
//! orders them, their health and their live load.
//!
//! A policy is a Pingora `BackendSelection`, walked by [`Walk<S>`];
//! [`Pick`] erases the policy type once, and `picker` holds the one `match` on the configured
//! policy. Everything else talks to `Upstream` by backend *index* (config
//! order), which is also the index of the load table and metrics.
//!
//! Whether a backend may take a request is decided in one place,
//! [`Upstream::select`]: healthy (as the health checks last flipped it), not draining
//! (weight 0, configured or set at runtime) nor disabled by an operator
//! ([`admin_state`]), not already tried by this request, not ejected by
//! [`outlier`] detection, admitted by slow start
//! while it ramps, and — last, because a half-open admission spends a probe —
//! allowed by its circuit breaker. Policies only order candidates.
//!
//! A backend at its `max_conns` is skipped like a down one (its slot is
//! taken atomically as it is accepted, so no pick pushes it past the cap);
//! when that leaves nothing, [`Upstream::wait_for`] queues the request in
//! the upstream's [`queue`] until a slot frees, or answers at once without
//! a queue.
//!
//! A chosen backend is an [`Attempt`]: it holds the in-flight guard and the
//! breaker permit (and, with outlier detection, when it began and how long
//! the response head took), and goes back through [`Upstream::report`] with
//! how it [`Ended`], the one place where the passive health signal
//! (connect errors, timeouts, resets, 5xx, latency) reaches the breaker and
//! outlier detection.

pub mod admin_state;
pub mod breaker;
mod ended;
pub mod hash_key;
pub mod health;
pub mod idle;
pub mod load;
pub mod outlier;
pub mod probe;
pub mod queue;
#[cfg(test)]
mod queue_wait_tests;
mod rebuild;
pub mod retry_after;
pub mod retry_budget;
pub mod selection;
pub mod slow_start;
mod waiting;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;

use crate::config::{BackendSpec, Policy, UpstreamSpec};
use admin_state::Overrides;
use breaker::{Breakers, Permit, State};
pub use ended::Ended;
use health::HealthEvents;
use load::{InflightGuard, LoadTable};
use outlier::{Ejection, Outliers, Reason};
use queue::WaitQueue;
use retry_after::RetryAfter;
use retry_budget::RetryBudget;
use selection::{index_of, BackendIndex, SelectionContext};

/// An upstream group that can pick a backend, whatever its policy.
pub trait Pick: Send + Sync {
    /// The first backend (by index) in policy order that is healthy and for
    /// which `accept` holds.
    fn pick(&self, key: &[u8], accept: &dyn Fn(usize) -> bool) -> Option<usize>;
}

/// A policy's selector walked in its order, health read from
/// [`HealthEvents`] (which the health checks' flip callback keeps).
/// Pingora's `LoadBalancer::select_with` does the same walk, but hashes each
/// candidate twice (readiness lookup, de-duplication) and clones it: 2,600
/// instructions a pick, a tenth of a forwarded request. The `LoadBalancer`
/// still runs the health checks.
pub struct Walk<S> {
    selector: Arc<S>,
    health: Arc<HealthEvents>,
}

/// The walk for policy `S` over `set`.
pub fn walk<S>(
    set: &BTreeSet<Backend>,
    ctx: &SelectionContext,
    health: Arc<HealthEvents>,
) -> Walk<S>
where
    S: BackendSelection<Config = SelectionContext>,
{
    Walk {
        selector: Arc::new(S::build_with_config(set, ctx)),
        health,
    }
}

impl<S> Pick for Walk<S>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    fn pick(&self, key: &[u8], accept: &dyn Fn(usize) -> bool) -> Option<usize> {
        // A policy may repeat candidates (random ones do); bound the walk so a
        // pick never spins, while leaving room to see every backend. A
        // candidate turned down is not asked again (the first 64 are
        // remembered; accepting is idempotent for the rest).
        let budget = self.health.len() * 4 + 16;
        let mut iter = self.selector.iter(key);
        let mut seen = 0u64;
        for _ in 0..budget {
            let Some(index) = index_of(iter.next()?) else {
                continue;
            };
            let bit = u32::try_from(index)
                .ok()
                .and_then(|i| 1u64.checked_shl(i))
                .unwrap_or(0);
            if seen & bit != 0 {
                continue;
            }
            seen |= bit;
            if self.health.is_up(index) && accept(index) {
                return Some(index);
            }
        }
        None
    }
}

pub struct Upstream {
    pub spec: Arc<UpstreamSpec>,
    /// The policy's selector over the current weights; swapped whole when an
    /// operator changes one (rare), read without a lock.
    picker: ArcSwap<Box<dyn Pick>>,
    ctx: SelectionContext,
    load: Arc<LoadTable>,
    health: Arc<HealthEvents>,
    breakers: Breakers,
    /// `None` without `outlier_detection`: nothing timed, nothing ejected.
    outliers: Option<Outliers>,
    overrides: Overrides,
    /// `queue`: where requests wait for a backend under `max_conns`.
    queue: Option<Arc<WaitQueue>>,
    /// Retries allowed per first try (`retry_budget`).
    budget: RetryBudget,
    /// Backends that asked for no traffic for a while (`Retry-After`).
    retry_after: RetryAfter,
    /// Serializes admin writes, so the last rebuild sees the last write.
    /// Never taken on the request path.
    writing: std::sync::Mutex<()>,
    /// The active health checks, when configured; run by
    /// [`probe::run`] under the health supervisor ([`crate::live`]).
    pub(crate) probe: Option<probe::Probe>,
}

/// One try of one request on one backend: counts as in flight until dropped,
/// and carries the breaker's permit until the outcome is reported.
#[derive(Debug)]
pub struct Attempt {
    pub index: usize,
    _inflight: InflightGuard,
    permit: Option<Permit>,
    /// When the attempt began, if its latency matters (outlier detection).
    started: Option<Instant>,
    /// How long the response head took, once it arrived.
    head_after: Option<Duration>,
}

impl Attempt {
    /// Notes that the (final) response head arrived now: the latency
    /// outlier detection judges. Later calls change nothing; without
    /// outlier detection it does not even read the clock.
    pub fn head_arrived(&mut self) {
        if let (Some(started), None) = (self.started, self.head_after) {
            self.head_after = Some(started.elapsed());
        }
    }
}

/// Why no backend was picked now (see [`Upstream::select_or_full`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoom {
    /// Nothing usable at all (down, draining, disabled, tried, breaker open).
    None,
    /// Usable backends exist, but every one is at its `max_conns`.
    Full,
}

/// Why a request got no backend after waiting where it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Nothing usable (503 on a first try, 502 after connect failures).
    NoBackend,
    /// Every usable backend full and no queue, or the queue full or the
    /// wait past `queue.timeout`: 503 with `Retry-After: 1`.
    Overloaded,
}

impl Upstream {
    /// A fresh upstream: every backend up, breakers closed, no overrides.
    /// Its health checks (if any) run once the health supervisor sees it.
    pub fn build(spec: Arc<UpstreamSpec>) -> Arc<Self> {
        Arc::new(Self::fresh(spec))
    }

    fn fresh(spec: Arc<UpstreamSpec>) -> Self {
        let queue = spec.queue.map(WaitQueue::new);
        let caps = spec.backends.iter().map(|b| b.max_conns as usize).collect();
        let load = LoadTable::with_caps(caps, queue.clone());
        let ctx = SelectionContext {
            load: Arc::clone(&load),
        };
        let names = spec.backends.iter().map(|b| b.addr.clone()).collect();
        let health = HealthEvents::new(&spec.name, names);
        let set: BTreeSet<Backend> = members(&spec.backends, |i| spec.backends[i].weight)
            .into_iter()
            .collect();
        let picker = picker(spec.policy, &set, &ctx, &health);
        let probe = probe::Probe::new(&spec, set.into_iter().collect(), &health);
        let breakers = Breakers::new(spec.circuit_breaker.as_ref(), spec.backends.len());
        let overrides = Overrides::new(spec.backends.iter().map(|b| b.weight));
        let budget = RetryBudget::new(spec.retry_budget);
        let retry_after = RetryAfter::new(spec.backends.len());
        let outliers = spec.outlier_detection.as_ref().map(|cfg| {
            let addrs = spec.backends.iter().map(|b| b.addr.clone()).collect();
            Outliers::new(cfg, &spec.name, addrs, Instant::now())
        });
        Self {
            spec,
            picker: ArcSwap::from_pointee(picker),
            ctx,
            load,
            health,
            breakers,
            outliers,
            overrides,
            queue,
            budget,
            retry_after,
            writing: std::sync::Mutex::new(()),
            probe,
        }
    }

    /// The health transitions of this upstream's backends.
    pub fn health_events(&self) -> &Arc<HealthEvents> {
        &self.health
    }

    /// The backend for this attempt: the policy's first choice among backends
    /// that are healthy, not draining (weight 0) nor disabled, not in `tried`,
    /// not ejected, admitted by
    /// slow start while ramping, and allowed by their breaker. If slow start
    /// turned every candidate away, the policy's choice without it is used:
    /// a ramping backend is better than none.
    pub fn select(&self, key: &[u8], tried: &[usize]) -> Option<Attempt> {
        self.select_or_full(key, tried).ok()
    }

    /// [`select`](Self::select), telling apart "nothing usable" from "every
    /// usable backend is at its `max_conns`". A full backend is skipped like
    /// a down one; its slot is taken before the breaker is asked, so a
    /// half-open probe is never spent on a backend that cannot take it.
    pub fn select_or_full(&self, key: &[u8], tried: &[usize]) -> Result<Attempt, NoRoom> {
        let backends = &self.spec.backends;
        let now = Instant::now();
        let permit = Cell::new(None);
        let slot = Cell::new(None);
        let full = Cell::new(false);
        let usable = |i: usize| {
            i < backends.len()
                && self.overrides.takes_new(i)
                && !tried.contains(&i)
                && !self.retry_after.holds(i, now)
                && !self.ejected_at(i, now)
        };
        let admit = |i: usize| {
            let Some(guard) = self.load.try_acquire(i) else {
                full.set(true);
                return false;
            };
            match self.breakers.try_acquire(i, now) {
                Some(p) => {
                    permit.set(Some(p));
                    slot.set(Some(guard));
                    true
                }
                None => false,
            }
        };
        let picker = self.picker.load();
        let picked = picker
            .pick(key, &|i| {
                usable(i) && self.slow_start_admits(i, now) && admit(i)
            })
            .or_else(|| picker.pick(key, &|i| usable(i) && admit(i)));
        match (picked, slot.take()) {
            (Some(index), Some(guard)) => Ok(Attempt {
                index,
                _inflight: guard,
                permit: permit.take(),
                started: self.outliers.as_ref().map(|_| now),
                head_after: None,
            }),
            _ if full.get() => Err(NoRoom::Full),
            _ => Err(NoRoom::None),
        }
    }

    /// Backend `index` itself (a sticky client's), if it is healthy, not in
    /// `tried`, not disabled by an operator nor ejected, not at its
    /// `max_conns`, and its breaker allows it.
    /// Draining does not matter here: weight 0 only stops *new* clients.
    pub fn select_pinned(&self, index: usize, tried: &[usize]) -> Option<Attempt> {
        if index >= self.spec.backends.len()
            || tried.contains(&index)
            || !self.healthy(index)
            || !self.overrides.serves(index)
        {
            return None;
        }
        let now = Instant::now();
        if self.retry_after.holds(index, now) || self.ejected_at(index, now) {
            return None;
        }
        let guard = self.load.try_acquire(index)?;
        let permit = self.breakers.try_acquire(index, now)?;
        Some(Attempt {
            index,
            _inflight: guard,
            permit: Some(permit),
            started: self.outliers.as_ref().map(|_| now),
            head_after: None,
        })
    }

    /// Backend `index`'s `max_conns` (0 = no cap).
    pub fn max_conns(&self, index: usize) -> usize {
        self.load.cap(index)
    }

    /// The wait queue, when the upstream has one.
    pub fn queue(&self) -> Option<&WaitQueue> {
        self.queue.as_deref()
    }

    /// How an attempt ended, for its backend's circuit breaker (connect
    /// errors, timeouts, resets and 5xx answers are failures) and outlier
    /// detection (which also gets the attempt's latency to the response
    /// head). Dropping an attempt without reporting it (the client went
    /// away) tells nothing.
    pub fn report(&self, attempt: Attempt, ended: Ended) {
        if attempt.permit.is_none() && self.outliers.is_none() {
            return;
        }
        let now = Instant::now();
        if let Some(permit) = attempt.permit {
            self.breakers
                .record(attempt.index, now, permit, ended.outcome());
        }
        if let Some(outliers) = &self.outliers {
            outliers.report(attempt.index, now, ended, attempt.head_after);
        }
    }

    fn ejected_at(&self, index: usize, now: Instant) -> bool {
        self.outliers
            .as_ref()
            .is_some_and(|o| o.ejected(index, now))
    }

    /// Whether outlier detection has backend `index` ejected now.
    pub fn ejected(&self, index: usize) -> bool {
        self.ejected_at(index, Instant::now())
    }

    /// Backend `index`'s ejection state; `None` without outlier detection.
    pub fn ejection(&self, index: usize) -> Option<Ejection> {
        let o = self.outliers.as_ref()?;
        Some(o.ejection(index, Instant::now()))
    }

    /// Ejections of backend `index` for `reason` so far.
    pub fn ejections(&self, index: usize, reason: Reason) -> u64 {
        self.outliers
            .as_ref()
            .map_or(0, |o| o.ejections(index, reason))
    }

    /// A request's first try, for the retry budget.
    pub fn first_try(&self) {
        self.budget.record_request(Instant::now());
    }

    /// Whether the retry budget allows one more retry now (and counts it).
    pub fn retry_allowed(&self) -> bool {
        self.budget.try_retry(Instant::now())
    }

    /// Backend `index` answered 429/503 with `Retry-After: hold`: no new
    /// requests go to it that long (see [`retry_after`]).
    pub fn hold_off(&self, index: usize, hold: std::time::Duration) {
        self.retry_after.hold(index, Instant::now(), hold);
    }

    /// How long backend `index` is still held off by its `Retry-After`.
    pub fn held_off_for(&self, index: usize) -> Option<std::time::Duration> {
        self.retry_after.left(index, Instant::now())
    }

    /// The circuit breaker state of backend `index`.
    pub fn circuit(&self, index: usize) -> State {
        self.breakers.state(index, Instant::now())
    }

    fn slow_start_admits(&self, index: usize, now: Instant) -> bool {
        let window = self.spec.slow_start;
        if window.is_zero() || self.spec.policy == Policy::ConsistentHash {
            return true;
        }
        let share = slow_start::share(self.health.up_for(index, now), window);
        share >= 1.0 || rand::random::<f64>() < share
    }

    /// Whether backend `index` passes its health checks (always, without).
    pub fn healthy(&self, index: usize) -> bool {
        self.health.is_up(index)
    }

    pub fn inflight(&self, index: usize) -> usize {
        self.load.inflight(index)
    }

    pub fn backend(&self, index: usize) -> &BackendSpec {
        &self.spec.backends[index]
    }
}

/// Pingora backends in config order, each carrying its index, with the
/// weight `weight(index)` gives.
pub(crate) fn members(specs: &[BackendSpec], weight: impl Fn(usize) -> u32) -> Vec<Backend> {
    specs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut backend = Backend {
                addr: pingora::protocols::l4::socket::SocketAddr::Inet(b.socket),
                weight: weight(i) as usize,
                ext: Default::default(),
            };
            backend.ext.insert(BackendIndex(i));
            backend
        })
        .collect()
}

/// The configured policy's selector over `set`: the one `match` on the
/// policy. Run at start and again when an operator changes a weight.
fn picker(
    policy: Policy,
    set: &BTreeSet<Backend>,
    ctx: &SelectionContext,
    health: &Arc<HealthEvents>,
) -> Box<dyn Pick> {
    let h = Arc::clone(health);
    match policy {
        Policy::RoundRobin => Box::new(walk::<selection::RoundRobin>(set, ctx, h)),
        Policy::WeightedRoundRobin => Box::new(walk::<selection::WeightedRoundRobin>(set, ctx, h)),
        Policy::LeastConn => Box::new(walk::<selection::LeastConn>(set, ctx, h)),
        Policy::P2c => Box::new(walk::<selection::P2c>(set, ctx, h)),
        Policy::ConsistentHash => Box::new(walk::<selection::ConsistentHash>(set, ctx, h)),
        Policy::Random => Box::new(walk::<selection::Random>(set, ctx, h)),
    }
}
