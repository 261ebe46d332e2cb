//! The shared (redis) rate limit store against a real `redis-server`: the
//! same answers as the local store, keys and TTLs, the script reloaded after
//! a flush, and what happens when Redis is unreachable or hung.

mod common;
use common::redis_server::RedisServer;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use http::HeaderMap;
use prometheus::IntCounter;
use switchyard::config::{RateKey, RateLimit, RateStore, StoreErrorPolicy};
use switchyard::filters::rate_limit::redis_store::{circuit::RETRY_MAX, StoreError};
use switchyard::filters::rate_limit::{RateLimiter, RedisLimiter};

fn cfg(rate: u64, per: Duration, burst: u64, key: RateKey, url: &str) -> RateLimit {
    RateLimit {
        rate,
        per,
        burst,
        key,
        store: RateStore::Redis(url.to_string()),
        on_store_error: StoreErrorPolicy::Allow,
    }
}

fn limiter(cfg: &RateLimit, route: &str) -> (RedisLimiter, IntCounter) {
    let errors = IntCounter::new("errors", "store errors").unwrap();
    let RateStore::Redis(url) = &cfg.store else {
        panic!("a redis config")
    };
    let l = RedisLimiter::new(cfg, url, "web", route, errors.clone());
    (l, errors)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn redis_store_answers_what_the_local_store_answers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let rt = rt();
    // A slow refill (1 token per 20 s) so Redis's clock moving during the test
    // cannot change a whole-token answer.
    let c = cfg(
        3,
        Duration::from_secs(60),
        4,
        RateKey::ClientIp,
        &redis.url(),
    );
    let (shared, _) = limiter(&c, "api");
    let t0 = Instant::now();
    let local = RateLimiter::new(&c, t0);
    let headers = HeaderMap::new();
    for i in 0..6 {
        let want = local.check_request(ip("192.0.2.1"), &headers, t0);
        let got = rt
            .block_on(shared.check_request(ip("192.0.2.1"), &headers))
            .expect("redis decided");
        assert_eq!(
            (got.allowed, got.remaining, got.limit),
            (want.allowed, want.remaining, want.limit),
            "take {i}"
        );
        assert_eq!(got.retry_after_secs(), want.retry_after_secs(), "take {i}");
        if !want.allowed {
            // The local store's wait is exactly 20 s; Redis's clock moved a
            // little since the first take.
            let drift = want.retry_after.abs_diff(got.retry_after);
            assert!(drift < Duration::from_secs(2), "take {i}: {drift:?}");
        }
    }
}

#[test]
fn tokens_come_back_at_the_configured_rate() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let rt = rt();
    let c = cfg(10, Duration::from_secs(1), 2, RateKey::Route, &redis.url());
    let (l, _) = limiter(&c, "api");
    let h = HeaderMap::new();
    let take = || rt.block_on(l.check_request(None, &h)).expect("decided");
    assert!(take().allowed && take().allowed);
    let denied = take();
    assert!(!denied.allowed);
    assert!(
        denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_millis(100),
        "one token per 100 ms: {:?}",
        denied.retry_after
    );
    assert_eq!(denied.retry_after_secs(), 1, "rounded up to a whole second");
    std::thread::sleep(denied.retry_after + Duration::from_millis(20));
    assert!(take().allowed, "refilled after retry_after");
}

#[test]
fn keys_are_per_route_and_expire_when_the_bucket_is_full_again() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let rt = rt();
    let c = cfg(
        2,
        Duration::from_secs(1),
        3,
        RateKey::ClientIp,
        &redis.url(),
    );
    let (api, _) = limiter(&c, "api");
    let (admin, _) = limiter(&c, "admin");
    let h = HeaderMap::new();
    for _ in 0..3 {
        assert!(
            rt.block_on(api.check_request(ip("192.0.2.7"), &h))
                .unwrap()
                .allowed
        );
    }
    assert!(
        !rt.block_on(api.check_request(ip("192.0.2.7"), &h))
            .unwrap()
            .allowed
    );
    let other = rt
        .block_on(admin.check_request(ip("192.0.2.7"), &h))
        .unwrap();
    assert!(other.allowed, "another route has its own bucket");
    assert_eq!(other.remaining, 2);

    let mut con = redis.client();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "switchyard:rl:web/admin:192.0.2.7",
            "switchyard:rl:web/api:192.0.2.7"
        ]
    );
    // Three tokens short at 2 per second: full again in 1.5 s.
    let pttl: i64 = redis::cmd("PTTL")
        .arg("switchyard:rl:web/api:192.0.2.7")
        .query(&mut con)
        .unwrap();
    assert!(
        (1000..=1500).contains(&pttl),
        "ttl = time to full: {pttl} ms"
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg("switchyard:rl:web/admin:192.0.2.7")
        .query(&mut con)
        .unwrap();
    assert!((1..=500).contains(&pttl), "one token short: {pttl} ms");
}

#[test]
fn a_flushed_script_is_loaded_again() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let rt = rt();
    let c = cfg(1, Duration::from_secs(60), 5, RateKey::Route, &redis.url());
    let (l, errors) = limiter(&c, "api");
    let h = HeaderMap::new();
    assert_eq!(rt.block_on(l.check_request(None, &h)).unwrap().remaining, 4);
    let mut con = redis.client();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    assert_eq!(
        rt.block_on(l.check_request(None, &h)).unwrap().remaining,
        3,
        "NOSCRIPT: loaded and run again"
    );
    assert_eq!(errors.get(), 0);
}

#[test]
fn unreachable_redis_is_decided_by_on_store_error_and_counted() {
    // A port nothing listens on: connects are refused.
    let port = common::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let rt = rt();
    let h = HeaderMap::new();
    let mut c = cfg(1, Duration::from_secs(1), 1, RateKey::Route, &url);
    let (allow, allow_errors) = limiter(&c, "a");
    c.on_store_error = StoreErrorPolicy::Deny;
    let (deny, deny_errors) = limiter(&c, "d");
    for _ in 0..3 {
        assert_eq!(
            rt.block_on(allow.check_request(None, &h)),
            None,
            "allowed, no headers"
        );
        let d = rt.block_on(deny.check_request(None, &h)).expect("denied");
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs(), 1);
        assert_eq!(d.limit, 1);
    }
    assert_eq!(allow_errors.get(), 3);
    assert_eq!(deny_errors.get(), 3);
    // The first failure opened the circuit: the others did not try to connect.
    assert!(matches!(
        rt.block_on(allow.take(b"k")),
        Err(StoreError::Down)
    ));
}

#[test]
fn a_hung_redis_costs_a_request_at_most_the_timeout_and_then_is_skipped() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let rt = rt();
    let c = cfg(
        100,
        Duration::from_secs(1),
        100,
        RateKey::Route,
        &redis.url(),
    );
    let (l, _) = limiter(&c, "api");
    assert!(rt.block_on(l.take(b"k")).is_ok());
    assert!(l.is_connected());

    redis.signal("STOP");
    let started = Instant::now();
    let r = rt.block_on(l.take(b"k"));
    let took = started.elapsed();
    assert!(matches!(r, Err(StoreError::Timeout)), "{r:?}");
    assert!(took < Duration::from_secs(1), "bounded: {took:?}");
    assert!(!l.is_connected(), "a timed-out connection is dropped");
    let started = Instant::now();
    let r = rt.block_on(l.take(b"k"));
    assert!(matches!(r, Err(StoreError::Down)), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "skipped at once"
    );

    redis.signal("CONT");
    let deadline = Instant::now() + RETRY_MAX + Duration::from_secs(3);
    while rt.block_on(l.take(b"k")).is_err() {
        assert!(Instant::now() < deadline, "reconnected after the thaw");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(l.is_connected());
}
