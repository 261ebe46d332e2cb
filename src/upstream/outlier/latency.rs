//! The latency detector: at the end of an interval, which backends were
//! slower than `latency_factor` × the others?
//!
//! A pure function of the interval's [`Counts`] per backend. Only backends
//! with at least [`MIN_REQUESTS`] latencies take part, and only when at
//! least [`MIN_BACKENDS`] do: fewer samples say more about chance than about
//! the backend. Each one's median is compared with the median of the other
//! participants' latencies pooled (one histogram, so a backend that served
//! more weighs more, as it does for the clients). Cost: O(backends ×
//! buckets), once per interval.

use super::sketch::{median, total, Counts, BUCKETS};

/// Latencies a backend needs in an interval to be judged, or to be part of
/// what the others are judged against.
pub const MIN_REQUESTS: u64 = 20;
/// Backends with enough latencies needed for any judgement.
pub const MIN_BACKENDS: usize = 3;

/// A backend found slow: its index, its median and the others' (µs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slow {
    pub index: usize,
    pub median_us: f64,
    pub others_us: f64,
}

impl Slow {
    /// How many times slower than the others.
    pub fn ratio(&self) -> f64 {
        self.median_us / self.others_us
    }
}

/// The backends among `intervals` (one entry per backend; `None` for one
/// that does not take part, e.g. already ejected) whose median is above
/// `factor` × the others' median, slowest first.
pub fn slow_backends(intervals: &[Option<Counts>], factor: f64) -> Vec<Slow> {
    let judged: Vec<(usize, &Counts)> = intervals
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
        .filter(|(_, c)| total(c) >= MIN_REQUESTS)
        .collect();
    if judged.len() < MIN_BACKENDS || factor <= 0.0 {
        return Vec::new();
    }
    let mut pooled = [0u32; BUCKETS];
    for (_, counts) in &judged {
        for (p, c) in pooled.iter_mut().zip(counts.iter()) {
            *p = p.saturating_add(*c);
        }
    }
    let mut slow: Vec<Slow> = judged
        .iter()
        .filter_map(|&(index, counts)| {
            let mut others = pooled;
            for (o, c) in others.iter_mut().zip(counts.iter()) {
                *o -= *c;
            }
            let median_us = median(counts)?;
            let others_us = median(&others)?;
            (median_us > factor * others_us).then_some(Slow {
                index,
                median_us,
                others_us,
            })
        })
        .collect();
    slow.sort_by(|a, b| b.ratio().total_cmp(&a.ratio()));
    slow
}

#[cfg(test)]
mod tests {
    use super::super::sketch::bucket;
    use super::*;
    use proptest::prelude::*;

    /// `n` latencies spread ±20% around `us`.
    fn around(us: f64, n: u32) -> Counts {
        let mut c = [0; BUCKETS];
        for k in 0..n {
            let spread = 0.8 + 0.4 * f64::from(k) / f64::from(n.max(1));
            c[bucket((us * spread) as u64)] += 1;
        }
        c
    }

    #[test]
    fn a_ten_times_slower_backend_is_found() {
        let all = [
            Some(around(1000.0, 50)),
            Some(around(10_000.0, 50)),
            Some(around(1100.0, 50)),
        ];
        let slow = slow_backends(&all, 3.0);
        assert_eq!(slow.len(), 1);
        assert_eq!(slow[0].index, 1);
        assert!(slow[0].ratio() > 7.0, "{:?}", slow[0]);
    }

    #[test]
    fn too_few_requests_or_backends_judge_nothing() {
        let few = [
            Some(around(1000.0, 50)),
            Some(around(10_000.0, 19)),
            Some(around(1000.0, 50)),
        ];
        assert!(slow_backends(&few, 3.0).is_empty(), "19 latencies");
        let two = [Some(around(1000.0, 50)), Some(around(10_000.0, 50)), None];
        assert!(slow_backends(&two, 3.0).is_empty(), "two backends");
        let off = [
            Some(around(1000.0, 50)),
            Some(around(10_000.0, 50)),
            Some(around(1000.0, 50)),
        ];
        assert!(slow_backends(&off, 0.0).is_empty(), "factor 0 is off");
    }

    #[test]
    fn slowest_first() {
        let all = [
            Some(around(1000.0, 100)),
            Some(around(5000.0, 100)),
            Some(around(1000.0, 100)),
            Some(around(20_000.0, 100)),
            Some(around(1000.0, 100)),
        ];
        let order: Vec<usize> = slow_backends(&all, 3.0).iter().map(|s| s.index).collect();
        assert_eq!(order, [3, 1]);
    }

    proptest! {
        /// One backend k× slower than `n - 1` equal others is found iff k is
        /// above the factor, outside the sketch's resolution (±15% here, as
        /// each median is within about 6% of its true value).
        #[test]
        fn found_iff_slower_than_the_factor(
            n in 3usize..12,
            base in 50.0f64..50_000.0,
            factor in 1.5f64..10.0,
            k in 1.0f64..30.0,
            samples in 20u32..200,
            which in 0usize..12,
        ) {
            let which = which % n;
            prop_assume!(k > factor * 1.15 || k < factor / 1.15);
            let all: Vec<Option<Counts>> = (0..n)
                .map(|i| Some(around(if i == which { base * k } else { base }, samples)))
                .collect();
            let slow = slow_backends(&all, factor);
            if k > factor * 1.15 {
                prop_assert_eq!(slow.len(), 1);
                prop_assert_eq!(slow[0].index, which);
            } else {
                prop_assert!(slow.is_empty(), "{:?}", slow);
            }
        }

        /// Whatever the latencies, a backend below the sample floor is never
        /// named, and nothing is named with fewer than three judged.
        #[test]
        fn only_judged_backends_are_named(
            spec in proptest::collection::vec((1.0f64..100_000.0, 0u32..60), 0..8),
            factor in 1.1f64..10.0,
        ) {
            let all: Vec<Option<Counts>> = spec.iter().map(|&(us, n)| Some(around(us, n))).collect();
            let judged = spec.iter().filter(|&&(_, n)| u64::from(n) >= MIN_REQUESTS).count();
            let slow = slow_backends(&all, factor);
            if judged < MIN_BACKENDS {
                prop_assert!(slow.is_empty());
            }
            for s in &slow {
                prop_assert!(u64::from(spec[s.index].1) >= MIN_REQUESTS);
                prop_assert!(s.median_us > factor * s.others_us);
            }
        }
    }
}
