use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn at(base: Instant, ms: u64) -> Instant {
    base + Duration::from_millis(ms)
}

#[test]
fn floor_allows_thirty_retries_in_a_window_without_traffic() {
    let budget = RetryBudget::new(0.0);
    let base = Instant::now();
    budget.record_request(base);
    let allowed = (0..100).filter(|_| budget.try_retry(base)).count();
    assert_eq!(allowed as u64, FLOOR);
    // Still inside the window: nothing more.
    assert!(!budget.try_retry(at(base, 9_999)));
    // The second those retries were counted in has left the window.
    assert!(budget.try_retry(at(base, 10_000)));
}

#[test]
fn ratio_adds_a_share_of_first_tries() {
    let budget = RetryBudget::new(0.2);
    let base = Instant::now();
    for _ in 0..1000 {
        budget.record_request(base);
    }
    let allowed = (0..1000).filter(|_| budget.try_retry(base)).count();
    assert_eq!(allowed, 200 + 30);
}

#[test]
fn window_slides_by_whole_seconds() {
    let budget = RetryBudget::new(0.0);
    let base = Instant::now();
    budget.record_request(base);
    for s in 0..10u64 {
        // 3 a second spreads the floor over the window.
        for _ in 0..3 {
            assert!(budget.try_retry(at(base, s * 1000 + 500)), "second {s}");
        }
    }
    assert!(!budget.try_retry(at(base, 9_900)));
    // Second 0's three leave the window at 10 s: three more fit, not four.
    let later = at(base, 10_100);
    assert_eq!((0..10).filter(|_| budget.try_retry(later)).count(), 3);
}

#[test]
fn a_long_pause_forgets_everything() {
    let budget = RetryBudget::new(0.0);
    let base = Instant::now();
    for _ in 0..30 {
        assert!(budget.try_retry(base));
    }
    assert!(!budget.try_retry(base));
    assert!(budget.try_retry(at(base, 3_600_000)));
}

#[test]
fn an_instant_before_the_first_counts_as_second_zero() {
    let budget = RetryBudget::new(0.0);
    let base = Instant::now() + Duration::from_secs(5);
    budget.record_request(base);
    for _ in 0..30 {
        assert!(budget.try_retry(base - Duration::from_secs(1)));
    }
    assert!(!budget.try_retry(base));
}

#[test]
fn odd_ratios_do_not_panic() {
    let base = Instant::now();
    for ratio in [f64::NAN, -1.0, f64::INFINITY, 1e300] {
        let budget = RetryBudget::new(ratio);
        budget.record_request(base);
        assert!(budget.try_retry(base));
    }
}

#[test]
fn counts_saturate_instead_of_wrapping() {
    let b = Bucket {
        sec: 7,
        firsts: COUNT_MAX + 5,
        retries: 3,
    };
    assert_eq!(
        Bucket::unpack(b.pack()),
        Bucket {
            sec: 7,
            firsts: COUNT_MAX,
            retries: 3
        }
    );
}

/// One step of a random sequence: time moves on by `advance_ms`, then a
/// first try or a retry.
#[derive(Debug, Clone)]
struct Step {
    advance_ms: u64,
    retry: bool,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        prop_oneof![3 => 0u64..5, 1 => 0u64..1500, 1 => 0u64..12_000],
        any::<bool>(),
    )
        .prop_map(|(advance_ms, retry)| Step { advance_ms, retry });
    proptest::collection::vec(step, 1..600)
}

/// Second-stamped events, as the reference model counts them.
#[derive(Default)]
struct Model {
    firsts: Vec<u64>,
    retries: Vec<u64>,
}

fn in_window(events: &[u64], from: u64, to: u64) -> u64 {
    events.iter().filter(|&&s| s >= from && s <= to).count() as u64
}

impl Model {
    fn allows(&self, ratio: f64, sec: u64) -> bool {
        let from = sec.saturating_sub(WINDOW_SECS - 1);
        let f = in_window(&self.firsts, from, sec);
        let r = in_window(&self.retries, from, sec);
        (r + 1) as f64 <= ratio * f as f64 + FLOOR as f64
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The budget decides as a plain list of second-stamped events would,
    /// and retries in any 10 s (bucket-aligned) window never exceed the
    /// ratio times the first tries of that window and the 9 s before it
    /// (the window each admission looked at), plus the floor; at ratio 0,
    /// never more than the floor in any 10 s.
    #[test]
    fn admits_within_the_budget(ratio_pct in 0u32..=100, steps in steps()) {
        let ratio = f64::from(ratio_pct) / 100.0;
        let budget = RetryBudget::new(ratio);
        let base = Instant::now();
        let mut ms = 0u64;
        let mut model = Model::default();
        for (i, step) in steps.iter().enumerate() {
            if i > 0 {
                ms += step.advance_ms;
            }
            let sec = ms / 1000;
            let now = at(base, ms);
            if step.retry {
                let expect = model.allows(ratio, sec);
                prop_assert_eq!(budget.try_retry(now), expect, "step {} at {} ms", i, ms);
                if expect {
                    model.retries.push(sec);
                }
            } else {
                budget.record_request(now);
                model.firsts.push(sec);
            }
        }
        let last = ms / 1000;
        for k in 0..=last {
            let r = in_window(&model.retries, k, k + WINDOW_SECS - 1);
            let f = in_window(&model.firsts, k.saturating_sub(WINDOW_SECS - 1), k + WINDOW_SECS - 1);
            prop_assert!(r as f64 <= ratio * f as f64 + FLOOR as f64, "window from {}", k);
            if ratio_pct == 0 {
                prop_assert!(r <= FLOOR);
            }
        }
    }
}
