//! Bucket arithmetic and the keyed store, with injected time.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use http::HeaderValue;
use proptest::prelude::*;

use super::*;
use crate::config::{RateStore, StoreErrorPolicy};

fn cfg(rate: u64, per: Duration, burst: u64, key: RateKey) -> RateLimit {
    RateLimit {
        rate,
        per,
        burst,
        key,
        store: RateStore::Local,
        on_store_error: StoreErrorPolicy::Allow,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn burst_then_deny_then_refill_on_time() {
    let t0 = Instant::now();
    let limit = Limit::new(10, Duration::from_secs(1), 5, t0);
    let mut b = Bucket::FULL;
    for left in (0..5).rev() {
        let d = b.take(&limit, t0);
        assert!(d.allowed);
        assert_eq!((d.remaining, d.limit), (left, 5));
    }
    let d = b.take(&limit, t0);
    assert!(!d.allowed);
    assert_eq!((d.remaining, d.retry_after), (0, ms(100)));
    assert!(!b.take(&limit, t0 + ms(99)).allowed);
    let d = b.take(&limit, t0 + ms(100));
    assert!(d.allowed && d.remaining == 0);
    // Refilled to the brim 500 ms after emptying, and not beyond it.
    let full = t0 + ms(600) + Duration::from_secs(60);
    let granted = (0..10).filter(|_| b.take(&limit, full).allowed).count();
    assert_eq!(granted, 5);
}

#[test]
fn no_drift_when_the_period_does_not_divide() {
    // 3 per second is 333,333,333.3 ns per token.
    let t0 = Instant::now();
    let limit = Limit::new(3, Duration::from_secs(1), 3, t0);
    let mut b = Bucket::FULL;
    for k in 0..2000u64 {
        let now = t0 + Duration::from_secs(k);
        let granted = (0..5).filter(|_| b.take(&limit, now).allowed).count();
        assert_eq!(granted, 3, "second {k}");
    }
}

#[test]
fn retry_after_is_exact_and_rounds_up_to_whole_seconds() {
    let t0 = Instant::now();
    let limit = Limit::new(3, Duration::from_secs(1), 1, t0);
    let mut b = Bucket::FULL;
    assert!(b.take(&limit, t0).allowed);
    let d = b.take(&limit, t0);
    assert_eq!(d.retry_after, Duration::from_nanos(333_333_334));
    assert_eq!(d.retry_after_secs(), 1);
    assert!(
        !b.take(&limit, t0 + Duration::from_nanos(333_333_333))
            .allowed
    );
    assert!(
        b.take(&limit, t0 + Duration::from_nanos(333_333_334))
            .allowed
    );

    let slow = Limit::new(2, Duration::from_secs(3), 1, t0);
    let mut b = Bucket::FULL;
    assert!(b.take(&slow, t0).allowed);
    let d = b.take(&slow, t0 + ms(100));
    assert_eq!(d.retry_after, ms(1400));
    assert_eq!(d.retry_after_secs(), 2);

    let at = |retry_after| Decision {
        allowed: false,
        remaining: 0,
        limit: 1,
        retry_after,
    };
    assert_eq!(at(Duration::from_nanos(1)).retry_after_secs(), 1);
    assert_eq!(at(Duration::from_secs(1)).retry_after_secs(), 1);
    assert_eq!(at(Duration::ZERO).retry_after_secs(), 1);
    assert_eq!(at(Duration::from_secs(60)).retry_after_secs(), 60);
}

#[test]
fn keys_have_their_own_buckets() {
    let t0 = Instant::now();
    let rl = RateLimiter::new(&cfg(1, Duration::from_secs(1), 2, RateKey::ClientIp), t0);
    assert!(rl.check(b"a", t0).allowed);
    assert!(rl.check(b"a", t0).allowed);
    assert!(!rl.check(b"a", t0).allowed);
    assert!(rl.check(b"b", t0).allowed);
    assert_eq!(rl.check(b"b", t0).remaining, 0);
    assert_eq!(rl.len(), 2);
}

#[test]
fn request_keys_follow_the_config() {
    let t0 = Instant::now();
    let one = |key| RateLimiter::new(&cfg(1, Duration::from_secs(60), 1, key), t0);
    let mut with_key = HeaderMap::new();
    with_key.insert("x-api-key", HeaderValue::from_static("k1"));
    let none = HeaderMap::new();

    let by_ip = one(RateKey::ClientIp);
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert!(by_ip.check_request(Some(v4), &with_key, t0).allowed);
    assert!(
        !by_ip.check_request(Some(mapped), &none, t0).allowed,
        "same client"
    );
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert!(by_ip.check_request(Some(v6), &with_key, t0).allowed);

    let by_header = one(RateKey::Header("x-api-key".into()));
    assert!(by_header.check_request(Some(v4), &with_key, t0).allowed);
    assert!(!by_header.check_request(Some(v6), &with_key, t0).allowed);
    // No header: the shared bucket of the empty value, for everyone.
    assert!(by_header.check_request(Some(v4), &none, t0).allowed);
    assert!(!by_header.check_request(Some(v6), &none, t0).allowed);

    let by_route = one(RateKey::Route);
    assert!(by_route.check_request(Some(v4), &with_key, t0).allowed);
    assert!(!by_route.check_request(Some(v6), &none, t0).allowed);
    assert!(!by_route.check_request(None, &none, t0).allowed);
}

#[test]
fn a_million_keys_stay_within_the_cap_and_draining_buckets_survive() {
    let t0 = Instant::now();
    // 1 token per second, burst 3: a drained bucket needs 3 s to be full.
    let rl = RateLimiter::with_max_keys(
        &cfg(1, Duration::from_secs(1), 3, RateKey::ClientIp),
        1_000,
        t0,
    );
    for _ in 0..3 {
        assert!(rl.check(b"victim", t0).allowed);
    }
    let mut granted = 0usize;
    for i in 0..1_000_000u64 {
        // Time moves on, but never far enough to refill the victim.
        let now = t0 + Duration::from_micros(i * 2);
        granted += usize::from(rl.check(&i.to_le_bytes(), now).allowed);
        if i % 100_000 == 0 {
            assert!(rl.len() <= rl.max_keys());
        }
    }
    assert!(rl.len() <= rl.max_keys());
    // Still draining: 2.5 of 3 tokens back, so one is left after this take
    // (a reset bucket would have two).
    let d = rl.check(b"victim", t0 + ms(2_500));
    assert!(d.allowed);
    assert_eq!(d.remaining, 1, "victim was reset");
    // Each key asked once. A key got its own bucket only while there was
    // room, and a bucket makes room only once refilled (1 s after its take),
    // so over the 2 s flood at most 3 × max_keys keys had their own. The
    // others shared their shard's overflow bucket: burst plus 2 s of refill.
    let own_buckets = rl.max_keys() * 3;
    assert!(
        granted <= own_buckets + SHARDS * (3 + 2),
        "granted {granted}"
    );
}

#[test]
fn refilled_buckets_make_room_for_new_keys() {
    let t0 = Instant::now();
    let rl = RateLimiter::with_max_keys(
        &cfg(1, Duration::from_secs(1), 1, RateKey::ClientIp),
        SHARDS * 4,
        t0,
    );
    for i in 0..10_000u64 {
        rl.check(&i.to_le_bytes(), t0);
    }
    assert_eq!(rl.len(), rl.max_keys(), "full of draining buckets");
    // One second later every bucket is full again and may be forgotten:
    // a new round of keys gets fresh buckets, each allowed once.
    let t1 = t0 + Duration::from_secs(1);
    let allowed = (10_000..10_000 + rl.max_keys() as u64 / 2)
        .filter(|i| rl.check(&i.to_le_bytes(), t1).allowed)
        .count();
    assert!(allowed >= rl.max_keys() / 2 - SHARDS, "allowed {allowed}");
    assert!(rl.len() <= rl.max_keys());
}

#[test]
fn time_running_backwards_grants_nothing_extra() {
    let t0 = Instant::now();
    let rl = RateLimiter::new(&cfg(1, Duration::from_secs(1), 1, RateKey::Route), t0);
    let t5 = t0 + Duration::from_secs(5);
    assert!(rl.check(b"", t5).allowed);
    assert!(!rl.check(b"", t0 + Duration::from_secs(3)).allowed);
    assert!(!rl.check(b"", t0).allowed);
}

proptest! {
    /// Whatever the parameters and the pattern of requests, a bucket grants at
    /// most `burst + rate × elapsed / per`, and a denial's `retry_after` is
    /// exactly when the next take succeeds.
    #[test]
    fn never_grants_more_than_capacity_plus_refill(
        rate in 1u64..1_000,
        per_ms in 1u64..5_000,
        burst in 1u64..100,
        steps in prop::collection::vec((0u64..2_000_000_000, 0u8..6), 1..200),
    ) {
        let t0 = Instant::now();
        let per = ms(per_ms);
        let limit = Limit::new(rate, per, burst, t0);
        let mut b = Bucket::FULL;
        let (mut elapsed, mut granted) = (0u128, 0u128);
        for (advance, takes) in steps {
            elapsed += u128::from(advance);
            let now = t0 + Duration::from_nanos(elapsed as u64);
            for _ in 0..takes {
                let d = b.take(&limit, now);
                prop_assert!(d.remaining < burst);
                if d.allowed {
                    granted += 1;
                } else {
                    prop_assert!(d.retry_after > Duration::ZERO);
                    let mut probe = b;
                    prop_assert!(probe.take(&limit, now + d.retry_after).allowed);
                    let mut early = b;
                    let just_before = now + d.retry_after - Duration::from_nanos(1);
                    prop_assert!(!early.take(&limit, just_before).allowed);
                }
            }
        }
        let per_ns = per.as_nanos();
        prop_assert!(
            granted * per_ns <= u128::from(burst) * per_ns + u128::from(rate) * elapsed,
            "granted {} in {} ns", granted, elapsed
        );
    }
}
