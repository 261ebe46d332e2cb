//! A cheap per-thread random source for the random and p2c policies (and
//! request ids, [`crate::policy::request_id`]).
//!
//! wyrand (Wang Yi's 64-bit generator, as in `fastrand`): one add and one
//! 64×64→128 multiply per number, state in a thread-local, seeded once per
//! thread from `rand`'s OS-seeded generator. Not cryptographic, and it need
//! not be: it only spreads load. A range is mapped with Lemire's
//! multiply-shift, which has no modulo bias worth measuring at our sizes.
//!
//! The proxy never seeds it by hand. [`seed_thread`] exists for the offline
//! simulator (`switchyard sim`), which drives the real selectors on one
//! thread and needs the same picks for the same `--seed`.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(rand::random());
}

/// Restarts this thread's generator from `seed`, so the random and p2c
/// picks made on this thread from now on are reproducible. For the
/// simulator only; the proxy's threads keep their OS-seeded state.
pub fn seed_thread(seed: u64) {
    STATE.with(|s| s.set(seed));
}

/// The next 64 random bits.
pub(crate) fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// Uniform in `0..n`; 0 when `n` is 0.
pub fn below(n: usize) -> usize {
    ((u128::from(next_u64()) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_range_and_covers_it() {
        let mut hits = [0u32; 7];
        for _ in 0..70_000 {
            hits[below(7)] += 1;
        }
        // Expected 10 000 each; 5 sigma is about 450.
        assert!(
            hits.iter().all(|&h| (9_000..11_000).contains(&h)),
            "{hits:?}"
        );
        assert_eq!(below(0), 0);
        assert_eq!(below(1), 0);
    }

    #[test]
    fn a_seeded_thread_repeats_its_draws() {
        seed_thread(42);
        let first: Vec<usize> = (0..20).map(|_| below(1000)).collect();
        seed_thread(42);
        let again: Vec<usize> = (0..20).map(|_| below(1000)).collect();
        assert_eq!(first, again);
    }
}
