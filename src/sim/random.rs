//! Seeded randomness for the simulations.
//!
//! Every random stream is a `SmallRng` (xoshiro256++: fast, not
//! cryptographic) seeded from `--seed` and a stream number, so two streams
//! never share draws and adding a draw to one does not shift another: the
//! workload a scenario generates is the same whatever policy or variant then
//! consumes it.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The generator for stream `stream` of run `seed`.
pub fn stream(seed: u64, stream: u64) -> SmallRng {
    SmallRng::seed_from_u64(mix(seed ^ mix(stream.wrapping_add(0x5851_f42d_4c95_7f2d))))
}

/// SplitMix64's finaliser: spreads nearby inputs (seed 1, 2, 3…) far apart.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An exponentially distributed draw with mean `mean`.
pub fn exponential(rng: &mut SmallRng, mean: f64) -> f64 {
    // gen() is in [0, 1), so 1 - u is in (0, 1] and the log is finite.
    -mean * (1.0 - rng.gen::<f64>()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_repeat_and_differ() {
        let draw = |seed, s| stream(seed, s).gen::<u64>();
        assert_eq!(draw(1, 0), draw(1, 0));
        assert_ne!(draw(1, 0), draw(1, 1));
        assert_ne!(draw(1, 0), draw(2, 0));
    }

    #[test]
    fn exponential_has_its_mean() {
        let mut rng = stream(7, 0);
        let n = 100_000;
        let mean = (0..n).map(|_| exponential(&mut rng, 2.0)).sum::<f64>() / n as f64;
        assert!((1.95..2.05).contains(&mean), "{mean}");
    }
}
