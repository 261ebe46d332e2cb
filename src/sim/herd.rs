//! A backend fails and recovers while clients retry: does the retrying
//! finish off the backends that survived?
//!
//! Model (defaults in brackets): `backends` [4] servers of `workers` [10]
//! with exponential service times of mean `service` [20 ms], so each serves
//! 500 req/s; beyond its workers a server queues up to `queue` [1000]
//! requests (2 s of work) and answers 503 at once when that is full. It
//! serves its queue in order whether or not the client is still waiting —
//! work done for a client that gave up is wasted. Fresh requests arrive as a
//! Poisson stream at `load` [0.85] of the pool's capacity, i.e. more than
//! the survivors alone can serve. Backend 0 goes down at `fail_at` [10 s]
//! (what it holds fails, then connections are refused) and comes back at
//! `recover_at` [30 s]; fresh requests stop at `duration` [60 s] and the run
//! drains. A client gives up on a try after `timeout` [1 s] and retries up
//! to `retries` [3] times after a failure (timeout, 503 or refused).
//!
//! The balancer is the real selector for `policy` [p2c], through
//! [`Pool`]; the in-flight guard is held until the answer or the timeout,
//! as the proxy does. The policy matters: a backend that refuses at once
//! never has a request in flight, so without a breaker `least_conn` sends it
//! nearly everything and `p2c` every try where it is one of the two drawn;
//! with `round_robin` and breakers, a backend whose breaker just closed takes
//! the turns of those still open, trips again, and the flapping can outlast
//! the outage. `p2c` is the default because it shows the retry effects
//! without either artefact; docs/simulator.md has the other runs. Variants:
//!
//! - `naive`: retry at once.
//! - `backoff`: wait a random delay in `[0, min(5 s, 100 ms × 2^k))`
//!   before retry k = 0, 1, 2… ("full jitter").
//! - `breaker`: retry at once, but the balancer runs the proxy's circuit
//!   breaker per backend ([`BREAKER`], open for `open_for` [2 s]), driven on
//!   simulated time; when every breaker refuses, the balancer answers 503 at
//!   once without touching a backend.
//! - `breaker+backoff+budget`: the breaker, jittered backoff, and a client
//!   retry budget: a retry costs a token, each fresh request earns
//!   [`BUDGET_RATIO`] of one (at most [`BUDGET_CAP`] saved), so retries stay
//!   under a tenth of the traffic.
//!
//! Reported per variant: the share of fresh requests that succeeded (over
//! the run and among those arriving during the outage), tries per request,
//! the peak rate of tries reaching the survivors (per 500 ms window, as a
//! multiple of what they can serve), and the time after `recover_at` until
//! every later window's arrivals succeed at least 99% of the time ("never"
//! if the run ends first).

mod model;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;

use super::chart::{Chart, Panel, Series};
use super::events::{to_secs, Nanos};
use super::output::{fixed, json, percent, Table};
use super::{random, HerdArgs, Report, SimError};
use crate::config::CircuitBreaker;
use crate::upstream::selection::seed_thread;
use model::Sim;

/// The breaker the breaker variants run (`open_for` comes from the CLI).
pub const BREAKER: CircuitBreaker = CircuitBreaker {
    consecutive_failures: 5,
    failure_rate: 0.5,
    min_requests: 20,
    window: Duration::from_secs(5),
    open_for: Duration::from_secs(2),
    half_open_requests: 1,
};
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Retry tokens earned per fresh request.
pub const BUDGET_RATIO: f64 = 0.1;
/// Most retry tokens a client saves up.
pub const BUDGET_CAP: f64 = 100.0;
/// Width of the measurement windows.
const WINDOW: Nanos = 500_000_000;
/// A window "succeeds" when this share of its arrivals does.
const RECOVERED: f64 = 0.99;
/// The most fresh requests one run may simulate.
const MAX_FRESH: f64 = 20e6;
/// The backend that fails.
const FAILING: usize = 0;

#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    backoff: bool,
    breaker: bool,
    budget: bool,
}

const VARIANTS: [Variant; 4] = [
    Variant {
        name: "naive",
        backoff: false,
        breaker: false,
        budget: false,
    },
    Variant {
        name: "backoff",
        backoff: true,
        breaker: false,
        budget: false,
    },
    Variant {
        name: "breaker",
        backoff: false,
        breaker: true,
        budget: false,
    },
    Variant {
        name: "breaker+backoff+budget",
        backoff: true,
        breaker: true,
        budget: true,
    },
];

#[derive(Debug, Clone, Serialize)]
pub struct HerdResult {
    pub setup: Setup,
    pub rows: Vec<VariantRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub backends: u32,
    pub workers: u32,
    pub service_ms: f64,
    pub queue: u32,
    /// Requests per second one backend serves.
    pub capacity_per_backend: f64,
    pub fresh_rate: f64,
    pub load: f64,
    pub retries: u32,
    pub timeout_s: f64,
    pub fail_at_s: f64,
    pub recover_at_s: f64,
    pub duration_s: f64,
    pub open_for_s: f64,
    pub policy: &'static str,
    pub seed: u64,
    pub window_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    pub variant: &'static str,
    pub requests: u64,
    /// Share of fresh requests that succeeded (after their retries).
    pub success: f64,
    /// The same among requests arriving while backend 0 was down.
    pub success_in_outage: f64,
    pub tries_per_request: f64,
    /// Tries refused by the balancer because every breaker was open.
    pub shed: u64,
    /// Most tries per second reaching the survivors in one window.
    pub peak_survivor_rate: f64,
    /// That peak over what the survivors can serve.
    pub peak_survivor_load: f64,
    /// Seconds after `recover_at` until success stays ≥ 99%; `None`: never.
    pub recovery_s: Option<f64>,
    /// Tries per second reaching the survivors, per window.
    pub survivor_rate_by_window: Vec<f64>,
    /// Share of each window's fresh requests that succeeded.
    pub success_by_window: Vec<f64>,
}

pub fn run(args: &HerdArgs) -> Result<Report, SimError> {
    let result = simulate(args)?;
    Ok(Report {
        table: table(&result),
        json: json(&result),
        chart: chart(&result),
    })
}

pub fn simulate(args: &HerdArgs) -> Result<HerdResult, SimError> {
    if !(args.fail_at < args.recover_at && args.recover_at < args.duration) {
        return Err(SimError::Usage(format!(
            "need --fail-at < --recover-at < --duration (got {:?}, {:?}, {:?})",
            args.fail_at, args.recover_at, args.duration
        )));
    }
    let capacity = f64::from(args.workers) / args.service.as_secs_f64();
    let fresh_rate = args.load * capacity * f64::from(args.backends);
    let fresh = fresh_rate * args.duration.as_secs_f64();
    if fresh > MAX_FRESH {
        return Err(SimError::Usage(format!(
            "this run would simulate {fresh:.0} fresh requests; at most {MAX_FRESH:.0}: \
             shorten --duration or lower --load, --workers or the service rate"
        )));
    }
    let setup = Setup {
        backends: args.backends,
        workers: args.workers,
        service_ms: args.service.as_secs_f64() * 1e3,
        queue: args.queue,
        capacity_per_backend: capacity,
        fresh_rate,
        load: args.load,
        retries: args.retries,
        timeout_s: args.timeout.as_secs_f64(),
        fail_at_s: args.fail_at.as_secs_f64(),
        recover_at_s: args.recover_at.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        open_for_s: args.open_for.as_secs_f64(),
        policy: args.policy.name(),
        seed: args.common.seed,
        window_s: to_secs(WINDOW),
    };
    let rows = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| {
            seed_thread(random::mix(args.common.seed ^ random::mix(i as u64 + 101)));
            Sim::new(args, *v, fresh_rate).run()
        })
        .collect();
    Ok(HerdResult { setup, rows })
}

fn nanos(d: Duration) -> Nanos {
    d.as_nanos().min(u128::from(u64::MAX)) as Nanos
}

fn duration_nanos(args: &HerdArgs) -> Nanos {
    nanos(args.duration)
}

fn table(r: &HerdResult) -> String {
    let s = &r.setup;
    let mut t = Table::new([
        "variant",
        "success",
        "in_outage",
        "tries/req",
        "shed",
        "peak_survivors",
        "recovery_s",
    ]);
    for row in &r.rows {
        t.row([
            row.variant.to_string(),
            percent(row.success),
            percent(row.success_in_outage),
            fixed(row.tries_per_request, 2),
            row.shed.to_string(),
            format!("{}x", fixed(row.peak_survivor_load, 2)),
            row.recovery_s.map_or("never".into(), |x| fixed(x, 1)),
        ]);
    }
    let survivors = f64::from(s.backends - 1) * s.capacity_per_backend;
    format!(
        "herd: {} backends x {} workers, {} ms mean service, queue {} ({:.0} req/s each); \
         {} policy; seed {}\n\
         fresh {:.0} req/s = {:.0}% of the pool, {:.0}% of the {} survivors; \
         backend 0 down {}s-{}s of {}s; timeout {}s, up to {} retries\n\
         breaker: {} failures in a row or {:.0}% of >= {} in {}s, open {}s, {} probe; \
         backoff: full jitter, {} ms x 2^k, cap {} s; budget: {} token per request, cap {}\n{}",
        s.backends,
        s.workers,
        fixed(s.service_ms, 1),
        s.queue,
        s.capacity_per_backend,
        s.policy,
        s.seed,
        s.fresh_rate,
        s.load * 100.0,
        s.fresh_rate / survivors * 100.0,
        s.backends - 1,
        s.fail_at_s,
        s.recover_at_s,
        s.duration_s,
        s.timeout_s,
        s.retries,
        BREAKER.consecutive_failures,
        BREAKER.failure_rate * 100.0,
        BREAKER.min_requests,
        BREAKER.window.as_secs_f64(),
        s.open_for_s,
        BREAKER.half_open_requests,
        BACKOFF_BASE.as_millis(),
        BACKOFF_CAP.as_secs_f64(),
        BUDGET_RATIO,
        BUDGET_CAP,
        t.render()
    )
}

fn chart(r: &HerdResult) -> Chart {
    let s = &r.setup;
    let mid = |i: usize| (i as f64 + 0.5) * s.window_s;
    let series = |f: &dyn Fn(&VariantRow) -> &Vec<f64>| -> Vec<Series> {
        r.rows
            .iter()
            .map(|row| Series {
                name: row.variant.to_string(),
                points: f(row)
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (mid(i), v))
                    .collect(),
            })
            .collect()
    };
    let marks = vec![s.fail_at_s, s.recover_at_s];
    Chart {
        title: format!(
            "Herd ({}): backend 0 of {} down {}s-{}s, fresh load {:.0}% of the pool, up to {} retries",
            s.policy,
            s.backends,
            s.fail_at_s,
            s.recover_at_s,
            s.load * 100.0,
            s.retries
        ),
        panels: vec![
            Panel {
                title: "Tries reaching the survivors (grey: what they can serve)".into(),
                x_label: "time (s)".into(),
                y_label: "tries per second".into(),
                series: series(&|row| &row.survivor_rate_by_window),
                x_marks: marks.clone(),
                y_marks: vec![f64::from(s.backends - 1) * s.capacity_per_backend],
                ..Panel::default()
            },
            Panel {
                title: "Share of fresh requests that succeeded, by arrival time".into(),
                x_label: "time (s)".into(),
                y_label: "success".into(),
                series: series(&|row| &row.success_by_window),
                x_marks: marks,
                ..Panel::default()
            },
        ],
    }
}
