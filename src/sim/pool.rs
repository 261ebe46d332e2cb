//! The proxy's own backend choice, run on simulated time.
//!
//! A [`Pool`] is what [`Upstream`](crate::upstream::Upstream) is made of —
//! the policy's selector walked by the same [`walk`](crate::upstream::Walk)
//! over the same `members`, its [`LoadTable`], and a [`Breakers`] table — with
//! one difference: every call takes the simulated `now` instead of reading
//! the clock. [`Pool::select`] asks exactly what `Upstream::select` asks, in
//! the same order: the policy proposes, outlier detection turns an ejected
//! backend away (when the pool has it, [`Pool::with_outliers`]), the breaker
//! has the last word (a half-open admission spends a probe). Health checks,
//! draining and slow start are not simulated.
//!
//! The in-flight count that `least_conn` and `p2c` read is held by the
//! [`Admitted`] value: the simulation keeps it for as long as the proxy would
//! keep the request (until the answer, or the timeout), and dropping it
//! releases the count, as in the proxy.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::lb::selection::{BackendIter, BackendSelection};

use super::events::Nanos;
use crate::config::{BackendSpec, CircuitBreaker, OutlierDetection, Policy};
use crate::upstream::breaker::{Breakers, Outcome, Permit, State};
use crate::upstream::health::HealthEvents;
use crate::upstream::load::{InflightGuard, LoadTable};
use crate::upstream::outlier::Outliers;
use crate::upstream::selection::{self, SelectionContext};
use crate::upstream::Ended;
use crate::upstream::{members, walk, Pick};

/// One simulated upstream: policy, live load, breakers.
pub struct Pool {
    picker: Arc<dyn Pick>,
    load: Arc<LoadTable>,
    breakers: Breakers,
    outliers: Option<Outliers>,
    /// Simulated time zero; the breakers see `origin + now`.
    origin: Instant,
}

/// A backend chosen for one attempt: in flight until dropped, and carrying
/// the breaker permit until [`Pool::report`].
#[derive(Debug)]
pub struct Admitted {
    pub index: usize,
    _inflight: InflightGuard,
    permit: Option<Permit>,
}

impl Pool {
    /// Backends `0..weights.len()` with these weights (backend `i` is
    /// `127.0.0.1:10000+i`; nothing is ever connected), under `policy`, with
    /// a breaker per backend when `breaker` is given.
    pub fn new(policy: Policy, weights: &[u32], breaker: Option<&CircuitBreaker>) -> Self {
        let specs: Vec<BackendSpec> = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| {
                let socket = SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000 + i as u16));
                BackendSpec {
                    addr: socket.to_string(),
                    socket,
                    weight,
                    max_conns: 0,
                    name: None,
                }
            })
            .collect();
        let load = LoadTable::new(specs.len());
        let ctx = SelectionContext {
            load: Arc::clone(&load),
        };
        let set: BTreeSet<_> = members(&specs, |i| specs[i].weight).into_iter().collect();
        let picker = match policy {
            Policy::RoundRobin => picker::<selection::RoundRobin>(set, ctx),
            Policy::WeightedRoundRobin => picker::<selection::WeightedRoundRobin>(set, ctx),
            Policy::LeastConn => picker::<selection::LeastConn>(set, ctx),
            Policy::P2c => picker::<selection::P2c>(set, ctx),
            Policy::ConsistentHash => picker::<selection::ConsistentHash>(set, ctx),
            Policy::Random => picker::<selection::Random>(set, ctx),
        };
        Self {
            picker,
            load,
            breakers: Breakers::new(breaker, weights.len()),
            outliers: None,
            origin: Instant::now(),
        }
    }

    /// The pool with the proxy's outlier detection, configured as `cfg`.
    pub fn with_outliers(mut self, cfg: &OutlierDetection) -> Self {
        let n = self.load.len();
        let addrs = (0..n).map(|i| format!("backend {i}")).collect();
        self.outliers = Some(Outliers::new(cfg, "sim", addrs, self.origin));
        self
    }

    /// The policy's first choice for `key` among backends whose breaker
    /// admits a request at simulated time `now`; `None` when every breaker
    /// refuses (the proxy's 503).
    pub fn select(&self, key: &[u8], now: Nanos) -> Option<Admitted> {
        self.select_except(key, now, &[])
    }

    /// As [`Pool::select`], among backends not in `tried` (a retry's
    /// choice, as the proxy makes it).
    pub fn select_except(&self, key: &[u8], now: Nanos, tried: &[usize]) -> Option<Admitted> {
        let at = self.instant(now);
        let permit = Cell::new(None);
        let index = self.picker.pick(key, &|i| {
            if tried.contains(&i) || self.outliers.as_ref().is_some_and(|o| o.ejected(i, at)) {
                return false;
            }
            match self.breakers.try_acquire(i, at) {
                Some(p) => {
                    permit.set(Some(p));
                    true
                }
                None => false,
            }
        })?;
        Some(Admitted {
            index,
            _inflight: self.load.acquire(index),
            permit: permit.take(),
        })
    }

    /// How the attempt ended, for its backend's breaker; releases its
    /// in-flight count.
    pub fn report(&self, attempt: Admitted, now: Nanos, outcome: Outcome) {
        if let Some(permit) = attempt.permit {
            self.breakers
                .record(attempt.index, self.instant(now), permit, outcome);
        }
    }

    /// How the attempt ended and how long its answer took (`None`: no
    /// answer), for its breaker and outlier detection, as
    /// `Upstream::report`; releases its in-flight count.
    pub fn report_ended(
        &self,
        attempt: Admitted,
        now: Nanos,
        ended: Ended,
        latency: Option<Duration>,
    ) {
        let at = self.instant(now);
        if let Some(o) = &self.outliers {
            o.report(attempt.index, at, ended, latency);
        }
        self.report(attempt, now, ended.outcome());
    }

    /// Whether outlier detection has backend `index` ejected at `now`.
    pub fn ejected(&self, index: usize, now: Nanos) -> bool {
        let at = self.instant(now);
        self.outliers.as_ref().is_some_and(|o| o.ejected(index, at))
    }

    /// Backend `index`'s breaker state at `now`.
    pub fn circuit(&self, index: usize, now: Nanos) -> State {
        self.breakers.state(index, self.instant(now))
    }

    pub fn inflight(&self, index: usize) -> usize {
        self.load.inflight(index)
    }

    fn instant(&self, now: Nanos) -> Instant {
        self.origin + Duration::from_nanos(now)
    }
}

fn picker<S>(set: BTreeSet<pingora::lb::Backend>, ctx: SelectionContext) -> Arc<dyn Pick>
where
    S: BackendSelection<Config = SelectionContext> + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    let names = set.iter().map(|b| b.addr.to_string()).collect();
    Arc::new(walk::<S>(&set, &ctx, HealthEvents::new("sim", names)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_conn_reads_the_counts_admissions_hold() {
        let pool = Pool::new(Policy::LeastConn, &[1, 1, 1], None);
        let a = pool.select(b"", 0).expect("a backend");
        let b = pool.select(b"", 0).expect("a backend");
        assert_ne!(a.index, b.index);
        let c = pool.select(b"", 0).expect("a backend");
        assert_eq!(
            [a.index, b.index, c.index].iter().sum::<usize>(),
            3,
            "each backend once"
        );
        let freed = a.index;
        pool.report(a, 1, Outcome::Success);
        assert_eq!(pool.inflight(freed), 0);
        assert_eq!(pool.select(b"", 2).map(|x| x.index), Some(freed));
    }

    #[test]
    fn an_open_breaker_turns_its_backend_away_until_open_for_passes() {
        let cfg = CircuitBreaker {
            consecutive_failures: 1,
            failure_rate: 1.0,
            min_requests: 100,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(2),
            half_open_requests: 1,
        };
        let pool = Pool::new(Policy::RoundRobin, &[1, 1], Some(&cfg));
        let a = pool.select(b"", 0).expect("a backend");
        let failed = a.index;
        pool.report(a, 0, Outcome::Failure);
        assert_eq!(pool.circuit(failed, 0), State::Open);
        for t in 0..10 {
            let x = pool.select(b"", t).expect("the other backend");
            assert_ne!(x.index, failed);
        }
        let two_secs = 2_000_000_000;
        assert_eq!(pool.circuit(failed, two_secs), State::HalfOpen);
    }
}
