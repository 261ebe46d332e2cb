//! The herd's discrete-event model: fresh requests, tries, servers with
//! workers and a bounded FIFO queue, a crash and a recovery; the balancer's
//! choice and breakers come from [`Pool`]. One [`Sim`] runs one variant.
//!
//! A try's fate is settled once: answered (the server finished it before
//! the timeout), or abandoned (timeout, refused, 503, or lost in the crash).
//! Its in-flight guard and breaker permit are handed back at that moment;
//! the server may still do the work later, for nobody.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::Rng;

use super::{
    duration_nanos, nanos, Variant, VariantRow, BACKOFF_BASE, BACKOFF_CAP, BREAKER, BUDGET_CAP,
    BUDGET_RATIO, FAILING, RECOVERED, WINDOW,
};
use crate::config::CircuitBreaker;
use crate::sim::events::{from_secs, to_secs, EventQueue, Nanos};
use crate::sim::pool::{Admitted, Pool};
use crate::sim::stats::Windows;
use crate::sim::{random, HerdArgs};
use crate::upstream::breaker::Outcome;

struct Request {
    arrived: Nanos,
    tries: u32,
    ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Waiting,
    Answered,
    Abandoned,
}

/// One try queued at or served by a backend.
struct Try {
    request: usize,
    admitted: Option<Admitted>,
    fate: Fate,
}

struct Server {
    up: bool,
    /// Bumped when the server crashes: completions of older work are void.
    epoch: u32,
    serving: Vec<usize>,
    queue: VecDeque<usize>,
}

enum Event {
    Fresh,
    Send(usize),
    Done {
        backend: usize,
        epoch: u32,
        attempt: usize,
    },
    Timeout(usize),
    Crash,
    Recover,
}

pub(super) struct Sim<'a> {
    args: &'a HerdArgs,
    variant: Variant,
    fresh_rate: f64,
    pool: Pool,
    events: EventQueue<Event>,
    servers: Vec<Server>,
    requests: Vec<Request>,
    tries: Vec<Try>,
    tokens: f64,
    shed: u64,
    sent: u64,
    survivor_tries: Windows,
    arrivals: SmallRng,
    work: SmallRng,
    jitter: SmallRng,
}

impl<'a> Sim<'a> {
    pub(super) fn new(args: &'a HerdArgs, variant: Variant, fresh_rate: f64) -> Self {
        let breaker = CircuitBreaker {
            open_for: args.open_for,
            ..BREAKER
        };
        let weights = vec![1; args.backends as usize];
        let seed = args.common.seed;
        Self {
            args,
            variant,
            fresh_rate,
            pool: Pool::new(args.policy, &weights, variant.breaker.then_some(&breaker)),
            events: EventQueue::new(),
            servers: weights
                .iter()
                .map(|_| Server {
                    up: true,
                    epoch: 0,
                    serving: Vec::new(),
                    queue: VecDeque::new(),
                })
                .collect(),
            requests: Vec::new(),
            tries: Vec::new(),
            tokens: BUDGET_CAP,
            shed: 0,
            sent: 0,
            survivor_tries: Windows::new(WINDOW, duration_nanos(args)),
            arrivals: random::stream(seed, 1),
            work: random::stream(seed, 2),
            jitter: random::stream(seed, 3),
        }
    }

    pub(super) fn run(mut self) -> VariantRow {
        let first = self.next_arrival(0);
        if first < duration_nanos(self.args) {
            self.events.push(first, Event::Fresh);
        }
        self.events.push(nanos(self.args.fail_at), Event::Crash);
        self.events
            .push(nanos(self.args.recover_at), Event::Recover);
        while let Some((now, event)) = self.events.pop() {
            match event {
                Event::Fresh => self.fresh(now),
                Event::Send(r) => self.send(r, now),
                Event::Done {
                    backend,
                    epoch,
                    attempt,
                } => self.done(backend, epoch, attempt, now),
                Event::Timeout(t) => self.timeout(t, now),
                Event::Crash => self.crash(now),
                Event::Recover => self.servers[FAILING].up = true,
            }
        }
        self.summarize()
    }

    fn next_arrival(&mut self, now: Nanos) -> Nanos {
        now + from_secs(random::exponential(
            &mut self.arrivals,
            1.0 / self.fresh_rate,
        ))
    }

    fn fresh(&mut self, now: Nanos) {
        let next = self.next_arrival(now);
        if next < duration_nanos(self.args) {
            self.events.push(next, Event::Fresh);
        }
        if self.variant.budget {
            self.tokens = (self.tokens + BUDGET_RATIO).min(BUDGET_CAP);
        }
        self.requests.push(Request {
            arrived: now,
            tries: 0,
            ok: false,
        });
        self.send(self.requests.len() - 1, now);
    }

    /// One try of request `r`: the balancer picks, the backend takes it,
    /// queues it, or turns it away.
    fn send(&mut self, r: usize, now: Nanos) {
        self.requests[r].tries += 1;
        self.sent += 1;
        let Some(admitted) = self.pool.select(&(r as u64).to_le_bytes(), now) else {
            self.shed += 1;
            return self.failed(r, now);
        };
        let b = admitted.index;
        if b != FAILING {
            self.survivor_tries.add(now);
        }
        let server = &self.servers[b];
        let idle = server.serving.len() < self.args.workers as usize;
        if !server.up || (!idle && server.queue.len() >= self.args.queue as usize) {
            // Refused (down) or 503 (queue full): the client hears at once.
            self.pool.report(admitted, now, Outcome::Failure);
            return self.failed(r, now);
        }
        let t = self.tries.len();
        self.tries.push(Try {
            request: r,
            admitted: Some(admitted),
            fate: Fate::Waiting,
        });
        self.events
            .push(now + nanos(self.args.timeout), Event::Timeout(t));
        if idle {
            self.begin(b, t, now);
        } else {
            self.servers[b].queue.push_back(t);
        }
    }

    fn begin(&mut self, b: usize, t: usize, now: Nanos) {
        let d = from_secs(random::exponential(
            &mut self.work,
            self.args.service.as_secs_f64(),
        ));
        let server = &mut self.servers[b];
        server.serving.push(t);
        self.events.push(
            now + d,
            Event::Done {
                backend: b,
                epoch: server.epoch,
                attempt: t,
            },
        );
    }

    fn done(&mut self, b: usize, epoch: u32, t: usize, now: Nanos) {
        let server = &mut self.servers[b];
        if server.epoch != epoch {
            return;
        }
        if let Some(pos) = server.serving.iter().position(|&x| x == t) {
            server.serving.swap_remove(pos);
        }
        let next = server.queue.pop_front();
        let attempt = &mut self.tries[t];
        if attempt.fate == Fate::Waiting {
            attempt.fate = Fate::Answered;
            self.requests[attempt.request].ok = true;
            if let Some(a) = attempt.admitted.take() {
                self.pool.report(a, now, Outcome::Success);
            }
        }
        if let Some(next) = next {
            self.begin(b, next, now);
        }
    }

    fn timeout(&mut self, t: usize, now: Nanos) {
        let attempt = &mut self.tries[t];
        if attempt.fate != Fate::Waiting {
            return;
        }
        // The client (and the proxy's read_timeout) gives up; the backend
        // still holds the work and will do it for nobody.
        self.abandon(t, now);
    }

    fn abandon(&mut self, t: usize, now: Nanos) {
        let attempt = &mut self.tries[t];
        attempt.fate = Fate::Abandoned;
        let r = attempt.request;
        if let Some(a) = attempt.admitted.take() {
            self.pool.report(a, now, Outcome::Failure);
        }
        self.failed(r, now);
    }

    /// Everything backend 0 holds fails now; it refuses connections until
    /// it recovers.
    fn crash(&mut self, now: Nanos) {
        let server = &mut self.servers[FAILING];
        server.up = false;
        server.epoch += 1;
        let lost: Vec<usize> = server
            .serving
            .drain(..)
            .chain(server.queue.drain(..))
            .collect();
        for t in lost {
            if self.tries[t].fate == Fate::Waiting {
                self.abandon(t, now);
            }
        }
    }

    /// Try of request `r` failed at `now`: retry if allowed.
    fn failed(&mut self, r: usize, now: Nanos) {
        let tries = self.requests[r].tries;
        if tries > self.args.retries {
            return;
        }
        if self.variant.budget {
            if self.tokens < 1.0 {
                return;
            }
            self.tokens -= 1.0;
        }
        let delay = if self.variant.backoff {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (tries - 1).min(20))
                .min(BACKOFF_CAP);
            from_secs(self.jitter.gen::<f64>() * ceiling.as_secs_f64())
        } else {
            0
        };
        self.events.push(now + delay, Event::Send(r));
    }

    fn summarize(self) -> VariantRow {
        let args = self.args;
        let mut arrived = Windows::new(WINDOW, duration_nanos(args));
        let mut succeeded = Windows::new(WINDOW, duration_nanos(args));
        let (t1, t2) = (nanos(args.fail_at), nanos(args.recover_at));
        let (mut outage, mut outage_ok, mut ok) = (0u64, 0u64, 0u64);
        for r in &self.requests {
            arrived.add(r.arrived);
            if r.ok {
                succeeded.add(r.arrived);
                ok += 1;
            }
            if (t1..t2).contains(&r.arrived) {
                outage += 1;
                outage_ok += u64::from(r.ok);
            }
        }
        let success_by_window: Vec<f64> = (0..arrived.len())
            .map(|i| match arrived.count(i) {
                0 => 1.0,
                n => succeeded.count(i) as f64 / n as f64,
            })
            .collect();
        // The first window from which every window at or after t2 succeeds.
        let first_after = (t2 / WINDOW) as usize;
        let mut recovered_from = None;
        for i in (first_after..success_by_window.len()).rev() {
            if success_by_window[i] < RECOVERED {
                break;
            }
            recovered_from = Some(i);
        }
        let recovery_s = recovered_from.map(|i| (arrived.start_secs(i) - to_secs(t2)).max(0.0));
        let survivors =
            f64::from(args.backends - 1) * f64::from(args.workers) / args.service.as_secs_f64();
        let survivor_rate_by_window: Vec<f64> = (0..self.survivor_tries.len())
            .map(|i| self.survivor_tries.rate(i))
            .collect();
        let peak = survivor_rate_by_window.iter().copied().fold(0.0, f64::max);
        let requests = self.requests.len() as u64;
        let share = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        VariantRow {
            variant: self.variant.name,
            requests,
            success: share(ok, requests),
            success_in_outage: share(outage_ok, outage),
            tries_per_request: share(self.sent, requests),
            shed: self.shed,
            peak_survivor_rate: peak,
            peak_survivor_load: peak / survivors,
            recovery_s,
            survivor_rate_by_window,
            success_by_window,
        }
    }
}
