//! Every balancing policy against the same heterogeneous backends.
//!
//! Model (defaults in brackets): `backends` [10] servers, each serving up to
//! `workers` [4] requests at once from a FIFO queue, with exponentially
//! distributed service times of mean `service` [20 ms]. The first `slow`
//! [a fifth] backends are `skew` [4] times slower; the last one starts at
//! full speed and slows down linearly to `degrade` [10] times slower by the
//! end of the run. A request's service time is fixed when a worker picks it
//! up, from the backend's speed at that moment. Requests arrive as a Poisson
//! stream of `rate` [1000/s] (open loop: arrivals do not wait for answers)
//! and nothing times out, so an overloaded backend's queue just grows.
//!
//! Weights are what an operator who knows the hardware would write: 20 for
//! a full-speed backend, `20 / skew` for a slow one. `weighted_round_robin`,
//! `least_conn` (load per weight), `p2c` (load per weight) and
//! `consistent_hash` (ring points) use them; `round_robin` and `random`
//! ignore weights, as the SPEC says. Nobody re-weights the degrading backend.
//!
//! Every policy sees the same workload (arrival times, client keys, and each
//! request's work, drawn once from `--seed`); only the backend choice
//! differs. Each choice is the real selector's, through [`Pool`], with the
//! request's in-flight guard held from dispatch until its answer.
//!
//! Reported per policy: latency (arrival to answer) mean and p50/p99/p99.9;
//! the longest queue (requests in flight on one backend, waiting or in
//! service); and the load spread as the least and most utilised backend
//! (busy worker time over worker time available, while requests arrive).

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use serde::Serialize;

use super::chart::{Chart, Panel, Series};
use super::events::{from_secs, to_secs, EventQueue, Nanos};
use super::output::{fixed, json, millis, percent, Table};
use super::pool::{Admitted, Pool};
use super::stats::{percentile, sorted};
use super::{random, PoliciesArgs, Report, SimError};
use crate::config::Policy;
use crate::upstream::breaker::Outcome;
use crate::upstream::selection::seed_thread;

/// Distinct client keys (what `consistent_hash` hashes).
const CLIENTS: u32 = 10_000;
/// Weight of a full-speed backend.
const FULL_WEIGHT: u32 = 20;
/// Time windows in the chart.
const WINDOWS: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct PoliciesResult {
    pub setup: Setup,
    pub rows: Vec<PolicyRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub backends: u32,
    pub slow: u32,
    pub skew: f64,
    pub degrade: f64,
    pub workers: u32,
    pub service_ms: f64,
    pub rate: f64,
    pub requests: u64,
    pub seed: u64,
    pub weights: Vec<u32>,
    /// Requests per second all backends can serve, at the start and the end.
    pub capacity_start: f64,
    pub capacity_end: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyRow {
    pub policy: &'static str,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Most requests in flight on one backend at once.
    pub max_queue: usize,
    pub util_min: f64,
    pub util_max: f64,
    /// Share of all requests each backend served.
    pub share: Vec<f64>,
    /// Requests no backend was found for (never, without breakers).
    pub unserved: u64,
    /// p99 latency of the requests arriving in each of 20 equal windows.
    pub p99_by_window_ms: Vec<f64>,
    /// Share of each window's requests sent to the degrading backend.
    pub degrading_share_by_window: Vec<f64>,
}

/// One request of the workload.
struct Job {
    at: Nanos,
    key: u32,
    /// Work in units of the mean service time (exponential, mean 1).
    work: f64,
}

/// How fast a backend serves, relative to full speed (a service-time factor).
#[derive(Debug, Clone, Copy)]
enum Speed {
    Full,
    Slow(f64),
    /// From ×1 at time 0 to ×`to` at `over`, linearly; ×`to` after.
    Degrading {
        to: f64,
        over: Nanos,
    },
}

impl Speed {
    fn factor(self, now: Nanos) -> f64 {
        match self {
            Speed::Full => 1.0,
            Speed::Slow(f) => f,
            Speed::Degrading { to, over } => {
                let progress = (now as f64 / over.max(1) as f64).min(1.0);
                1.0 + (to - 1.0) * progress
            }
        }
    }
}

struct Model {
    speeds: Vec<Speed>,
    weights: Vec<u32>,
    workers: usize,
    service: f64,
}

pub fn run(args: &PoliciesArgs) -> Result<Report, SimError> {
    let result = simulate(args)?;
    Ok(Report {
        table: table(&result),
        json: json(&result),
        chart: chart(&result),
    })
}

pub fn simulate(args: &PoliciesArgs) -> Result<PoliciesResult, SimError> {
    let n = args.backends;
    let slow = args.slow.unwrap_or((n / 5).max(1));
    if slow >= n {
        return Err(SimError::Usage(format!(
            "--slow {slow} leaves no full-speed backend: give fewer than --backends ({n}); \
             the last backend is the degrading one"
        )));
    }
    let span = from_secs(args.requests as f64 / args.rate);
    let speeds: Vec<Speed> = (0..n)
        .map(|i| match i {
            i if i < slow => Speed::Slow(args.skew),
            i if i == n - 1 => Speed::Degrading {
                to: args.degrade,
                over: span,
            },
            _ => Speed::Full,
        })
        .collect();
    let slow_weight = ((f64::from(FULL_WEIGHT) / args.skew).round() as u32).max(1);
    let weights = speeds
        .iter()
        .map(|s| match s {
            Speed::Slow(_) => slow_weight,
            _ => FULL_WEIGHT,
        })
        .collect();
    let model = Model {
        speeds,
        weights,
        workers: args.workers as usize,
        service: args.service.as_secs_f64(),
    };
    let capacity = |at: Nanos| -> f64 {
        model
            .speeds
            .iter()
            .map(|s| model.workers as f64 / (model.service * s.factor(at)))
            .sum()
    };
    let jobs = workload(args);
    let policies = if args.policies.is_empty() {
        Policy::ALL.to_vec()
    } else {
        args.policies.clone()
    };
    let rows = policies
        .iter()
        .map(|&p| {
            seed_thread(random::mix(args.common.seed ^ random::mix(p as u64 + 1)));
            serve(p, &model, &jobs)
        })
        .collect();
    Ok(PoliciesResult {
        setup: Setup {
            backends: n,
            slow,
            skew: args.skew,
            degrade: args.degrade,
            workers: args.workers,
            service_ms: model.service * 1e3,
            rate: args.rate,
            requests: args.requests,
            seed: args.common.seed,
            weights: model.weights.clone(),
            capacity_start: capacity(0),
            capacity_end: capacity(span),
        },
        rows,
    })
}

/// Arrival times, keys and work, one independent stream each.
fn workload(args: &PoliciesArgs) -> Vec<Job> {
    let seed = args.common.seed;
    let (mut arrivals, mut keys, mut works) = (
        random::stream(seed, 1),
        random::stream(seed, 2),
        random::stream(seed, 3),
    );
    let mut t = 0.0;
    (0..args.requests)
        .map(|_| {
            t += random::exponential(&mut arrivals, 1.0 / args.rate);
            Job {
                at: from_secs(t),
                key: (rand::Rng::gen_range(&mut keys, 0..CLIENTS)),
                work: random::exponential(&mut works, 1.0),
            }
        })
        .collect()
}

enum Event {
    Arrive(usize),
    Done { backend: usize, job: usize },
}

#[derive(Default)]
struct Server {
    busy: usize,
    queue: VecDeque<usize>,
    busy_ns: u128,
    served: u64,
    max_inflight: usize,
}

/// Runs the whole workload through `policy`.
fn serve(policy: Policy, model: &Model, jobs: &[Job]) -> PolicyRow {
    let pool = Pool::new(policy, &model.weights, None);
    let mut servers: Vec<Server> = model.speeds.iter().map(|_| Server::default()).collect();
    let mut held: Vec<Option<Admitted>> = jobs.iter().map(|_| None).collect();
    let mut chosen: Vec<Option<usize>> = vec![None; jobs.len()];
    let mut latency_ms = vec![f64::NAN; jobs.len()];
    let mut events = EventQueue::new();
    if let Some(first) = jobs.first() {
        events.push(first.at, Event::Arrive(0));
    }
    // Utilisation is measured while requests arrive, not while queues drain.
    let span = jobs.last().map_or(0, |j| j.at);
    let start = |now: Nanos, b: usize, j: usize, s: &mut Server, ev: &mut EventQueue<Event>| {
        let d = from_secs(jobs[j].work * model.service * model.speeds[b].factor(now));
        s.busy_ns += u128::from((now + d).min(span).saturating_sub(now));
        s.served += 1;
        ev.push(now + d, Event::Done { backend: b, job: j });
    };
    while let Some((now, event)) = events.pop() {
        match event {
            Event::Arrive(j) => {
                if let Some(next) = jobs.get(j + 1) {
                    events.push(next.at, Event::Arrive(j + 1));
                }
                let Some(admitted) = pool.select(&jobs[j].key.to_le_bytes(), now) else {
                    continue;
                };
                let b = admitted.index;
                held[j] = Some(admitted);
                chosen[j] = Some(b);
                let s = &mut servers[b];
                s.max_inflight = s.max_inflight.max(pool.inflight(b));
                if s.busy < model.workers {
                    s.busy += 1;
                    start(now, b, j, s, &mut events);
                } else {
                    s.queue.push_back(j);
                }
            }
            Event::Done { backend, job } => {
                latency_ms[job] = to_secs(now - jobs[job].at) * 1e3;
                if let Some(admitted) = held[job].take() {
                    pool.report(admitted, now, Outcome::Success);
                }
                let s = &mut servers[backend];
                match s.queue.pop_front() {
                    Some(next) => start(now, backend, next, s, &mut events),
                    None => s.busy -= 1,
                }
            }
        }
    }
    summarize(policy, model, jobs, &servers, &latency_ms, &chosen)
}

fn summarize(
    policy: Policy,
    model: &Model,
    jobs: &[Job],
    servers: &[Server],
    latency_ms: &[f64],
    chosen: &[Option<usize>],
) -> PolicyRow {
    let mut all: Vec<f64> = latency_ms.iter().copied().filter(|l| !l.is_nan()).collect();
    let unserved = (latency_ms.len() - all.len()) as u64;
    let all = sorted(&mut all);
    let mean_ms = if all.is_empty() {
        0.0
    } else {
        all.iter().sum::<f64>() / all.len() as f64
    };
    let span = jobs.last().map_or(1, |j| j.at.max(1));
    let available = model.workers as f64 * span as f64;
    let util: Vec<f64> = servers
        .iter()
        .map(|s| s.busy_ns as f64 / available)
        .collect();
    let total = jobs.len().max(1) as f64;
    // Windows by arrival time.
    let last = jobs.last().map_or(1, |j| j.at.max(1));
    let window_of =
        |at: Nanos| ((at as u128 * WINDOWS as u128 / (last as u128 + 1)) as usize).min(WINDOWS - 1);
    let mut by_window: Vec<Vec<f64>> = vec![Vec::new(); WINDOWS];
    let mut degrading = vec![(0u64, 0u64); WINDOWS];
    let slowest = model.speeds.len() - 1;
    for (j, job) in jobs.iter().enumerate() {
        let w = window_of(job.at);
        if !latency_ms[j].is_nan() {
            by_window[w].push(latency_ms[j]);
        }
        degrading[w].1 += 1;
        if chosen[j] == Some(slowest) {
            degrading[w].0 += 1;
        }
    }
    PolicyRow {
        policy: policy.name(),
        mean_ms,
        p50_ms: percentile(all, 0.5),
        p99_ms: percentile(all, 0.99),
        p999_ms: percentile(all, 0.999),
        max_queue: servers.iter().map(|s| s.max_inflight).max().unwrap_or(0),
        util_min: util.iter().copied().fold(f64::INFINITY, f64::min),
        util_max: util.iter().copied().fold(0.0, f64::max),
        share: servers.iter().map(|s| s.served as f64 / total).collect(),
        unserved,
        p99_by_window_ms: by_window
            .iter_mut()
            .map(|w| percentile(sorted(w), 0.99))
            .collect(),
        degrading_share_by_window: degrading
            .iter()
            .map(|&(d, t)| if t == 0 { 0.0 } else { d as f64 / t as f64 })
            .collect(),
    }
}

fn table(r: &PoliciesResult) -> String {
    let s = &r.setup;
    let mut t = Table::new([
        "policy",
        "mean_ms",
        "p50_ms",
        "p99_ms",
        "p999_ms",
        "max_queue",
        "util_min",
        "util_max",
    ]);
    for row in &r.rows {
        t.row([
            row.policy.to_string(),
            millis(row.mean_ms),
            millis(row.p50_ms),
            millis(row.p99_ms),
            millis(row.p999_ms),
            row.max_queue.to_string(),
            percent(row.util_min),
            percent(row.util_max),
        ]);
    }
    format!(
        "policies: {} backends x {} workers, {} ms mean service; {} slow (x{}), the last degrading to x{}; \
         weights {} (slow {}); capacity {:.0} -> {:.0} req/s\n\
         {} requests at {} req/s, seed {}\n{}",
        s.backends,
        s.workers,
        fixed(s.service_ms, 1),
        s.slow,
        s.skew,
        s.degrade,
        FULL_WEIGHT,
        s.weights.first().copied().unwrap_or(FULL_WEIGHT),
        s.capacity_start,
        s.capacity_end,
        s.requests,
        s.rate,
        s.seed,
        t.render()
    )
}

fn chart(r: &PoliciesResult) -> Chart {
    let span = r.setup.requests as f64 / r.setup.rate;
    let at = |w: usize| span * (w as f64 + 0.5) / WINDOWS as f64;
    let series = |f: &dyn Fn(&PolicyRow) -> &Vec<f64>| -> Vec<Series> {
        r.rows
            .iter()
            .map(|row| Series {
                name: row.policy.to_string(),
                points: f(row)
                    .iter()
                    .enumerate()
                    .map(|(w, &v)| (at(w), v))
                    .collect(),
            })
            .collect()
    };
    let fair = 1.0 / f64::from(r.setup.backends);
    Chart {
        title: format!(
            "Policies: {} backends ({} slow x{}, one degrading to x{}), {} req/s",
            r.setup.backends, r.setup.slow, r.setup.skew, r.setup.degrade, r.setup.rate
        ),
        panels: vec![
            Panel {
                title: "p99 latency of the requests arriving in each window".into(),
                x_label: "time (s)".into(),
                y_label: "p99 latency (ms)".into(),
                log_y: true,
                series: series(&|row| &row.p99_by_window_ms),
                ..Panel::default()
            },
            Panel {
                title: "Share of requests sent to the degrading backend (grey: 1/n)".into(),
                x_label: "time (s)".into(),
                y_label: "share".into(),
                series: series(&|row| &row.degrading_share_by_window),
                y_marks: vec![fair],
                ..Panel::default()
            },
        ],
    }
}
