//! Summaries of simulated measurements: percentiles, min/mean/max, and
//! counts per time window for the charts.

use super::events::{to_secs, Nanos};

/// The `p`-th quantile (0 < p ≤ 1) of `sorted` by nearest rank: the smallest
/// value with at least `p` of the values at or below it. 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorts in place (NaNs last) and returns the slice, for [`percentile`].
pub fn sorted(values: &mut [f64]) -> &[f64] {
    values.sort_by(f64::total_cmp);
    values
}

/// Mean, min and max of a sample.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// All zero for an empty sample.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self {
                mean: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        let sum: f64 = values.iter().sum();
        Self {
            mean: sum / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// Event counts per fixed-width window of simulated time.
#[derive(Debug, Clone)]
pub struct Windows {
    width: Nanos,
    counts: Vec<u64>,
}

impl Windows {
    /// Windows of `width` (at least 1 ns) covering `0..span`; later events
    /// grow the series.
    pub fn new(width: Nanos, span: Nanos) -> Self {
        let width = width.max(1);
        Self {
            width,
            counts: vec![0; span.div_ceil(width) as usize],
        }
    }

    pub fn add(&mut self, at: Nanos) {
        let i = (at / self.width) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    pub fn width(&self) -> Nanos {
        self.width
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn count(&self, i: usize) -> u64 {
        self.counts.get(i).copied().unwrap_or(0)
    }

    /// Events per second in window `i`.
    pub fn rate(&self, i: usize) -> f64 {
        self.count(i) as f64 / to_secs(self.width)
    }

    /// Start of window `i`, in seconds.
    pub fn start_secs(&self, i: usize) -> f64 {
        to_secs(self.width * i as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = sorted(&mut v);
        assert_eq!(percentile(s, 0.5), 50.0);
        assert_eq!(percentile(s, 0.99), 99.0);
        assert_eq!(percentile(s, 0.999), 100.0);
        assert_eq!(percentile(s, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[3.0], 0.001), 3.0);
    }

    #[test]
    fn spread_of_a_sample() {
        let s = Spread::of(&[2.0, 4.0, 9.0]);
        assert_eq!((s.mean, s.min, s.max), (5.0, 2.0, 9.0));
        assert_eq!(Spread::of(&[]).max, 0.0);
    }

    #[test]
    fn windows_count_and_grow() {
        let mut w = Windows::new(500, 1000);
        assert_eq!(w.len(), 2);
        w.add(0);
        w.add(499);
        w.add(1700);
        assert_eq!((w.count(0), w.count(1), w.count(3)), (2, 0, 1));
        assert_eq!(w.len(), 4);
        assert_eq!(w.rate(0), 2.0 / 500e-9);
    }
}
