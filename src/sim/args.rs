//! The `switchyard sim` command line: one subcommand per scenario, parsed
//! by clap in the binary and handed to [`super::run`]. Every option is
//! range-checked here, so a bad value is a clear usage error (exit 1) before
//! anything runs.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Balls into bins: the fullest bin when each ball goes to the least
    /// loaded of d random bins (the power of two choices).
    Balls(BallsArgs),
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
