//! Several switchyard instances behind one address, through the real binary:
//! rate limits shared through one `redis-server` (and what each instance does
//! when it goes away, hangs and comes back), sticky cookies valid on every
//! instance that shares `SWITCHYARD_STICKY_KEY`.

mod common;
use common::redis_server::RedisServer;
use common::*;

use std::time::{Duration, Instant};

/// Every request is answered within this, even with Redis dead or hung (the
/// store's own budget is 100 ms; the rest is slack for a busy machine).
const PROMPT: Duration = Duration::from_secs(1);

fn limited(b: &[DemoServer], redis_url: &str, on_error: &str) -> Proxy {
    Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n      - {{ name: r, upstream: u, rate_limit: {{ rate: 1, per: 1m, burst: 4, key: \"header:X-Key\", store: \"{redis_url}\", on_store_error: {on_error} }} }}\nupstreams:\n  u:\n    backends: {}\n",
        backend_list(b)
    ))
}

/// One request with `X-Key: key`, and how long its answer took.
fn hit(proxy: &Proxy, key: &str) -> (Response, Duration) {
    let started = Instant::now();
    let r = send(
        proxy.http,
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Key: {key}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    (r, started.elapsed())
}

fn store_errors(proxy: &Proxy) -> f64 {
    proxy
        .metric(
            "switchyard_rate_limit_store_errors_total",
            &[("listener", "web"), ("route", "r")],
        )
        .unwrap_or(0.0)
}

/// Alternates `n` requests for `key` between the instances; the statuses.
fn burst(proxies: &[&Proxy], key: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|i| hit(proxies[i % proxies.len()], key).0.status)
        .collect()
}

#[test]
fn two_instances_share_one_bucket_through_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = backends("mi", 1);
    let a = limited(&b, &redis.url(), "allow");
    let z = limited(&b, &redis.url(), "allow");
    let mut remaining = Vec::new();
    for i in 0..4 {
        let (r, _) = hit(if i % 2 == 0 { &a } else { &z }, "alice");
        assert_eq!(r.status, 200, "request {i} is within the shared burst");
        remaining.push(r.header("ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(
        remaining,
        ["3", "2", "1", "0"],
        "one bucket, counted across both"
    );
    for p in [&a, &z, &a, &z] {
        let (r, _) = hit(p, "alice");
        assert_eq!(r.status, 429);
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((55..=60).contains(&retry), "one token a minute: {retry}");
    }
    assert_eq!(b[0].hits(), 4, "together they admitted exactly `burst`");
    assert_eq!(burst(&[&z, &a], "bob", 6), [200, 200, 200, 200, 429, 429]);
    assert_eq!(store_errors(&a), 0.0);
    assert_eq!(store_errors(&z), 0.0);
    let limited_total = |p: &Proxy| {
        p.metric(
            "switchyard_rate_limited_total",
            &[("listener", "web"), ("route", "r")],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(limited_total(&a) + limited_total(&z), 6.0);
}

#[test]
fn redis_gone_with_allow_lets_requests_through_promptly_then_sharing_resumes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let port = redis.addr.port();
    let url = redis.url();
    let b = backends("ma", 1);
    let a = limited(&b, &url, "allow");
    let z = limited(&b, &url, "allow");
    assert_eq!(burst(&[&a, &z], "alice", 5), [200, 200, 200, 200, 429]);

    drop(redis);
    for i in 0..10 {
        let (r, took) = hit(if i % 2 == 0 { &a } else { &z }, "alice");
        assert_eq!(
            r.status, 200,
            "request {i}: redis is gone, on_store_error: allow"
        );
        assert!(took < PROMPT, "request {i} took {took:?}");
        assert_eq!(r.header("ratelimit-remaining"), None, "nothing to report");
    }
    assert!(store_errors(&a) >= 1.0 && store_errors(&z) >= 1.0);

    // A fresh Redis on the same address: each instance reconnects by itself
    // (within its backoff, at most 2 s) and the buckets are shared again.
    let _redis = RedisServer::start_on(port).expect("restarted");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let statuses = [hit(&a, "alice").0.status, hit(&z, "alice").0.status];
        if statuses == [429, 429] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sharing did not resume: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let errors = (store_errors(&a), store_errors(&z));
    assert_eq!(burst(&[&z, &a], "carol", 6), [200, 200, 200, 200, 429, 429]);
    assert_eq!(
        (store_errors(&a), store_errors(&z)),
        errors,
        "no more errors"
    );
}

#[test]
fn redis_gone_or_hung_with_deny_answers_429_promptly_then_recovers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = backends("md", 1);
    let p = limited(&b, &redis.url(), "deny");
    assert_eq!(hit(&p, "alice").0.status, 200);

    // Hung: connections stay open, nothing is answered.
    redis.signal("STOP");
    for i in 0..5 {
        let (r, took) = hit(&p, "alice");
        assert_eq!(
            r.status, 429,
            "request {i}: redis hung, on_store_error: deny"
        );
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(took < PROMPT, "request {i} took {took:?}");
    }
    assert!(store_errors(&p) >= 5.0);
    redis.signal("CONT");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hit(&p, "bob").0.status != 200 {
        assert!(
            Instant::now() < deadline,
            "redis answered again but still denied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Gone: refused connections.
    drop(redis);
    for i in 0..5 {
        let (r, took) = hit(&p, "bob");
        assert_eq!(
            r.status, 429,
            "request {i}: redis gone, on_store_error: deny"
        );
        assert!(took < PROMPT, "request {i} took {took:?}");
    }
    assert_eq!(b[0].hits(), 2, "nothing denied reached the backend");
    let log = p.log();
    assert!(log.contains("rate limits use on_store_error"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

fn sticky(b: &[DemoServer], key: &str) -> Proxy {
    Proxy::start_with_env(
        &format!(
            "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n      - {{ name: r, upstream: u, sticky: {{ cookie: SY }} }}\nupstreams:\n  u:\n    backends: {}\n",
            backend_list(b)
        ),
        &[("SWITCHYARD_STICKY_KEY", key)],
    )
}

fn with_cookie(p: &Proxy, cookie: &str) -> Response {
    send(
        p.http,
        format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn sticky_cookies_from_one_instance_are_honoured_by_another_with_the_same_key() {
    let b = backends("sk", 3);
    let key = "multi-instance-key-0123456789";
    let a = sticky(&b, key);
    let z = sticky(&b, key);
    let other = sticky(&b, "another-key-0123456789abcdef");
    for _ in 0..3 {
        let first = a.get("x", "/");
        let cookie = first
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned();
        let owner = first.backend().unwrap().to_owned();
        // Round robin on `z` would spread these over three backends.
        for _ in 0..6 {
            let r = with_cookie(&z, &cookie);
            assert_eq!(r.backend(), Some(owner.as_str()), "pinned across instances");
            assert_eq!(r.header("set-cookie"), None, "valid there: not re-set");
        }
        let r = with_cookie(&other, &cookie);
        assert!(
            r.header("set-cookie").is_some(),
            "an instance with another key treats the cookie as absent"
        );
    }
}
