//! Every balancing policy through the real binary.

mod common;
use common::*;

use std::time::Duration;

fn proxy_for(policy_lines: &str, servers: &[DemoServer], weights: &[u32]) -> Proxy {
    let list: Vec<String> = servers
        .iter()
        .zip(weights)
        .map(|(s, w)| format!("{{ addr: \"{}\", weight: {w} }}", s.addr))
        .collect();
    Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n{policy_lines}    backends: [{}]\n",
        list.join(", ")
    ))
}

fn who(proxy: &Proxy, extra_header: &str) -> String {
    let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{extra_header}Connection: close\r\n\r\n");
    send(proxy.http, raw.as_bytes())
        .backend()
        .unwrap()
        .to_owned()
}

#[test]
fn weighted_round_robin_is_smooth() {
    let b = backends("w", 3);
    let proxy = proxy_for("    policy: weighted_round_robin\n", &b, &[5, 1, 1]);
    let seq: Vec<String> = (0..14).map(|_| who(&proxy, "")).collect();
    let short: Vec<&str> = seq.iter().map(|n| &n[2..]).collect();
    // NGINX's smooth WRR: a a b a c a a, repeating.
    assert_eq!(
        short,
        ["1", "1", "2", "1", "3", "1", "1", "1", "1", "2", "1", "3", "1", "1"]
    );
}

/// A slow request parks on one backend; new requests must go elsewhere.
fn steers_away_from_the_busy_backend(policy: &str) {
    let b = backends(policy, 2);
    let proxy = proxy_for(&format!("    policy: {policy}\n"), &b, &[1, 1]);
    let http = proxy.http;
    let slow = std::thread::spawn(move || {
        get(http, "x", "/?sleep_ms=2500")
            .backend()
            .unwrap()
            .to_owned()
    });
    // Wait until the slow request is in flight on some backend.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while b[0].hits() + b[1].hits() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (busy, other) = if b[0].hits() > 0 {
        (&b[0], &b[1])
    } else {
        (&b[1], &b[0])
    };
    for i in 0..10 {
        // The previous request's in-flight count is released just after
        // this client read its response; sent at once, the next request can
        // be chosen (on the proxy's other worker thread) before that, see
        // both backends at 1 and break the tie towards the busy one
        // (least_conn: round robin; p2c: the first drawn). So the loads this
        // request meets are waited for: the slow request alone in flight.
        let settled = common::daemon::wait_until(Duration::from_secs(5), || {
            proxy.inflight("u", other) == 0.0
        });
        assert!(
            settled,
            "request #{i}: {} still counted in flight",
            other.name
        );
        assert_eq!(
            proxy.inflight("u", busy),
            1.0,
            "request #{i}: the slow request on {} is no longer in flight",
            busy.name
        );
        assert_ne!(
            who(&proxy, ""),
            busy.name,
            "{policy} sent request #{i} to the busy backend"
        );
    }
    assert_eq!(slow.join().unwrap(), busy.name);
}

#[test]
fn least_conn_avoids_a_backend_holding_a_slow_request() {
    steers_away_from_the_busy_backend("least_conn");
}

#[test]
fn p2c_avoids_a_backend_holding_a_slow_request() {
    steers_away_from_the_busy_backend("p2c");
}

#[test]
fn consistent_hash_keeps_a_key_on_one_backend() {
    let b = backends("ch", 4);
    let proxy = proxy_for(
        "    policy: consistent_hash\n    hash_key: header:X-User\n",
        &b,
        &[1, 1, 1, 1],
    );
    let mut owners = std::collections::HashSet::new();
    for user in 0..24 {
        let header = format!("X-User: user-{user}\r\n");
        let first = who(&proxy, &header);
        for _ in 0..3 {
            assert_eq!(who(&proxy, &header), first, "user-{user} moved");
        }
        owners.insert(first);
    }
    assert!(owners.len() >= 3, "24 users landed on only {owners:?}");
    // Without the header, the client IP is hashed: still one backend.
    let first = who(&proxy, "");
    for _ in 0..5 {
        assert_eq!(who(&proxy, ""), first);
    }
}

#[test]
fn random_reaches_every_backend() {
    let b = backends("rnd", 3);
    let proxy = proxy_for("    policy: random\n", &b, &[1, 1, 1]);
    for _ in 0..90 {
        who(&proxy, "");
    }
    for s in &b {
        assert!(s.hits() >= 10, "{} got {} of 90", s.name, s.hits());
    }
}
