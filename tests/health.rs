//! Active health checks, failover, draining and slow start through the real
//! binary, against demo backends whose health the test flips.

mod common;
use common::*;

use std::time::{Duration, Instant};

fn upstream_config(name: &str, servers: &[&DemoServer], extra: &str) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|s| format!("{{ addr: \"{}\" }}", s.addr))
        .collect();
    format!("  {name}:\n    backends: [{}]\n{extra}", list.join(", "))
}

fn proxy_with(upstreams: &str, routes: &str) -> Proxy {
    Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n{routes}\nupstreams:\n{upstreams}"
    ))
}

/// `up` of one backend as `/status` reports it.
fn is_up(proxy: &Proxy, upstream: &str, addr: &str) -> bool {
    let status = get(proxy.admin, "a", "/status");
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    json["upstreams"][upstream]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["addr"] == addr)
        .map(|b| b["up"] == true)
        .unwrap()
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn checks_run_at_the_configured_interval_on_the_configured_path() {
    let b = backends("hc", 2);
    let proxy = proxy_with(
        &upstream_config(
            "u",
            &[&b[0], &b[1]],
            "    health_check: { type: http, path: /healthz, interval: 200ms, timeout: 100ms }\n",
        ),
        "      - { upstream: u }",
    );
    std::thread::sleep(Duration::from_millis(2100));
    for s in &b {
        let arrivals = s.state.arrivals("/healthz");
        assert!(
            (6..=14).contains(&arrivals.len()),
            "{} checks in ~2s at 200ms: {arrivals:?}",
            arrivals.len()
        );
        let mut gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort();
        let median = gaps[gaps.len() / 2];
        assert!(
            median >= Duration::from_millis(150) && median <= Duration::from_millis(350),
            "median gap {median:?}"
        );
    }
    drop(proxy);
}

#[test]
fn a_failing_backend_is_ejected_after_fall_and_readmitted_after_rise() {
    let b = backends("flip", 2);
    let proxy = proxy_with(
        &upstream_config(
            "u",
            &[&b[0], &b[1]],
            "    health_check: { type: http, path: /healthz, interval: 100ms, timeout: 100ms, unhealthy_threshold: 3, healthy_threshold: 2 }\n",
        ),
        "      - { upstream: u }",
    );
    let addr = b[0].addr.to_string();
    assert!(is_up(&proxy, "u", &addr));

    let since = Instant::now();
    b[0].state.force_status(Some(503));
    assert!(
        wait_for(Duration::from_secs(5), || !is_up(&proxy, "u", &addr)),
        "never marked down"
    );
    let failed_checks = b[0]
        .state
        .arrivals("/healthz")
        .iter()
        .filter(|t| **t >= since)
        .count();
    assert!(
        failed_checks >= 3,
        "marked down after {failed_checks} failed checks"
    );
    assert_eq!(
        proxy.metric(
            "switchyard_backend_up",
            &[("upstream", "u"), ("backend", &addr)]
        ),
        Some(0.0)
    );

    // While down, traffic goes only to the healthy backend.
    let before = b[0].hits();
    let checks_before = b[0].state.arrivals("/healthz").len();
    for _ in 0..10 {
        let r = proxy.get("x", "/work");
        assert_eq!(r.status, 200);
        assert_eq!(r.backend(), Some("flip-2"));
    }
    let requests_to_down =
        (b[0].hits() - before) - (b[0].state.arrivals("/healthz").len() - checks_before);
    assert_eq!(requests_to_down, 0);

    let since = Instant::now();
    b[0].state.force_status(None);
    assert!(
        wait_for(Duration::from_secs(5), || is_up(&proxy, "u", &addr)),
        "never back up"
    );
    let passed = b[0]
        .state
        .arrivals("/healthz")
        .iter()
        .filter(|t| **t >= since)
        .count();
    assert!(passed >= 2, "back up after {passed} passing checks");
    assert!(
        proxy.log().contains("is DOWN") && proxy.log().contains("is UP"),
        "{}",
        proxy.log()
    );
}

#[test]
fn expect_status_is_honoured() {
    let b = backends("exp", 2);
    let proxy = proxy_with(
        &format!(
            "{}{}",
            upstream_config(
                "ok204",
                &[&b[0]],
                "    health_check: { type: http, path: \"/healthz?status=204\", expect_status: 204, interval: 100ms, unhealthy_threshold: 1 }\n",
            ),
            upstream_config(
                "want200",
                &[&b[1]],
                "    health_check: { type: http, path: \"/healthz?status=204\", expect_status: 200, interval: 100ms, unhealthy_threshold: 1 }\n",
            )
        ),
        "      - { host: a, upstream: ok204 }\n      - { host: b, upstream: want200 }",
    );
    assert!(wait_for(Duration::from_secs(5), || !is_up(
        &proxy,
        "want200",
        &b[1].addr.to_string()
    )));
    std::thread::sleep(Duration::from_millis(300));
    assert!(is_up(&proxy, "ok204", &b[0].addr.to_string()));
    assert_eq!(proxy.get("a", "/").status, 200);
    assert_eq!(proxy.get("b", "/").status, 503);
}

#[test]
fn tcp_checks_eject_a_dead_address_and_all_down_is_503() {
    let live = backends("tcp", 1);
    let dead = format!("127.0.0.1:{}", free_port());
    let proxy = proxy_with(
        &format!(
            "  u:\n    retries: 0\n    backends: [{{ addr: \"{}\" }}, {{ addr: \"{dead}\" }}]\n    health_check: {{ type: tcp, interval: 100ms, unhealthy_threshold: 1 }}\n",
            live[0].addr
        ),
        "      - { upstream: u }",
    );
    assert!(wait_for(Duration::from_secs(5), || !is_up(
        &proxy, "u", &dead
    )));
    // With retries 0, any request sent to the dead address would fail: none is.
    for _ in 0..10 {
        assert_eq!(proxy.get("x", "/").status, 200);
    }
    let live_addr = live[0].addr.to_string();
    drop(live);
    assert!(wait_for(Duration::from_secs(5), || !is_up(
        &proxy, "u", &live_addr
    )));
    assert_eq!(proxy.get("x", "/").status, 503);
}

#[test]
fn a_backend_killed_under_load_costs_no_failed_request() {
    let mut b = backends("kill", 3);
    let proxy = proxy_with(
        &upstream_config(
            "u",
            &[&b[0], &b[1], &b[2]],
            "    retries: 2\n    health_check: { type: tcp, interval: 200ms, unhealthy_threshold: 2 }\n",
        ),
        "      - { upstream: u }",
    );
    let http = proxy.http;
    let stop = Instant::now() + Duration::from_secs(3);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while Instant::now() < stop && statuses.len() < 2000 {
                    statuses.push(get(http, "x", "/").status);
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    drop(b.remove(0)); // the backend dies: listener and connections gone
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(statuses.len() > 100, "only {} requests", statuses.len());
    assert_eq!(failed, 0, "{failed} of {} requests failed", statuses.len());
}

#[test]
fn draining_backends_take_no_new_requests() {
    let b = backends("drain", 2);
    let proxy = proxy_with(
        &format!(
            "  u:\n    backends: [{{ addr: \"{}\", weight: 0 }}, {{ addr: \"{}\" }}]\n",
            b[0].addr, b[1].addr
        ),
        "      - { upstream: u }",
    );
    for _ in 0..10 {
        assert_eq!(proxy.get("x", "/").backend(), Some("drain-2"));
    }
    assert_eq!(b[0].hits(), 0);
}

#[test]
fn slow_start_ramps_a_recovered_backend() {
    let b = backends("ramp", 2);
    let proxy = proxy_with(
        &upstream_config(
            "u",
            &[&b[0], &b[1]],
            "    slow_start: 3s\n    health_check: { type: http, path: /healthz, interval: 100ms, unhealthy_threshold: 1, healthy_threshold: 1 }\n",
        ),
        "      - { upstream: u }",
    );
    let addr = b[0].addr.to_string();
    b[0].state.force_status(Some(500));
    assert!(wait_for(Duration::from_secs(5), || !is_up(
        &proxy, "u", &addr
    )));
    b[0].state.force_status(None);
    assert!(wait_for(Duration::from_secs(5), || is_up(
        &proxy, "u", &addr
    )));

    let share = |n: usize| {
        let hits = (0..n)
            .filter(|_| proxy.get("x", "/").backend() == Some("ramp-1"))
            .count();
        hits as f64 / n as f64
    };
    // Right after recovery: well under its normal half.
    let early = share(100);
    std::thread::sleep(Duration::from_millis(3200));
    let late = share(100);
    assert!(early < 0.35, "early share {early}");
    assert!(late > 0.4, "late share {late}");
}
