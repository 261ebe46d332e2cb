//! A gray failure: one backend turns slow (or starts failing a share of its
//! requests) but stays up, so health checks never notice. What takes it out
//! of rotation, and what do retries cost the healthy ones?
//!
//! Model (defaults in brackets): `backends` [5] servers of `workers` [8]
//! with exponential service times of mean `service` [10 ms] and an unbounded
//! FIFO queue; requests arrive as a Poisson stream at `load` [0.6] of the
//! pool's capacity, chosen by the real selector for `policy` [round_robin]
//! through [`Pool`]. From `fail_at` [10 s] to the end (`duration` [40 s]),
//! backend 0 serves `slowdown` [10] times slower (`--fault slow`), or
//! answers 503 to `error_share` [half] of its requests (`--fault errors`).
//! The proxy gives up on a try after `timeout` [1 s] (its `read_timeout`:
//! 504); a backend serves what it queued even for a client that left.
//!
//! Variants, each on the proxy's own code:
//! - `none`: the policy alone.
//! - `errors`: outlier detection by errors ([`ERRORS`]: 5 answers ≥ 500 or
//!   3 gateway failures in a row — timeouts are gateway failures).
//! - `latency`: outlier detection by latency only ([`LATENCY`]: median above
//!   3× the others' over 2 s intervals).
//! - `retries`: no ejection; a 503 or a timeout is tried again at once on
//!   another backend, up to `retries` [2] times.
//! - `retries+budget`: the same within the proxy's retry budget
//!   (`budget` [20%] of first tries + 30 per 10 s).
//!
//! Ejection lasts 10 s × the backend's ejection count (at most 10×), at most
//! half the backends at once. Reported over the requests arriving from
//! `fail_at` on: p50 and p99 latency (arrival to the final answer, failed
//! ones included), the share that failed, tries per request, retries the
//! budget refused, and the load on the healthy backends (tries reaching
//! them per second over what they can serve).

mod model;

use std::time::Duration;

use serde::Serialize;

use super::chart::{Chart, Panel, Series};
use super::events::Nanos;
use super::output::{fixed, json, millis, percent, Table};
use super::{random, Fault, OutliersArgs, Report, SimError};
use crate::config::OutlierDetection;
use crate::upstream::selection::seed_thread;

/// The `errors` variant's outlier detection.
pub const ERRORS: OutlierDetection = OutlierDetection {
    consecutive_5xx: 5,
    consecutive_gateway_failures: 3,
    latency_factor: 0.0,
    interval: Duration::from_secs(2),
    base_ejection: Duration::from_secs(10),
    max_ejected_percent: 50,
};

/// The `latency` variant's outlier detection.
pub const LATENCY: OutlierDetection = OutlierDetection {
    consecutive_5xx: 0,
    consecutive_gateway_failures: 0,
    latency_factor: 3.0,
    ..ERRORS
};

/// Width of the chart's time windows.
const WINDOW: Nanos = 1_000_000_000;
/// The most requests one run may simulate (per variant).
const MAX_REQUESTS: f64 = 5e6;

#[derive(Debug, Clone)]
struct Variant {
    name: &'static str,
    detection: Option<OutlierDetection>,
    retries: bool,
    budget: bool,
}

fn variants() -> [Variant; 5] {
    let v = |name, detection, retries, budget| Variant {
        name,
        detection,
        retries,
        budget,
    };
    [
        v("none", None, false, false),
        v("errors", Some(ERRORS), false, false),
        v("latency", Some(LATENCY), false, false),
        v("retries", None, true, false),
        v("retries+budget", None, true, true),
    ]
}

#[derive(Debug, Clone, Serialize)]
pub struct OutliersResult {
    pub setup: Setup,
    pub rows: Vec<VariantRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub backends: u32,
    pub workers: u32,
    pub service_ms: f64,
    pub rate: f64,
    pub load: f64,
    pub fault: Fault,
    pub slowdown: f64,
    pub error_share: f64,
    pub fail_at_s: f64,
    pub duration_s: f64,
    pub timeout_s: f64,
    pub retries: u32,
    pub budget: f64,
    pub policy: &'static str,
    pub seed: u64,
    pub window_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    pub variant: &'static str,
    /// Requests arriving from `fail_at` on.
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Share of those that failed (after any retries).
    pub errors: f64,
    pub tries_per_request: f64,
    /// Retries the budget refused.
    pub budget_refused: u64,
    /// Tries reaching the healthy backends per second over what they can
    /// serve, from `fail_at` on.
    pub healthy_load: f64,
    /// Seconds backend 0 spent ejected.
    pub ejected_s: f64,
    /// p99 latency (ms) of the requests arriving in each window.
    pub p99_by_window: Vec<f64>,
    /// Load on the healthy backends in each window.
    pub healthy_load_by_window: Vec<f64>,
}

pub fn run(args: &OutliersArgs) -> Result<Report, SimError> {
    let result = simulate(args)?;
    Ok(Report {
        table: table(&result),
        json: json(&result),
        chart: chart(&result),
    })
}

pub fn simulate(args: &OutliersArgs) -> Result<OutliersResult, SimError> {
    if args.fail_at >= args.duration {
        return Err(SimError::Usage(format!(
            "need --fail-at < --duration (got {:?}, {:?})",
            args.fail_at, args.duration
        )));
    }
    let capacity = f64::from(args.workers) / args.service.as_secs_f64();
    let rate = args.load * capacity * f64::from(args.backends);
    if rate * args.duration.as_secs_f64() > MAX_REQUESTS {
        return Err(SimError::Usage(format!(
            "this run would simulate {:.0} requests per variant; at most {MAX_REQUESTS:.0}: \
             shorten --duration or lower --load or --workers",
            rate * args.duration.as_secs_f64()
        )));
    }
    let setup = Setup {
        backends: args.backends,
        workers: args.workers,
        service_ms: args.service.as_secs_f64() * 1e3,
        rate,
        load: args.load,
        fault: args.fault,
        slowdown: args.slowdown,
        error_share: args.error_share,
        fail_at_s: args.fail_at.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        timeout_s: args.timeout.as_secs_f64(),
        retries: args.retries,
        budget: args.budget,
        policy: args.policy.name(),
        seed: args.common.seed,
        window_s: WINDOW as f64 / 1e9,
    };
    let rows = variants()
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            seed_thread(random::mix(args.common.seed ^ random::mix(i as u64 + 301)));
            model::Sim::new(args, v, rate).run()
        })
        .collect();
    Ok(OutliersResult { setup, rows })
}

fn nanos(d: Duration) -> Nanos {
    d.as_nanos().min(u128::from(u64::MAX)) as Nanos
}

fn table(r: &OutliersResult) -> String {
    let s = &r.setup;
    let mut t = Table::new([
        "variant",
        "p50_ms",
        "p99_ms",
        "errors",
        "tries/req",
        "budget_refused",
        "healthy_load",
        "ejected_s",
    ]);
    for row in &r.rows {
        t.row([
            row.variant.to_string(),
            millis(row.p50_ms),
            millis(row.p99_ms),
            percent(row.errors),
            fixed(row.tries_per_request, 2),
            row.budget_refused.to_string(),
            format!("{}x", fixed(row.healthy_load, 2)),
            fixed(row.ejected_s, 1),
        ]);
    }
    let fault = match s.fault {
        Fault::Slow => format!("{}x slower", s.slowdown),
        Fault::Errors => format!("503 to {:.0}% of requests", s.error_share * 100.0),
    };
    format!(
        "outliers: {} backends x {} workers, {} ms mean service; {:.0} req/s = {:.0}% of the pool; \
         {} policy; seed {}\n\
         backend 0 {fault} from {}s to the end ({}s); timeout {}s; retries: up to {}, budget {:.0}%\n\
         errors: {} 5xx or {} gateway failures in a row; latency: median > {}x the others' over {}s; \
         ejected {}s x count, at most {}%\n\
         measured over the requests arriving from {}s on:\n{}",
        s.backends,
        s.workers,
        fixed(s.service_ms, 1),
        s.rate,
        s.load * 100.0,
        s.policy,
        s.seed,
        s.fail_at_s,
        s.duration_s,
        s.timeout_s,
        s.retries,
        s.budget * 100.0,
        ERRORS.consecutive_5xx,
        ERRORS.consecutive_gateway_failures,
        LATENCY.latency_factor,
        LATENCY.interval.as_secs_f64(),
        ERRORS.base_ejection.as_secs_f64(),
        ERRORS.max_ejected_percent,
        s.fail_at_s,
        t.render()
    )
}

fn chart(r: &OutliersResult) -> Chart {
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
    let fault = match s.fault {
        Fault::Slow => format!("{}x slow", s.slowdown),
        Fault::Errors => format!("503 to {:.0}%", s.error_share * 100.0),
    };
    Chart {
        title: format!(
            "Outliers ({}): backend 0 of {} {fault} from {}s, load {:.0}%",
            s.policy,
            s.backends,
            s.fail_at_s,
            s.load * 100.0
        ),
        panels: vec![
            Panel {
                title: "p99 latency of the requests arriving in each second".into(),
                x_label: "time (s)".into(),
                y_label: "p99 (ms)".into(),
                log_y: true,
                series: series(&|row| &row.p99_by_window),
                x_marks: vec![s.fail_at_s],
                ..Panel::default()
            },
            Panel {
                title: "Load on the healthy backends (1 = what they can serve)".into(),
                x_label: "time (s)".into(),
                y_label: "load".into(),
                series: series(&|row| &row.healthy_load_by_window),
                x_marks: vec![s.fail_at_s],
                y_marks: vec![1.0],
                ..Panel::default()
            },
        ],
    }
}
