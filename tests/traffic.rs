//! Traffic policy through the real binary: circuit breakers, rate limits and
//! sticky cookie sessions.

mod common;
use common::*;

use std::time::{Duration, Instant};

fn proxy(upstream: &str, route: &str) -> Proxy {
    Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n      - {{ name: r, upstream: u{route} }}\nupstreams:\n  u:\n{upstream}"
    ))
}

fn circuit(proxy: &Proxy, addr: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&get(proxy.admin, "a", "/status").body).unwrap();
    let backends = json["upstreams"]["u"]["backends"]
        .as_array()
        .unwrap()
        .clone();
    let b = backends.iter().find(|b| b["addr"] == addr).unwrap();
    b["circuit"].as_str().unwrap().to_owned()
}

fn get_with(proxy: &Proxy, headers: &str) -> Response {
    send(
        proxy.http,
        format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn breaker_trips_on_failures_stops_traffic_and_recovers_through_half_open() {
    let b = backends("cb", 2);
    let proxy = proxy(
        &format!(
            "    backends: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}]\n    circuit_breaker: {{ consecutive_failures: 3, open_for: 1s, half_open_requests: 1 }}\n",
            b[0].addr, b[1].addr
        ),
        "",
    );
    let bad = b[0].addr.to_string();
    b[0].state.force_status(Some(500));
    // Round robin sends every other request to the failing backend until it trips.
    for _ in 0..6 {
        proxy.get("x", "/");
    }
    assert_eq!(
        b[0].hits(),
        3,
        "exactly three failures reach it before it trips"
    );
    assert_eq!(circuit(&proxy, &bad), "open");
    assert_eq!(
        proxy.metric(
            "switchyard_circuit_state",
            &[("upstream", "u"), ("backend", &bad)]
        ),
        Some(1.0)
    );
    for _ in 0..10 {
        assert_eq!(proxy.get("x", "/").backend(), Some("cb-2"));
    }
    assert_eq!(b[0].hits(), 3, "an open breaker gets no traffic");

    // After open_for it lets one probe through; the backend is healthy again.
    b[0].state.force_status(None);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(circuit(&proxy, &bad), "half_open");
    let deadline = Instant::now() + Duration::from_secs(5);
    while b[0].hits() == 3 && Instant::now() < deadline {
        assert_eq!(proxy.get("x", "/").status, 200);
    }
    // The probe's outcome is recorded as its request is logged, just after
    // the client has the response: allow for that.
    let deadline = Instant::now() + Duration::from_secs(2);
    while circuit(&proxy, &bad) != "closed" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(circuit(&proxy, &bad), "closed");
    let before = b[0].hits();
    for _ in 0..6 {
        proxy.get("x", "/");
    }
    assert_eq!(
        b[0].hits() - before,
        3,
        "closed again: back in the rotation"
    );
}

#[test]
fn a_failing_probe_opens_the_breaker_again_and_all_open_is_503() {
    let b = backends("solo", 1);
    let proxy = proxy(
        &format!(
            "    backends: [{{ addr: \"{}\" }}]\n    circuit_breaker: {{ consecutive_failures: 2, open_for: 500ms }}\n",
            b[0].addr
        ),
        "",
    );
    b[0].state.force_status(Some(502));
    // An outcome reaches the breaker when the exchange ends, just after the
    // client has its answer; the next request may be on another thread, so
    // give the report a moment.
    let settle = || std::thread::sleep(Duration::from_millis(50));
    assert_eq!(proxy.get("x", "/").status, 502);
    settle();
    assert_eq!(proxy.get("x", "/").status, 502);
    settle();
    let r = proxy.get("x", "/");
    assert_eq!(r.status, 503, "the only backend's breaker is open");
    assert_eq!(r.body, "503 Service Unavailable\n");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        proxy.get("x", "/").status,
        502,
        "the half-open probe goes through and fails"
    );
    settle();
    assert_eq!(proxy.get("x", "/").status, 503, "open again");
    assert_eq!(b[0].hits(), 3);
}

#[test]
fn rate_limit_allows_a_burst_then_429s_then_refills_per_key() {
    let b = backends("rl", 1);
    let proxy = proxy(
        &format!("    backends: [{{ addr: \"{}\" }}]\n", b[0].addr),
        ", rate_limit: { rate: 2, per: 1s, burst: 3, key: \"header:X-Key\" }",
    );
    let start = Instant::now();
    for i in 0..3 {
        let r = get_with(&proxy, "X-Key: alice\r\n");
        assert_eq!(r.status, 200, "request {i} is within the burst");
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        assert_eq!(
            r.header("ratelimit-remaining"),
            Some((2 - i).to_string().as_str())
        );
    }
    let r = get_with(&proxy, "X-Key: alice\r\n");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert_eq!(r.body, "429 Too Many Requests\n");
    assert_eq!(b[0].hits(), 3, "nothing is forwarded over the limit");
    // Another key has its own bucket.
    assert_eq!(get_with(&proxy, "X-Key: bob\r\n").status, 200);
    // One token comes back every 500ms.
    let wait = Duration::from_millis(550).saturating_sub(start.elapsed());
    std::thread::sleep(wait);
    assert_eq!(get_with(&proxy, "X-Key: alice\r\n").status, 200);
    assert_eq!(get_with(&proxy, "X-Key: alice\r\n").status, 429);
    assert_eq!(
        proxy.metric(
            "switchyard_rate_limited_total",
            &[("listener", "web"), ("route", "r")]
        ),
        Some(2.0)
    );
}

#[test]
fn requests_without_the_header_share_one_bucket() {
    let b = backends("rl", 1);
    let proxy = proxy(
        &format!("    backends: [{{ addr: \"{}\" }}]\n", b[0].addr),
        ", rate_limit: { rate: 1, per: 1m, burst: 2, key: \"header:X-Key\" }",
    );
    assert_eq!(get_with(&proxy, "").status, 200);
    assert_eq!(get_with(&proxy, "").status, 200);
    let r = get_with(&proxy, "");
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (59..=60).contains(&retry),
        "one token per minute: retry after ~60s, got {retry}"
    );
}

fn cookie_of(r: &Response) -> Option<String> {
    let set = r.header("set-cookie")?;
    Some(set.split(';').next()?.to_string())
}

#[test]
fn sticky_cookie_pins_survives_and_repins_when_the_backend_dies() {
    let mut b = backends("st", 3);
    let list: Vec<String> = b
        .iter()
        .map(|s| format!("{{ addr: \"{}\" }}", s.addr))
        .collect();
    let proxy = proxy(
        &format!("    retries: 2\n    backends: [{}]\n", list.join(", ")),
        ", sticky: { cookie: SY, max_age: 1h }",
    );
    let first = proxy.get("x", "/");
    let set = first.header("set-cookie").unwrap().to_owned();
    assert!(set.starts_with("SY="), "{set}");
    assert!(set.ends_with("; Path=/; HttpOnly; Max-Age=3600"), "{set}");
    for s in &b {
        assert!(
            !set.contains(&s.addr.to_string()) && !set.contains(&s.addr.port().to_string()),
            "{set}"
        );
    }
    let cookie = cookie_of(&first).unwrap();
    let owner = first.backend().unwrap().to_owned();
    for _ in 0..9 {
        let r = get_with(&proxy, &format!("Cookie: other=1; {cookie}\r\n"));
        assert_eq!(r.backend(), Some(owner.as_str()), "pinned");
        assert_eq!(r.header("set-cookie"), None, "a valid cookie is not re-set");
    }

    // A tampered cookie is treated as absent: a fresh one is set.
    let mut forged = cookie.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let r = get_with(&proxy, &format!("Cookie: {forged}\r\n"));
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_some());

    // The pinned backend dies: the request still succeeds elsewhere and the cookie is re-set.
    let idx = b.iter().position(|s| s.name == owner).unwrap();
    drop(b.remove(idx));
    let r = get_with(&proxy, &format!("Cookie: {cookie}\r\n"));
    assert_eq!(r.status, 200);
    assert_ne!(r.backend(), Some(owner.as_str()));
    let new_cookie = cookie_of(&r).expect("re-pinned");
    assert_ne!(new_cookie, cookie);
    let new_owner = r.backend().unwrap().to_owned();
    for _ in 0..5 {
        assert_eq!(
            get_with(&proxy, &format!("Cookie: {new_cookie}\r\n")).backend(),
            Some(new_owner.as_str())
        );
    }
}

#[test]
fn sticky_clients_stay_on_a_draining_backend() {
    let b = backends("dr", 2);
    // Both serve; a client is pinned, then its backend is set to weight 0 by a
    // config where only that one is draining: pinned clients still reach it.
    let proxy = proxy(
        &format!(
            "    backends: [{{ addr: \"{}\", weight: 0 }}, {{ addr: \"{}\" }}]\n",
            b[0].addr, b[1].addr
        ),
        ", sticky: { cookie: SY }",
    );
    let r = proxy.get("x", "/");
    assert_eq!(
        r.backend(),
        Some("dr-2"),
        "new clients never go to a draining backend"
    );
    assert!(r
        .header("set-cookie")
        .unwrap()
        .ends_with("; Path=/; HttpOnly"));
    // Forge nothing: take a cookie for dr-1 as an earlier instance (same key) would have set it.
    let key =
        switchyard::filters::sticky::StickyKey::from_secret(b"test-key-0123456789abcdef").unwrap();
    let token = key.token("u", 0, &b[0].addr.to_string());
    drop(proxy);
    let proxy = Proxy::start_with_env(
        &format!(
            "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n      - {{ name: r, upstream: u, sticky: {{ cookie: SY }} }}\nupstreams:\n  u:\n    backends: [{{ addr: \"{}\", weight: 0 }}, {{ addr: \"{}\" }}]\n",
            b[0].addr, b[1].addr
        ),
        &[("SWITCHYARD_STICKY_KEY", "test-key-0123456789abcdef")],
    );
    for _ in 0..3 {
        let r = get_with(&proxy, &format!("Cookie: SY={token}\r\n"));
        assert_eq!(
            r.backend(),
            Some("dr-1"),
            "a pinned client keeps its draining backend"
        );
    }
}
