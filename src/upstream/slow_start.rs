//! Slow start: a backend that comes back up gets a share of its normal
//! traffic that ramps linearly from 10% to 100% over the `slow_start`
//! window (HAProxy's `slowstart`, NGINX Plus's `slow_start`).
//!
//! It is applied in `Upstream::select`'s one `accept` path: while ramping, a
//! backend the policy offers is taken with probability [`share`], otherwise
//! the policy's next candidate is used. That thins the backend's share for every policy
//! that spreads load (round robin, weighted, least_conn, p2c, random).
//! `consistent_hash` is exempt: turning keys away would move them back and
//! forth, which is worse than a cold cache for one window.

use std::time::Duration;

/// The share of normal traffic (0.1 ..= 1.0) for a backend that has been
/// back up for `up_for`, under a ramp of `window`. `None` (never went down)
/// and a zero window mean full share.
pub fn share(up_for: Option<Duration>, window: Duration) -> f64 {
    match up_for {
        Some(up) if !window.is_zero() && up < window => {
            0.1 + 0.9 * (up.as_secs_f64() / window.as_secs_f64())
        }
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_from_ten_percent_to_full() {
        let w = Duration::from_secs(10);
        assert_eq!(share(None, w), 1.0);
        assert!((share(Some(Duration::ZERO), w) - 0.1).abs() < 1e-9);
        assert!((share(Some(Duration::from_secs(5)), w) - 0.55).abs() < 1e-9);
        assert_eq!(share(Some(Duration::from_secs(10)), w), 1.0);
        assert_eq!(share(Some(Duration::from_secs(99)), w), 1.0);
        assert_eq!(share(Some(Duration::ZERO), Duration::ZERO), 1.0);
    }
}
