//! Ejection, expiry and the cap, driven by injected instants.

use super::*;

fn cfg(fives: u32, gateway: u32, factor: f64, max_percent: u32) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: fives,
        consecutive_gateway_failures: gateway,
        latency_factor: factor,
        interval: Duration::from_secs(10),
        base_ejection: Duration::from_secs(30),
        max_ejected_percent: max_percent,
    }
}

fn table(c: &OutlierDetection, n: usize) -> (Outliers, Instant) {
    let t0 = Instant::now();
    let addrs = (0..n).map(|i| format!("10.0.0.{i}:80")).collect();
    (Outliers::new(c, "u", addrs, t0), t0)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

const MS: Option<Duration> = Some(Duration::from_millis(1));

#[test]
fn consecutive_5xx_eject_at_the_count_and_a_success_breaks_the_run() {
    let (o, t0) = table(&cfg(3, 0, 0.0, 50), 4);
    o.report(1, t0, Ended::Answered(500), MS);
    o.report(1, t0, Ended::Answered(500), MS);
    o.report(1, t0, Ended::Answered(200), MS);
    o.report(1, t0, Ended::Answered(500), MS);
    o.report(1, t0, Ended::Answered(503), MS);
    assert!(!o.ejected(1, t0));
    o.report(1, t0, Ended::Answered(500), MS);
    assert!(o.ejected(1, t0));
    assert_eq!(o.ejections(1, Reason::Consecutive5xx), 1);
    assert!(!o.ejected(0, t0), "only that backend");
}

#[test]
fn gateway_failures_count_connect_failures_and_a_500_breaks_them() {
    let (o, t0) = table(&cfg(0, 3, 0.0, 50), 4);
    o.report(2, t0, Ended::ConnectFailure, None);
    o.report(2, t0, Ended::Timeout, None);
    o.report(2, t0, Ended::Answered(500), MS);
    o.report(2, t0, Ended::Reset, None);
    o.report(2, t0, Ended::Answered(502), MS);
    assert!(!o.ejected(2, t0));
    o.report(2, t0, Ended::ConnectFailure, None);
    assert!(o.ejected(2, t0));
    assert_eq!(o.ejections(2, Reason::Gateway), 1);
    assert_eq!(o.ejections(2, Reason::Consecutive5xx), 0);
}

#[test]
fn ejection_grows_with_each_ejection_up_to_ten_times_and_expires() {
    let (o, t0) = table(&cfg(1, 0, 0.0, 50), 2);
    let mut now = t0;
    for n in 1..=12u32 {
        o.report(0, now, Ended::Answered(500), MS);
        let e = o.ejection(0, now);
        assert!(e.ejected && e.count == n, "{n}: {e:?}");
        let expected = secs(30.0 * f64::from(n.min(MAX_MULTIPLE)));
        assert_eq!(e.remaining, expected, "ejection {n}");
        assert!(o.ejected(0, now + expected - secs(0.001)));
        now += expected;
        assert!(!o.ejected(0, now), "back after {expected:?}");
        assert!(!o.ejection(0, now).ejected);
    }
}

#[test]
fn the_cap_rounds_down_but_allows_one_of_two() {
    for (n, percent, cap) in [(3, 50, 1), (4, 50, 2), (2, 10, 1), (10, 10, 1), (10, 35, 3)] {
        let (o, t0) = table(&cfg(1, 0, 0.0, percent), n);
        for i in 0..n {
            o.report(i, t0, Ended::Answered(500), MS);
        }
        let ejected = (0..n).filter(|&i| o.ejected(i, t0)).count();
        assert_eq!(ejected, cap, "{n} backends, {percent}%");
    }
    let (o, t0) = table(&cfg(1, 0, 0.0, 100), 1);
    o.report(0, t0, Ended::Answered(500), MS);
    assert!(o.ejected(0, t0), "100% of one backend is that backend");
    let (o, t0) = table(&cfg(1, 0, 0.0, 50), 1);
    o.report(0, t0, Ended::Answered(500), MS);
    assert!(
        !o.ejected(0, t0),
        "a lone backend is never ejected below 100%"
    );
}

#[test]
fn a_capped_backend_is_ejected_once_another_returns() {
    let (o, t0) = table(&cfg(1, 0, 0.0, 50), 3);
    o.report(0, t0, Ended::Answered(500), MS);
    o.report(1, t0, Ended::Answered(500), MS);
    assert!(o.ejected(0, t0) && !o.ejected(1, t0));
    let later = t0 + secs(30.0);
    assert!(!o.ejected(0, later));
    o.report(1, later, Ended::Answered(500), MS);
    assert!(o.ejected(1, later), "its run still counts");
}

#[test]
fn a_slow_backend_is_ejected_when_its_interval_ends() {
    let (o, t0) = table(&cfg(0, 0, 3.0, 50), 3);
    let fast = Duration::from_millis(2);
    let slow = Duration::from_millis(20);
    for k in 0..30 {
        let at = t0 + secs(f64::from(k) * 0.3);
        o.report(0, at, Ended::Answered(200), Some(fast));
        o.report(1, at, Ended::Answered(200), Some(slow));
        o.report(2, at, Ended::Answered(200), Some(fast));
    }
    assert!(
        !o.ejected(1, t0 + secs(9.9)),
        "judged only at the interval's end"
    );
    // The first report after 10 s judges the first interval.
    let t1 = t0 + secs(10.0);
    o.report(0, t1, Ended::Answered(200), Some(fast));
    assert!(o.ejected(1, t1));
    assert!(!o.ejected(0, t1) && !o.ejected(2, t1));
    assert_eq!(o.ejections(1, Reason::Latency), 1);
    // The next interval has nothing from backend 1: nothing more happens.
    for k in 0..30 {
        let at = t1 + secs(f64::from(k) * 0.3);
        o.report(0, at, Ended::Answered(200), Some(fast));
        o.report(2, at, Ended::Answered(200), Some(fast));
    }
    o.report(0, t0 + secs(20.0), Ended::Answered(200), Some(fast));
    assert_eq!(o.ejection(1, t0 + secs(20.0)).count, 1);
}

#[test]
fn equal_backends_are_left_alone() {
    let (o, t0) = table(&cfg(0, 0, 1.5, 100), 5);
    for k in 0..200u32 {
        let at = t0 + secs(f64::from(k) * 0.1);
        for i in 0..5 {
            let jitter = Duration::from_micros(900 + u64::from((k * 7 + i as u32 * 13) % 200));
            o.report(i, at, Ended::Answered(200), Some(jitter));
        }
    }
    assert!((0..5).all(|i| o.ejection(i, t0 + secs(20.0)).count == 0));
}
