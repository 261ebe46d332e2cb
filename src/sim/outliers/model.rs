//! The gray-failure model: Poisson arrivals, servers with workers and a
//! FIFO queue, backend 0 slow or flaky from `fail_at`; the choice, the
//! ejections and the retry budget are the proxy's ([`Pool`],
//! [`RetryBudget`]). One [`Sim`] runs one variant.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::Rng;

use super::{nanos, Variant, VariantRow, WINDOW};
use crate::sim::events::{from_secs, to_secs, EventQueue, Nanos};
use crate::sim::pool::{Admitted, Pool};
use crate::sim::stats::{percentile, sorted};
use crate::sim::{random, Fault, OutliersArgs};
use crate::upstream::retry_budget::RetryBudget;
use crate::upstream::Ended;

/// The backend that goes gray.
const GRAY: usize = 0;

struct Request {
    arrived: Nanos,
    /// When the final answer came (success or failure).
    finished: Option<Nanos>,
    ok: bool,
    tried: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Waiting,
    Settled,
}

struct Try {
    request: usize,
    sent: Nanos,
    admitted: Option<Admitted>,
    fate: Fate,
}

#[derive(Default)]
struct Server {
    busy: usize,
    queue: VecDeque<usize>,
}

enum Event {
    Fresh,
    Done { backend: usize, attempt: usize },
    Timeout(usize),
}

pub(super) struct Sim<'a> {
    args: &'a OutliersArgs,
    variant: Variant,
    rate: f64,
    pool: Pool,
    budget: RetryBudget,
    /// Time zero for the budget's instants.
    origin: Instant,
    events: EventQueue<Event>,
    servers: Vec<Server>,
    requests: Vec<Request>,
    tries: Vec<Try>,
    sent: u64,
    refused: u64,
    /// Tries reaching a healthy backend, by window.
    healthy: Vec<u64>,
    ejected_ns: Nanos,
    ejected_since: Option<Nanos>,
    arrivals: SmallRng,
    work: SmallRng,
    faults: SmallRng,
}

impl<'a> Sim<'a> {
    pub(super) fn new(args: &'a OutliersArgs, variant: Variant, rate: f64) -> Self {
        let weights = vec![1; args.backends as usize];
        let mut pool = Pool::new(args.policy, &weights, None);
        if let Some(cfg) = &variant.detection {
            pool = pool.with_outliers(cfg);
        }
        let seed = args.common.seed;
        let windows = nanos(args.duration).div_ceil(WINDOW) as usize;
        Self {
            args,
            budget: RetryBudget::new(args.budget),
            variant,
            rate,
            pool,
            origin: Instant::now(),
            events: EventQueue::new(),
            servers: weights.iter().map(|_| Server::default()).collect(),
            requests: Vec::new(),
            tries: Vec::new(),
            sent: 0,
            refused: 0,
            healthy: vec![0; windows],
            ejected_ns: 0,
            ejected_since: None,
            arrivals: random::stream(seed, 11),
            work: random::stream(seed, 12),
            faults: random::stream(seed, 13),
        }
    }

    pub(super) fn run(mut self) -> VariantRow {
        let first = self.next_arrival(0);
        if first < nanos(self.args.duration) {
            self.events.push(first, Event::Fresh);
        }
        while let Some((now, event)) = self.events.pop() {
            self.watch_ejection(now);
            match event {
                Event::Fresh => self.fresh(now),
                Event::Done { backend, attempt } => self.done(backend, attempt, now),
                Event::Timeout(t) => self.timeout(t, now),
            }
        }
        self.summarize()
    }

    fn next_arrival(&mut self, now: Nanos) -> Nanos {
        now + from_secs(random::exponential(&mut self.arrivals, 1.0 / self.rate))
    }

    fn instant(&self, now: Nanos) -> Instant {
        self.origin + Duration::from_nanos(now)
    }

    fn gray(&self, now: Nanos) -> bool {
        now >= nanos(self.args.fail_at)
    }

    /// Adds up the time backend 0 spends ejected (sampled at each event).
    fn watch_ejection(&mut self, now: Nanos) {
        let ejected = self.pool.ejected(GRAY, now);
        match (ejected, self.ejected_since) {
            (true, None) => self.ejected_since = Some(now),
            (false, Some(since)) => {
                self.ejected_ns += now - since;
                self.ejected_since = None;
            }
            _ => {}
        }
    }

    fn fresh(&mut self, now: Nanos) {
        let next = self.next_arrival(now);
        if next < nanos(self.args.duration) {
            self.events.push(next, Event::Fresh);
        }
        self.budget.record_request(self.instant(now));
        self.requests.push(Request {
            arrived: now,
            finished: None,
            ok: false,
            tried: Vec::new(),
        });
        self.send(self.requests.len() - 1, now);
    }

    /// One try of request `r` on a backend it has not tried yet.
    fn send(&mut self, r: usize, now: Nanos) {
        self.sent += 1;
        let key = (r as u64).to_le_bytes();
        let Some(admitted) = self.pool.select_except(&key, now, &self.requests[r].tried) else {
            // Nothing selectable: the proxy's 503, not retried.
            return self.finish(r, now, false);
        };
        let b = admitted.index;
        self.requests[r].tried.push(b);
        if b != GRAY {
            let w = (now / WINDOW) as usize;
            if let Some(count) = self.healthy.get_mut(w) {
                *count += 1;
            }
        }
        let t = self.tries.len();
        self.tries.push(Try {
            request: r,
            sent: now,
            admitted: Some(admitted),
            fate: Fate::Waiting,
        });
        self.events
            .push(now + nanos(self.args.timeout), Event::Timeout(t));
        if self.servers[b].busy < self.args.workers as usize {
            self.begin(b, t, now);
        } else {
            self.servers[b].queue.push_back(t);
        }
    }

    fn begin(&mut self, b: usize, t: usize, now: Nanos) {
        let mut secs = random::exponential(&mut self.work, self.args.service.as_secs_f64());
        if b == GRAY && self.gray(now) && self.args.fault == Fault::Slow {
            secs *= self.args.slowdown;
        }
        self.servers[b].busy += 1;
        self.events.push(
            now + from_secs(secs),
            Event::Done {
                backend: b,
                attempt: t,
            },
        );
    }

    fn done(&mut self, b: usize, t: usize, now: Nanos) {
        self.servers[b].busy -= 1;
        if let Some(next) = self.servers[b].queue.pop_front() {
            self.begin(b, next, now);
        }
        if self.tries[t].fate != Fate::Waiting {
            return; // served for a client that left
        }
        let flaky = b == GRAY && self.gray(now) && self.args.fault == Fault::Errors;
        let status = if flaky && self.faults.gen::<f64>() < self.args.error_share {
            503
        } else {
            200
        };
        let latency = Duration::from_nanos(now - self.tries[t].sent);
        let r = self.settle(t, now, Ended::Answered(status), Some(latency));
        if status == 200 {
            self.finish(r, now, true);
        } else {
            self.failed(r, now);
        }
    }

    fn timeout(&mut self, t: usize, now: Nanos) {
        if self.tries[t].fate != Fate::Waiting {
            return;
        }
        let r = self.settle(t, now, Ended::Timeout, None);
        self.failed(r, now);
    }

    /// Reports try `t`; returns its request.
    fn settle(&mut self, t: usize, now: Nanos, ended: Ended, latency: Option<Duration>) -> usize {
        let attempt = &mut self.tries[t];
        attempt.fate = Fate::Settled;
        if let Some(a) = attempt.admitted.take() {
            self.pool.report_ended(a, now, ended, latency);
        }
        attempt.request
    }

    /// A try of request `r` failed: retried if the variant retries, tries
    /// are left and the budget (if any) allows; else the request failed.
    fn failed(&mut self, r: usize, now: Nanos) {
        let tries = self.requests[r].tried.len() as u32;
        if !self.variant.retries || tries > self.args.retries {
            return self.finish(r, now, false);
        }
        if self.variant.budget && !self.budget.try_retry(self.instant(now)) {
            self.refused += 1;
            return self.finish(r, now, false);
        }
        self.send(r, now);
    }

    fn finish(&mut self, r: usize, now: Nanos, ok: bool) {
        let req = &mut self.requests[r];
        req.finished = Some(now);
        req.ok = ok;
    }

    fn summarize(mut self) -> VariantRow {
        let end = nanos(self.args.duration);
        if let Some(since) = self.ejected_since {
            self.ejected_ns += end.saturating_sub(since);
        }
        let from = nanos(self.args.fail_at);
        let windows = self.healthy.len();
        let mut by_window: Vec<Vec<f64>> = vec![Vec::new(); windows];
        let mut after = Vec::new();
        let (mut count, mut failed) = (0u64, 0u64);
        for r in &self.requests {
            let ms = to_secs(r.finished.unwrap_or(end).saturating_sub(r.arrived)) * 1e3;
            if let Some(w) = by_window.get_mut((r.arrived / WINDOW) as usize) {
                w.push(ms);
            }
            if r.arrived >= from {
                after.push(ms);
                count += 1;
                failed += u64::from(!r.ok);
            }
        }
        let p99_by_window = by_window
            .iter_mut()
            .map(|w| percentile(sorted(w), 0.99))
            .collect();
        let capacity = f64::from(self.args.backends - 1) * f64::from(self.args.workers)
            / self.args.service.as_secs_f64();
        let window_s = to_secs(WINDOW);
        let healthy_load_by_window: Vec<f64> = self
            .healthy
            .iter()
            .map(|&n| n as f64 / window_s / capacity)
            .collect();
        let first = (from / WINDOW) as usize;
        let last = ((end / WINDOW) as usize).min(windows);
        let gray = &healthy_load_by_window[first.min(last)..last];
        let healthy_load = if gray.is_empty() {
            0.0
        } else {
            gray.iter().sum::<f64>() / gray.len() as f64
        };
        let after = sorted(&mut after);
        let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        VariantRow {
            variant: self.variant.name,
            requests: count,
            p50_ms: percentile(after, 0.5),
            p99_ms: percentile(after, 0.99),
            errors: share(failed, count),
            tries_per_request: share(self.sent, self.requests.len() as u64),
            budget_refused: self.refused,
            healthy_load,
            ejected_s: to_secs(self.ejected_ns),
            p99_by_window,
            healthy_load_by_window,
        }
    }
}
