//! A latency histogram cheap enough for every request: log-scale buckets of
//! microseconds, eight per power of two (each bucket at most 1/8 of its
//! lower bound wide), so recording is one index computation and one atomic
//! add, and a median read from it is within about 6% of the true one.
//!
//! Values below 16 µs have a bucket each; from 16 µs on, bucket
//! `16 + 8 × (e − 4) + m` holds `[(8 + m) × 2^(e−3), (9 + m) × 2^(e−3))`
//! for the value's top bit `e` and its next three bits `m`. Values from
//! 2^32 µs (71 minutes) on share the last bucket.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Buckets in a sketch.
pub const BUCKETS: usize = 16 + 8 * (32 - 4);

/// The most microseconds told apart; larger values count as this.
const MAX_MICROS: u64 = (1 << 32) - 1;

/// Bucket counts, as read (and cleared) from a [`Sketch`].
pub type Counts = [u32; BUCKETS];

/// One backend's latencies over one interval. `Sync`: recorders on many
/// threads, one reader that takes the counts at the interval's end.
pub struct Sketch {
    buckets: [AtomicU32; BUCKETS],
}

impl Default for Sketch {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

impl Sketch {
    /// Counts one latency.
    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.buckets[bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far, leaving the sketch empty. A latency recorded by
    /// another thread meanwhile lands in this read or in the next one.
    pub fn take(&self) -> Counts {
        std::array::from_fn(|i| self.buckets[i].swap(0, Ordering::Relaxed))
    }
}

/// The bucket of a latency of `micros` µs.
pub fn bucket(micros: u64) -> usize {
    let v = micros.min(MAX_MICROS);
    if v < 16 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize; // 4..=31
    let m = ((v >> (e - 3)) & 7) as usize;
    16 + 8 * (e - 4) + m
}

/// The middle of bucket `i`, in µs: what a count there stands for.
pub fn middle(i: usize) -> f64 {
    if i < 16 {
        return i as f64 + 0.5;
    }
    let e = (i - 16) / 8 + 4;
    let m = ((i - 16) % 8) as u64;
    let width = 1u64 << (e - 3);
    ((8 + m) * width) as f64 + width as f64 / 2.0
}

/// How many latencies `counts` holds.
pub fn total(counts: &Counts) -> u64 {
    counts.iter().map(|&c| u64::from(c)).sum()
}

/// The median of `counts` in µs (the lower median of an even count), as
/// its bucket's middle; `None` when empty.
pub fn median(counts: &Counts) -> Option<f64> {
    let n = total(counts);
    if n == 0 {
        return None;
    }
    let rank = n.div_ceil(2);
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += u64::from(c);
        if seen >= rank {
            return Some(middle(i));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_narrow() {
        let mut last = 0;
        for v in 0..200_000u64 {
            let b = bucket(v);
            assert!(b == last || b == last + 1, "{v}: {last} -> {b}");
            last = b;
            let mid = middle(b);
            assert!(
                (mid - v as f64).abs() <= (v as f64 / 16.0).max(0.5) + 1e-9,
                "{v} ~ {mid}"
            );
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket(MAX_MICROS), BUCKETS - 1);
    }

    #[test]
    fn median_of_recorded_latencies() {
        let s = Sketch::default();
        for ms in [1, 2, 3, 100, 100] {
            s.record(Duration::from_millis(ms));
        }
        let counts = s.take();
        assert_eq!(total(&counts), 5);
        let m = median(&counts).unwrap();
        assert!((2800.0..=3200.0).contains(&m), "{m}");
        assert_eq!(total(&s.take()), 0, "take empties the sketch");
        assert_eq!(median(&[0; BUCKETS]), None);
    }
}
