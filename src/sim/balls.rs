//! Balls into bins, the experiment behind `p2c`: throw `m` balls into `n`
//! bins; each ball goes to the least loaded of `d` bins drawn uniformly at
//! random (with replacement; ties to the first drawn). With one choice the
//! fullest bin ends up near `ln n / ln ln n` (in practice higher at finite
//! n: 8–10 at n = 10⁶); with `d ≥ 2` it is `ln ln n / ln d + O(1)` — about 4
//! for two choices and 3 for three at n = 10⁶ (Azar, Broder, Karlin & Upfal
//! 1994; Mitzenmacher 1996). The step from one to two choices is the
//! exponential improvement; each further choice only divides by `ln d`.
//!
//! Pure arithmetic on a `Vec<u32>` of loads: no selector is involved, so a
//! million-ball trial takes milliseconds in a release build. Each (d, trial)
//! has its own random stream, so a row does not depend on which other
//! choice counts were asked for.

use rand::rngs::SmallRng;
use rand::RngCore;
use serde::Serialize;

use super::chart::{Chart, Panel, Series};
use super::output::{fixed, json, Table};
use super::stats::Spread;
use super::{random, BallsArgs, Report, SimError};

#[derive(Debug, Clone, Serialize)]
pub struct BallsResult {
    pub bins: u64,
    pub balls: u64,
    pub trials: u32,
    pub seed: u64,
    pub rows: Vec<Row>,
}

/// One choice count over all trials.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub choices: u32,
    /// The fullest bin's load: mean, min and max over the trials.
    pub max_load: Spread,
    /// `bins_at_least[k]`: mean number of bins holding at least `k` balls.
    pub bins_at_least: Vec<f64>,
}

pub fn run(args: &BallsArgs) -> Result<Report, SimError> {
    let result = simulate(args);
    Ok(Report {
        table: table(&result),
        json: json(&result),
        chart: chart(&result),
    })
}

pub fn simulate(args: &BallsArgs) -> BallsResult {
    let bins = args.bins.max(1);
    let balls = args.balls.unwrap_or(bins);
    let mut loads = vec![0u32; bins as usize];
    let rows = args
        .choices
        .iter()
        .map(|&d| {
            let mut maxima = Vec::with_capacity(args.trials as usize);
            let mut at_least: Vec<f64> = Vec::new();
            for trial in 0..args.trials {
                let mut rng =
                    random::stream(args.common.seed, (u64::from(d) << 32) | u64::from(trial));
                loads.fill(0);
                let max = throw(&mut loads, balls, d, &mut rng);
                maxima.push(f64::from(max));
                let mut hist = vec![0u64; max as usize + 1];
                for &l in &loads {
                    hist[l as usize] += 1;
                }
                // Tail sums: bins with load ≥ k.
                let mut tail = 0u64;
                let mut tails = vec![0u64; hist.len()];
                for k in (0..hist.len()).rev() {
                    tail += hist[k];
                    tails[k] = tail;
                }
                if at_least.len() < tails.len() {
                    at_least.resize(tails.len(), 0.0);
                }
                for (sum, t) in at_least.iter_mut().zip(&tails) {
                    *sum += *t as f64;
                }
            }
            let trials = f64::from(args.trials.max(1));
            at_least.iter_mut().for_each(|s| *s /= trials);
            Row {
                choices: d,
                max_load: Spread::of(&maxima),
                bins_at_least: at_least,
            }
        })
        .collect();
    BallsResult {
        bins,
        balls,
        trials: args.trials,
        seed: args.common.seed,
        rows,
    }
}

/// Throws `balls` balls into `loads` with `d` choices each; returns the
/// largest load.
fn throw(loads: &mut [u32], balls: u64, d: u32, rng: &mut SmallRng) -> u32 {
    let n = loads.len() as u64;
    // Lemire's multiply-shift: uniform in 0..n from one 64-bit draw, with a
    // bias below n / 2^64 (nothing at these sizes).
    let mut draw = || ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as usize;
    let mut max = 0;
    for _ in 0..balls {
        let mut best = draw();
        for _ in 1..d {
            let other = draw();
            if loads[other] < loads[best] {
                best = other;
            }
        }
        loads[best] += 1;
        max = max.max(loads[best]);
    }
    max
}

fn table(r: &BallsResult) -> String {
    let mut t = Table::new(["choices", "mean", "min", "max"]);
    for row in &r.rows {
        t.row([
            row.choices.to_string(),
            fixed(row.max_load.mean, 2),
            fixed(row.max_load.min, 0),
            fixed(row.max_load.max, 0),
        ]);
    }
    format!(
        "balls into bins: {} balls, {} bins, {} trials, seed {}; max load per choice count\n{}",
        r.balls,
        r.bins,
        r.trials,
        r.seed,
        t.render()
    )
}

fn chart(r: &BallsResult) -> Chart {
    let series = r
        .rows
        .iter()
        .map(|row| Series {
            name: format!("d = {} (max load {:.1})", row.choices, row.max_load.mean),
            points: row
                .bins_at_least
                .iter()
                .enumerate()
                .skip(1)
                .map(|(k, &n)| (k as f64, n))
                .collect(),
        })
        .collect();
    Chart {
        title: format!(
            "Balls into bins: {} balls, {} bins, mean of {} trials",
            r.balls, r.bins, r.trials
        ),
        panels: vec![Panel {
            title: "Bins holding at least k balls, by number of choices d".into(),
            x_label: "k (balls in a bin)".into(),
            y_label: "bins".into(),
            log_y: true,
            series,
            ..Panel::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Common;

    fn args(bins: u64, choices: Vec<u32>, trials: u32) -> BallsArgs {
        BallsArgs {
            bins,
            balls: None,
            choices,
            trials,
            common: Common {
                seed: 3,
                json: false,
                svg: None,
            },
        }
    }

    #[test]
    fn every_ball_lands_once() {
        let r = simulate(&args(1000, vec![1, 2], 2));
        for row in &r.rows {
            // Σ_k≥1 bins_at_least[k] is the number of balls.
            let balls: f64 = row.bins_at_least.iter().skip(1).sum();
            assert_eq!(balls, 1000.0);
            assert_eq!(row.bins_at_least[0], 1000.0);
        }
    }

    #[test]
    fn two_choices_beat_one_at_ten_thousand() {
        let r = simulate(&args(10_000, vec![1, 2, 3], 5));
        let max = |i: usize| r.rows[i].max_load;
        assert!((5.0..=9.0).contains(&max(0).mean), "{:?}", max(0));
        assert!((3.0..=4.0).contains(&max(1).mean), "{:?}", max(1));
        assert!((2.0..=3.0).contains(&max(2).mean), "{:?}", max(2));
    }

    #[test]
    fn a_row_does_not_depend_on_the_others() {
        let alone = simulate(&args(500, vec![2], 3));
        let among = simulate(&args(500, vec![1, 2, 3], 3));
        assert_eq!(alone.rows[0].max_load, among.rows[1].max_load);
    }
}
