//! The SPEC's status table through the real binary: 404, 502, 503, 504,
//! CONNECT 405, retries on connect failure, and bodies that leak nothing.

mod common;
use common::*;

/// Loopback addresses where nothing listens: privileged ports no test binds
/// (an ephemeral port, once released, could be taken by another test's listener).
fn dead_addrs() -> (String, String, String) {
    (
        "127.0.0.1:1".into(),
        "127.0.0.1:2".into(),
        "127.0.0.1:3".into(),
    )
}

fn dead_addr() -> String {
    dead_addrs().0
}

fn proxy_for(upstreams: &str, routes: &str) -> Proxy {
    Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n{routes}\nupstreams:\n{upstreams}\n"
    ))
}

#[test]
fn no_route_is_404_with_a_short_text_body() {
    let live = backends("live", 1);
    let proxy = proxy_for(
        &format!("  u: {{ backends: {} }}", backend_list(&live)),
        "      - { host: only.example, upstream: u }",
    );
    let r = proxy.get("other.example", "/");
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(r.body, "404 Not Found\n");
    assert_eq!(live[0].hits(), 0);
}

#[test]
fn connect_failure_on_every_backend_is_502_after_retries() {
    let (a, b, c) = dead_addrs();
    let proxy = proxy_for(
        &format!("  dead: {{ retries: 1, backends: [{{ addr: \"{a}\" }}, {{ addr: \"{b}\" }}, {{ addr: \"{c}\" }}] }}"),
        "      - { upstream: dead }",
    );
    let r = proxy.get("x", "/");
    assert_eq!(r.status, 502);
    assert_eq!(r.body, "502 Bad Gateway\n");
    for addr in [&a, &b, &c] {
        assert!(!r.body.contains(addr.as_str()));
    }
    // 1 + retries backends were tried, one retry counted.
    let sent: f64 = [&a, &b, &c]
        .iter()
        .filter_map(|addr| {
            proxy.metric(
                "switchyard_backend_requests_total",
                &[("upstream", "dead"), ("backend", addr)],
            )
        })
        .sum();
    assert_eq!(sent, 2.0);
    assert_eq!(
        proxy.metric(
            "switchyard_upstream_retries_total",
            &[("upstream", "dead"), ("reason", "connect_failure")],
        ),
        Some(1.0)
    );
}

#[test]
fn a_dead_backend_costs_no_failed_request_when_retries_allow() {
    let live = backends("live", 2);
    let dead = dead_addr();
    let proxy = proxy_for(
        &format!(
            "  u: {{ retries: 1, backends: [{{ addr: \"{dead}\" }}, {{ addr: \"{}\" }}, {{ addr: \"{}\" }}] }}",
            live[0].addr, live[1].addr
        ),
        "      - { upstream: u }",
    );
    for _ in 0..12 {
        let r = proxy.get("x", "/");
        assert_eq!(r.status, 200, "{}", proxy.log());
        assert!(r.backend().unwrap().starts_with("live-"));
    }
    assert_eq!(live[0].hits() + live[1].hits(), 12);
    assert!(
        proxy
            .metric(
                "switchyard_upstream_retries_total",
                &[("upstream", "u"), ("reason", "connect_failure")],
            )
            .unwrap()
            >= 3.0
    );
}

#[test]
fn nothing_selectable_is_503() {
    let live = backends("drained", 1);
    let proxy = proxy_for(
        &format!(
            "  u: {{ backends: [{{ addr: \"{}\", weight: 0 }}] }}",
            live[0].addr
        ),
        "      - { upstream: u }",
    );
    let r = proxy.get("x", "/");
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "503 Service Unavailable\n");
    assert_eq!(live[0].hits(), 0);
}

#[test]
fn slow_backend_is_504_after_read_timeout() {
    let slow = backends("slow", 1);
    let proxy = proxy_for(
        &format!(
            "  u: {{ read_timeout: 300ms, backends: {} }}",
            backend_list(&slow)
        ),
        "      - { upstream: u }",
    );
    let started = std::time::Instant::now();
    let r = proxy.get("x", "/?sleep_ms=3000");
    assert_eq!(r.status, 504);
    assert_eq!(r.body, "504 Gateway Timeout\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // A response within the timeout is fine.
    assert_eq!(proxy.get("x", "/?sleep_ms=10").status, 200);
}

#[test]
fn connect_is_405() {
    let live = backends("live", 1);
    let proxy = proxy_for(
        &format!("  u: {{ backends: {} }}", backend_list(&live)),
        "      - { upstream: u }",
    );
    let target = live[0].addr.to_string();
    let r = send(
        proxy.http,
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 405);
    assert_eq!(live[0].hits(), 0);
}

#[test]
fn statuses_are_counted_per_route() {
    let live = backends("live", 1);
    let proxy = proxy_for(
        &format!("  u: {{ backends: {} }}", backend_list(&live)),
        "      - { name: main, host: a.example, upstream: u }",
    );
    proxy.get("a.example", "/");
    proxy.get("a.example", "/?status=500");
    proxy.get("nowhere.example", "/");
    let m = |labels: &[(&str, &str)]| proxy.metric("switchyard_http_requests_total", labels);
    assert_eq!(
        m(&[
            ("listener", "web"),
            ("route", "main"),
            ("upstream", "u"),
            ("status", "200")
        ]),
        Some(1.0)
    );
    assert_eq!(
        m(&[
            ("listener", "web"),
            ("route", "main"),
            ("upstream", "u"),
            ("status", "500")
        ]),
        Some(1.0)
    );
    assert_eq!(
        m(&[
            ("listener", "web"),
            ("route", ""),
            ("upstream", ""),
            ("status", "404")
        ]),
        Some(1.0)
    );
    assert_eq!(
        proxy.metric(
            "switchyard_http_request_duration_seconds_count",
            &[("listener", "web"), ("route", "main"), ("upstream", "u")]
        ),
        Some(2.0)
    );
}
