//! The herd's orderings on short runs, and its usage errors.

use super::*;
use crate::config::Policy;
use crate::sim::Common;

/// A short outage under heavy load: 4 backends of 250 req/s, 95% busy.
fn args() -> HerdArgs {
    HerdArgs {
        backends: 4,
        load: 0.95,
        retries: 3,
        timeout: Duration::from_secs(1),
        fail_at: Duration::from_secs(2),
        recover_at: Duration::from_secs(12),
        duration: Duration::from_secs(20),
        open_for: Duration::from_secs(2),
        policy: Policy::P2c,
        workers: 5,
        service: Duration::from_millis(20),
        queue: 1000,
        common: Common {
            seed: 9,
            json: false,
            svg: None,
        },
    }
}

fn row<'a>(r: &'a HerdResult, name: &str) -> &'a VariantRow {
    r.rows.iter().find(|x| x.variant == name).expect(name)
}

#[test]
fn breakers_keep_the_survivors_out_of_the_cascade() {
    let r = simulate(&args()).expect("runs");
    let naive = row(&r, "naive");
    assert_eq!(naive.recovery_s, None, "{naive:?}");
    for v in ["breaker", "breaker+backoff+budget"] {
        let guarded = row(&r, v);
        assert!(guarded.success > naive.success, "{guarded:?} vs {naive:?}");
        assert!(guarded.peak_survivor_load < naive.peak_survivor_load);
    }
    assert!(row(&r, "breaker+backoff+budget").tries_per_request < 1.2);
}

#[test]
fn with_round_robin_a_light_outage_costs_nothing() {
    // The survivors carry everything; each lost try is retried elsewhere.
    let mut a = args();
    a.load = 0.3;
    a.policy = Policy::RoundRobin;
    let r = simulate(&a).expect("runs");
    for row in &r.rows {
        assert!(row.success > 0.99, "{row:?}");
        assert_eq!(row.recovery_s, Some(0.0), "{row:?}");
    }
}

#[test]
fn without_a_breaker_p2c_is_drawn_to_the_backend_that_fails_fast() {
    // Backend 0 refuses at once, so it never has a request in flight and
    // p2c prefers it whenever it is one of the two drawn (half the tries
    // with 4 backends): 1 request in 2^4 spends all its tries there.
    let mut a = args();
    a.load = 0.3;
    let r = simulate(&a).expect("runs");
    let naive = row(&r, "naive").success_in_outage;
    assert!((0.9..0.97).contains(&naive), "{naive}");
    assert!(row(&r, "breaker").success_in_outage > 0.99);
}

#[test]
fn the_timeline_must_be_in_order() {
    let mut a = args();
    a.recover_at = a.fail_at;
    assert!(matches!(simulate(&a), Err(SimError::Usage(_))));
}
