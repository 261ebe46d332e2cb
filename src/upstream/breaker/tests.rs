//! Every transition of the breaker, driven by injected instants.

use super::*;

const S: Outcome = Outcome::Success;
const F: Outcome = Outcome::Failure;

fn cfg(consecutive: u32, rate: f64, min_requests: u32, half_open: u32) -> CircuitBreaker {
    CircuitBreaker {
        consecutive_failures: consecutive,
        failure_rate: rate,
        min_requests,
        window: Duration::from_secs(10),
        open_for: Duration::from_secs(10),
        half_open_requests: half_open,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Admits one request at `now` and reports `outcome` for it.
fn run(b: &mut Breaker, now: Instant, outcome: Outcome) {
    let permit = b.try_acquire(now).expect("admitted");
    b.record(now, permit, outcome);
}

/// A breaker tripped at `t0`; it turns half-open at `t0 + 10s`.
fn tripped(half_open: u32) -> (Breaker, Instant) {
    let mut b = Breaker::new(&cfg(1, 0.5, 20, half_open));
    let t0 = Instant::now();
    run(&mut b, t0, F);
    assert_eq!(b.state(t0), State::Open);
    (b, t0)
}

#[test]
fn trips_after_consecutive_failures() {
    let mut b = Breaker::new(&cfg(3, 1.0, 1000, 1));
    let t0 = Instant::now();
    run(&mut b, t0, F);
    run(&mut b, t0, F);
    run(&mut b, t0, S); // a success breaks the run
    run(&mut b, t0, F);
    run(&mut b, t0, F);
    assert_eq!(b.state(t0), State::Closed);
    run(&mut b, t0, F);
    assert_eq!(b.state(t0), State::Open);
}

#[test]
fn trips_on_failure_rate_once_min_requests_seen() {
    let mut b = Breaker::new(&cfg(1000, 0.5, 10, 1));
    let t0 = Instant::now();
    for i in 0..9 {
        run(
            &mut b,
            t0 + secs(i as f64 * 0.1),
            if i % 2 == 0 { S } else { F },
        );
    }
    assert_eq!(b.state(t0 + secs(1.0)), State::Closed, "4 of 9 failed");
    run(&mut b, t0 + secs(1.0), F); // 5 of 10
    assert_eq!(b.state(t0 + secs(1.0)), State::Open);
}

#[test]
fn rate_compares_exactly() {
    // 0.3 × 10 is 3.0000000000000004 in floating point; 3 of 10 must trip.
    let mut b = Breaker::new(&cfg(1000, 0.3, 10, 1));
    let t0 = Instant::now();
    for _ in 0..7 {
        run(&mut b, t0, S);
    }
    run(&mut b, t0, F);
    run(&mut b, t0, F);
    assert_eq!(b.state(t0), State::Closed);
    run(&mut b, t0, F);
    assert_eq!(b.state(t0), State::Open);
}

#[test]
fn does_not_trip_below_min_requests() {
    let mut b = Breaker::new(&cfg(1000, 0.5, 10, 1));
    let t0 = Instant::now();
    for _ in 0..9 {
        run(&mut b, t0, F);
    }
    assert_eq!(b.state(t0), State::Closed, "100% failed, but only 9 seen");
}

#[test]
fn outcomes_older_than_the_window_stop_counting() {
    let mut b = Breaker::new(&cfg(1000, 0.5, 10, 1));
    let t0 = Instant::now();
    for _ in 0..9 {
        run(&mut b, t0, F);
    }
    // 10s later the first nine are out of the window: 1 seen, no trip.
    let t1 = t0 + secs(10.0);
    run(&mut b, t1, F);
    assert_eq!(b.state(t1), State::Closed);
    for _ in 0..8 {
        run(&mut b, t1, F);
    }
    assert_eq!(b.state(t1), State::Closed, "9 in the window");
    run(&mut b, t1 + secs(9.5), F);
    assert_eq!(b.state(t1 + secs(9.5)), State::Open, "10 in the window");
}

#[test]
fn outcomes_across_buckets_of_one_window_add_up() {
    let mut b = Breaker::new(&cfg(1000, 0.5, 10, 1));
    let t0 = Instant::now();
    for i in 0..10 {
        let now = t0 + secs(i as f64 * 0.95);
        run(&mut b, now, F);
        let want = if i < 9 { State::Closed } else { State::Open };
        assert_eq!(b.state(now), want, "after {} failures", i + 1);
    }
}

#[test]
fn open_refuses_until_open_for_has_passed() {
    let (mut b, t0) = tripped(1);
    assert_eq!(b.try_acquire(t0), None);
    assert_eq!(b.try_acquire(t0 + secs(9.999)), None);
    assert_eq!(b.state(t0 + secs(9.999)), State::Open);
    // Reported half-open as soon as `until` passes, before anyone asks.
    assert_eq!(b.state(t0 + secs(10.0)), State::HalfOpen);
    assert!(b.try_acquire(t0 + secs(10.0)).is_some());
    assert_eq!(b.state(t0 + secs(10.0)), State::HalfOpen);
}

#[test]
fn half_open_admits_only_the_probe_budget() {
    let (mut b, t0) = tripped(2);
    let t1 = t0 + secs(10.0);
    let p1 = b.try_acquire(t1);
    let p2 = b.try_acquire(t1);
    assert!(p1.is_some() && p2.is_some());
    assert_eq!(b.try_acquire(t1), None);
    assert_eq!(b.try_acquire(t1 + secs(1.0)), None);
}

#[test]
fn all_probes_succeeding_closes_with_counters_reset() {
    let mut b = Breaker::new(&cfg(2, 0.5, 4, 2));
    let t0 = Instant::now();
    run(&mut b, t0, S);
    run(&mut b, t0, F);
    run(&mut b, t0, F);
    assert_eq!(b.state(t0), State::Open);
    let t1 = t0 + secs(10.0);
    let p1 = b.try_acquire(t1).unwrap();
    let p2 = b.try_acquire(t1).unwrap();
    b.record(t1, p1, S);
    assert_eq!(b.state(t1), State::HalfOpen, "one probe still out");
    b.record(t1, p2, S);
    assert_eq!(b.state(t1), State::Closed);
    // Fresh counters: one failure neither completes a run nor a rate.
    run(&mut b, t1, F);
    assert_eq!(b.state(t1), State::Closed);
    run(&mut b, t1, S);
    run(&mut b, t1, F);
    assert_eq!(
        b.state(t1),
        State::Closed,
        "2 of 3 failed, below min_requests"
    );
}

#[test]
fn a_failed_probe_opens_again_for_open_for() {
    let (mut b, t0) = tripped(2);
    let t1 = t0 + secs(10.0);
    let p1 = b.try_acquire(t1).unwrap();
    let p2 = b.try_acquire(t1).unwrap();
    b.record(t1, p1, S);
    let t2 = t1 + secs(1.0);
    b.record(t2, p2, F);
    assert_eq!(b.state(t2), State::Open);
    assert_eq!(b.try_acquire(t2 + secs(9.9)), None);
    assert!(b.try_acquire(t2 + secs(10.0)).is_some(), "half-open again");
}

#[test]
fn a_lost_probe_does_not_wedge_the_breaker() {
    let (mut b, t0) = tripped(1);
    let t1 = t0 + secs(10.0);
    let lost = b.try_acquire(t1).unwrap(); // never reports in time
    assert_eq!(b.try_acquire(t1 + secs(9.9)), None);
    assert_eq!(b.state(t1 + secs(9.9)), State::HalfOpen);
    // Silent for open_for: written off as a failure.
    let t2 = t1 + secs(10.0);
    assert_eq!(b.try_acquire(t2), None);
    assert_eq!(b.state(t2), State::Open);
    // Its late success is stale and closes nothing.
    b.record(t2 + secs(1.0), lost, S);
    assert_eq!(b.state(t2 + secs(1.0)), State::Open);
    let t3 = t2 + secs(10.0);
    let probe = b.try_acquire(t3).unwrap();
    b.record(t3, probe, S);
    assert_eq!(b.state(t3), State::Closed);
}

#[test]
fn reports_from_before_the_trip_are_ignored() {
    let mut b = Breaker::new(&cfg(1, 0.5, 20, 1));
    let t0 = Instant::now();
    let early = b.try_acquire(t0).unwrap();
    let early_fail = b.try_acquire(t0).unwrap();
    run(&mut b, t0, F);
    assert_eq!(b.state(t0), State::Open);
    let t1 = t0 + secs(10.0);
    let probe = b.try_acquire(t1).unwrap();
    // A slow request admitted before the trip finally answers: not a probe.
    b.record(t1, early, S);
    b.record(t1, early_fail, F);
    assert_eq!(b.state(t1), State::HalfOpen);
    b.record(t1, probe, S);
    assert_eq!(b.state(t1), State::Closed);
}

#[test]
fn time_running_backwards_is_harmless() {
    let mut b = Breaker::new(&cfg(2, 0.5, 4, 1));
    let t0 = Instant::now() + secs(100.0);
    run(&mut b, t0, F);
    run(&mut b, t0 - secs(50.0), F); // a thread that read the clock earlier
    assert_eq!(b.state(t0), State::Open);
    assert_eq!(b.try_acquire(t0 - secs(50.0)), None);
}

#[test]
fn without_config_everything_is_allowed_and_closed() {
    let t = Breakers::new(None, 3);
    let now = Instant::now();
    for _ in 0..100 {
        let p = t.try_acquire(1, now).unwrap();
        t.record(1, now, p, F);
    }
    assert_eq!(t.state(1, now), State::Closed);
}

#[test]
fn table_keeps_one_breaker_per_backend() {
    let t = Breakers::new(Some(&cfg(1, 0.5, 20, 1)), 2);
    let now = Instant::now();
    let p = t.try_acquire(0, now).unwrap();
    t.record(0, now, p, F);
    assert_eq!(t.state(0, now), State::Open);
    assert_eq!(t.state(1, now), State::Closed);
    assert!(t.try_acquire(0, now).is_none());
    assert!(t.try_acquire(1, now).is_some());
    // An index outside the table (never configured) is not guarded.
    assert!(t.try_acquire(7, now).is_some());
    assert_eq!(t.state(7, now), State::Closed);
}

#[test]
fn states_map_to_gauge_and_status_names() {
    let all = [State::Closed, State::Open, State::HalfOpen];
    assert_eq!(all.map(State::gauge), [0, 1, 2]);
    assert_eq!(all.map(State::name), ["closed", "open", "half_open"]);
}
