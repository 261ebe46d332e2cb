//! Policies on small runs: accounting, the expected ordering, usage errors.

use super::*;
use crate::sim::Common;
use std::time::Duration;

pub fn args(requests: u64) -> PoliciesArgs {
    PoliciesArgs {
        backends: 10,
        rate: 1000.0,
        requests,
        skew: 4.0,
        slow: None,
        degrade: 10.0,
        workers: 4,
        service: Duration::from_millis(20),
        policies: Vec::new(),
        common: Common {
            seed: 5,
            json: false,
            svg: None,
        },
    }
}

#[test]
fn every_request_is_served_once() {
    let r = simulate(&args(3_000)).expect("runs");
    assert_eq!(r.rows.len(), 6);
    for row in &r.rows {
        assert_eq!(row.unserved, 0);
        let served: f64 = row.share.iter().sum();
        assert!((served - 1.0).abs() < 1e-9, "{}: {served}", row.policy);
        assert!(row.p50_ms <= row.p99_ms && row.p99_ms <= row.p999_ms);
    }
}

#[test]
fn load_aware_policies_keep_the_tail_short() {
    let r = simulate(&args(10_000)).expect("runs");
    let p99 = |name: &str| r.rows.iter().find(|x| x.policy == name).map(|x| x.p99_ms);
    for good in ["least_conn", "p2c"] {
        for bad in ["round_robin", "random"] {
            assert!(p99(good) < p99(bad), "{good} vs {bad}: {:?}", r.rows);
        }
    }
}

#[test]
fn too_many_slow_backends_is_a_usage_error() {
    let mut a = args(10);
    a.slow = Some(10);
    assert!(matches!(simulate(&a), Err(SimError::Usage(_))));
}
