//! The `switchyard sim` command line: one subcommand per scenario, parsed
//! by clap in the binary and handed to [`super::run`]. Every option is
//! range-checked here, so a bad value is a clear usage error (exit 1) before
//! anything runs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::config::{parse_duration, Policy};

#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Balls into bins: the fullest bin when each ball goes to the least
    /// loaded of d random bins (the power of two choices).
    Balls(BallsArgs),
    /// The same heterogeneous backends under each balancing policy: latency
    /// percentiles, longest queue and load spread, side by side.
    Policies(PoliciesArgs),
    /// A backend fails and recovers while clients retry: naive retries,
    /// jittered backoff, circuit breakers, and breakers with a retry budget.
    Herd(HerdArgs),
    /// A gray failure (one backend slow, or failing a share of requests)
    /// under no ejection, error ejection, latency ejection, retries, and
    /// retries with a budget: p50/p99, errors and load on the healthy ones.
    Outliers(OutliersArgs),
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Seed of every random draw: the same seed prints the same bytes.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also draw the result as an SVG chart into FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BallsArgs {
    /// Number of bins.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub bins: u64,
    /// Number of balls [default: as many as bins].
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub balls: Option<u64>,
    /// Choice counts to compare, comma-separated: each ball goes to the least
    /// loaded of this many bins drawn uniformly (with replacement).
    #[arg(long, value_name = "D,..", value_delimiter = ',', default_value = "1,2,3", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub choices: Vec<u32>,
    /// Independent runs per choice count.
    #[arg(long, value_name = "T", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub trials: u32,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct PoliciesArgs {
    /// Backends behind the balancer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub backends: u32,
    /// Requests per second arriving at the balancer (Poisson arrivals).
    #[arg(long, default_value = "1000", value_parser = positive)]
    pub rate: f64,
    /// Requests to simulate.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=20_000_000))]
    pub requests: u64,
    /// How many times slower the slow backends serve a request.
    #[arg(long, default_value = "4", value_parser = at_least_one)]
    pub skew: f64,
    /// How many backends are slow [default: a fifth of them, at least one].
    #[arg(long)]
    pub slow: Option<u32>,
    /// How many times slower the last backend serves by the end of the run;
    /// it starts at full speed and slows down linearly.
    #[arg(long, default_value = "10", value_parser = at_least_one)]
    pub degrade: f64,
    /// Requests a backend serves at once; more wait in its FIFO queue.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers: u32,
    /// Mean service time of a full-speed backend (exponentially distributed).
    #[arg(long, default_value = "20ms", value_parser = positive_duration)]
    pub service: Duration,
    /// Policies to compare, comma-separated [default: all six].
    #[arg(long, value_delimiter = ',', value_parser = policy)]
    pub policies: Vec<Policy>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct HerdArgs {
    /// Backends behind the balancer; backend 0 is the one that fails.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub backends: u32,
    /// Fresh requests per second, as a share of the whole pool's capacity.
    #[arg(long, default_value = "0.85", value_parser = load_share)]
    pub load: f64,
    /// Retries a client makes after a failed try (timeout, 503, refused).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,
    /// A client gives up on a try after this long (the proxy's read_timeout
    /// too: the breaker counts it as a failure).
    #[arg(long, default_value = "1s", value_parser = positive_duration)]
    pub timeout: Duration,
    /// When backend 0 goes down (refusing connections).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub fail_at: Duration,
    /// When backend 0 comes back.
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub recover_at: Duration,
    /// How long fresh requests keep arriving; the run then drains.
    #[arg(long, default_value = "60s", value_parser = positive_duration)]
    pub duration: Duration,
    /// How long a tripped breaker stays open before it lets a probe through
    /// (breaker variants).
    #[arg(long, default_value = "2s", value_parser = positive_duration)]
    pub open_for: Duration,
    /// Balancing policy (a real selector). p2c by default: with
    /// round_robin, breakers flap long after the outage (docs/simulator.md).
    #[arg(long, default_value = "p2c", value_parser = policy)]
    pub policy: Policy,
    /// Requests a backend serves at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers: u32,
    /// Mean service time (exponentially distributed).
    #[arg(long, default_value = "20ms", value_parser = positive_duration)]
    pub service: Duration,
    /// Requests a backend holds waiting; beyond that it answers 503 at once.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub queue: u32,
    #[command(flatten)]
    pub common: Common,
}

/// What goes wrong with backend 0 in `sim outliers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Serves `--slowdown` times slower.
    Slow,
    /// Answers 503 to `--error-share` of its requests.
    Errors,
}

#[derive(Debug, Clone, Args)]
pub struct OutliersArgs {
    /// Backends behind the balancer; backend 0 is the one that goes gray.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(3..=100))]
    pub backends: u32,
    /// Requests per second, as a share of the whole pool's capacity.
    #[arg(long, default_value = "0.6", value_parser = load_share)]
    pub load: f64,
    /// What goes wrong with backend 0.
    #[arg(long, value_enum, default_value_t = Fault::Slow)]
    pub fault: Fault,
    /// How many times slower backend 0 serves (`--fault slow`).
    #[arg(long, default_value = "10", value_parser = at_least_one)]
    pub slowdown: f64,
    /// Share of backend 0's answers that are 503 (`--fault errors`).
    #[arg(long, default_value = "0.5", value_parser = share)]
    pub error_share: f64,
    /// When backend 0 goes gray (it stays so to the end).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub fail_at: Duration,
    /// How long requests keep arriving; the run then drains.
    #[arg(long, default_value = "40s", value_parser = positive_duration)]
    pub duration: Duration,
    /// The proxy gives up on a try after this long (read_timeout): 504.
    #[arg(long, default_value = "1s", value_parser = positive_duration)]
    pub timeout: Duration,
    /// Further tries on other backends after a 503 or a timeout (retry variants).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub retries: u32,
    /// Retry budget ratio of the `retries+budget` variant (0.2 = 20%).
    #[arg(long, default_value = "0.2", value_parser = share)]
    pub budget: f64,
    /// Balancing policy (a real selector).
    #[arg(long, default_value = "round_robin", value_parser = policy)]
    pub policy: Policy,
    /// Requests a backend serves at once; more wait in its FIFO queue.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers: u32,
    /// Mean service time of a healthy backend (exponentially distributed).
    #[arg(long, default_value = "10ms", value_parser = positive_duration)]
    pub service: Duration,
    #[command(flatten)]
    pub common: Common,
}

fn share(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!(
            "{x} is out of range: give a share from 0 to 1 (0.5 = 50%)"
        ))
    }
}

fn number(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a number"))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("\"{s}\" is not a finite number"))
    }
}

fn positive(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x > 0.0 && x <= 1e9 {
        Ok(x)
    } else {
        Err(format!(
            "{x} is out of range: give a number above 0 (at most 1e9)"
        ))
    }
}

fn at_least_one(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if (1.0..=1000.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!(
            "{x} is out of range: give a factor from 1 (full speed) to 1000"
        ))
    }
}

fn load_share(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x > 0.0 && x <= 10.0 {
        Ok(x)
    } else {
        Err(format!(
            "{x} is out of range: give a share of capacity above 0, at most 10 (0.85 = 85%)"
        ))
    }
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        Err(format!("\"{s}\" must be longer than 0"))
    } else {
        Ok(d)
    }
}

fn policy(s: &str) -> Result<Policy, String> {
    Policy::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = Policy::ALL.iter().map(|p| p.name()).collect();
        format!("unknown policy \"{s}\"; valid: {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_explained() {
        assert!(positive("0").unwrap_err().contains("above 0"));
        assert!(positive("abc").unwrap_err().contains("not a number"));
        assert!(positive("inf").unwrap_err().contains("finite"));
        assert!(at_least_one("0.5").is_err());
        assert!(load_share("11").is_err());
        assert!(positive_duration("0").is_err());
        assert!(positive_duration("5").unwrap_err().contains("no unit"));
        assert!(policy("fastest").unwrap_err().contains("least_conn"));
        assert_eq!(policy("p2c"), Ok(Policy::P2c));
    }
}
