//! `switchyard sim`: offline, deterministic simulations of the balancing
//! and failure-handling code the proxy runs.
//!
//! | scenario | question | what it runs |
//! |---|---|---|
//! | [`balls`] | how full does the fullest bin get with d random choices? | pure balls-into-bins |
//! | [`policies`] | which policy keeps tail latency low when backends differ in speed? | the real selectors |
//! | [`herd`] | what do retries do to the survivors when a backend fails? | the real selector and circuit breaker |
//! | [`outliers`] | what ejects a gray (slow or flaky) backend, and what do retries cost? | the real selector, outlier detection and retry budget |
//!
//! The policies and herd scenarios are discrete-event simulations
//! ([`events`]) on simulated time: no clock, no sockets, no threads. They do
//! not re-implement balancing: [`pool::Pool`] builds each policy's Pingora
//! `LoadBalancer` exactly as the proxy does, holds an in-flight guard of the
//! proxy's load table for every simulated request in flight (which is what
//! `least_conn` and `p2c` read), and drives the proxy's circuit breakers with
//! simulated instants. The selectors' own random source is reseeded per run
//! ([`crate::upstream::selection::seed_thread`]).
//!
//! Determinism: every draw comes from `--seed` ([`random`]); events at the
//! same instant run in the order they were scheduled; output is formatted
//! from the result alone. The same seed prints the same bytes and draws the
//! same SVG.
//!
//! Output ([`output`]): a plain-text table, or JSON with `--json`; with
//! `--svg FILE` also a chart ([`chart`]). Bad option values are usage errors
//! (exit 1), a chart that cannot be written is a runtime failure (exit 2).

mod args;
pub mod balls;
pub mod chart;
pub mod events;
pub mod herd;
pub mod outliers;
pub mod output;
pub mod policies;
pub mod pool;
pub mod random;
pub mod stats;

pub use args::{BallsArgs, Common, Fault, HerdArgs, OutliersArgs, PoliciesArgs, Scenario};

use std::path::PathBuf;

use chart::Chart;

/// Why a simulation did not run or its chart was not written.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Options that are each valid but do not fit together.
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw the chart for {}: {message}", path.display())]
    Chart { path: PathBuf, message: String },
}

impl SimError {
    /// 1 for a usage error, 2 for a runtime failure (as the SPEC's exit codes).
    pub fn exit_code(&self) -> u8 {
        match self {
            SimError::Usage(_) => 1,
            SimError::Write { .. } | SimError::Chart { .. } => 2,
        }
    }
}

/// What a scenario produced, ready to print or draw.
pub struct Report {
    pub table: String,
    pub json: String,
    pub chart: Chart,
}

/// Runs `scenario`, writes its chart if `--svg` asked for one, and returns
/// the text to print (the table, or JSON with `--json`).
pub fn run(scenario: &Scenario) -> Result<String, SimError> {
    let (common, report) = match scenario {
        Scenario::Balls(a) => (&a.common, balls::run(a)?),
        Scenario::Policies(a) => (&a.common, policies::run(a)?),
        Scenario::Herd(a) => (&a.common, herd::run(a)?),
        Scenario::Outliers(a) => (&a.common, outliers::run(a)?),
    };
    if let Some(path) = &common.svg {
        report.chart.write(path)?;
    }
    Ok(if common.json {
        report.json
    } else {
        report.table
    })
}
