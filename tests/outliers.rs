//! Outlier detection through the real binary: each ejection reason, the
//! return after `base_ejection`, and the `max_ejected` cap. The 5xx and
//! latency cases run on both engines: the forwarder at `{HTTP}` and Pingora's
//! path (`forwarder: false`) at `{TCP}`, each with its own upstream and
//! backends so their ejections cannot mix.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Engine {
    Forwarder,
    Pingora,
}

/// Switchyard with one listener of `engine` routing everything to upstream
/// `u` over `backends` with `outlier_detection: { detection }`.
fn start(engine: Engine, backends: &str, detection: &str) -> (Proxy, SocketAddr) {
    let (listen, extra) = match engine {
        Engine::Forwarder => ("{HTTP}", ""),
        Engine::Pingora => ("{TCP}", "    forwarder: false\n"),
    };
    let p = Proxy::start(&format!(
        "server: {{ threads: 2 }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\n\
         listeners:\n  web:\n    listen: \"{listen}\"\n{extra}    routes: [{{ upstream: u }}]\n\
         upstreams:\n  u:\n    backends: {backends}\n    outlier_detection: {{ {detection} }}\n"
    ));
    let addr = match engine {
        Engine::Forwarder => p.http,
        Engine::Pingora => p.tcp,
    };
    (p, addr)
}

fn ejected(p: &Proxy, backend: &str) -> f64 {
    p.metric(
        "switchyard_backend_ejected",
        &[("upstream", "u"), ("backend", backend)],
    )
    .unwrap_or(-1.0)
}

fn ejections(p: &Proxy, backend: &str, reason: &str) -> f64 {
    p.metric(
        "switchyard_outlier_ejections_total",
        &[("upstream", "u"), ("backend", backend), ("reason", reason)],
    )
    .unwrap_or(0.0)
}

/// The `/status` entry of `backend`.
fn status_of(p: &Proxy, backend: &str) -> serde_json::Value {
    let status: serde_json::Value =
        serde_json::from_str(&get(p.admin, "admin", "/status").body).expect("status JSON");
    status["upstreams"]["u"]["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|b| b["addr"] == backend)
        .cloned()
        .expect("the backend in /status")
}

/// Sends GETs until `done` holds (checked every `batch` requests) or 20 s
/// pass; true if it held.
fn send_until(addr: SocketAddr, batch: usize, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for _ in 0..batch {
            get(addr, "outliers.test", "/");
        }
        if done() {
            return true;
        }
    }
    false
}

fn consecutive_5xx_eject(engine: Engine) {
    let b = backends("5xx", 3);
    let (p, addr) = start(
        engine,
        &backend_list(&b),
        "consecutive_5xx: 3, consecutive_gateway_failures: 0, latency_factor: 0, base_ejection: 1m",
    );
    b[0].state.force_status(Some(500));
    let bad = b[0].addr.to_string();
    let mut answers = Vec::new();
    for _ in 0..9 {
        answers.push(get(addr, "outliers.test", "/").status);
    }
    assert_eq!(
        answers.iter().filter(|&&s| s == 500).count(),
        3,
        "{engine:?}: {answers:?}"
    );
    assert_eq!(ejected(&p, &bad), 1.0, "{engine:?}:\n{}", p.log());
    let hits = b[0].hits();
    for _ in 0..30 {
        assert_eq!(get(addr, "outliers.test", "/").status, 200, "{engine:?}");
    }
    assert_eq!(
        b[0].hits(),
        hits,
        "{engine:?}: no request reaches an ejected backend"
    );
    assert_eq!(ejections(&p, &bad, "5xx"), 1.0, "{engine:?}");
    assert_eq!(ejections(&p, &bad, "gateway"), 0.0, "{engine:?}");
    let s = status_of(&p, &bad);
    assert_eq!(s["ejected"], true, "{engine:?}: {s}");
    assert_eq!(s["ejections"], 1, "{engine:?}: {s}");
    assert_eq!(status_of(&p, &b[1].addr.to_string())["ejected"], false);
    assert!(
        p.log().contains("ejected for 60s (5xx, ejection 1)"),
        "{}",
        p.log()
    );
}

#[test]
fn consecutive_5xx_eject_a_backend_on_the_forwarder() {
    consecutive_5xx_eject(Engine::Forwarder);
}

#[test]
fn consecutive_5xx_eject_a_backend_on_pingoras_path() {
    consecutive_5xx_eject(Engine::Pingora);
}

#[test]
fn connect_failures_eject_as_gateway_failures() {
    let b = backends("gw", 2);
    let dead = format!("127.0.0.1:{}", free_port());
    let list = format!(
        "[{{ addr: \"{}\" }}, {{ addr: \"{dead}\" }}, {{ addr: \"{}\" }}]",
        b[0].addr, b[1].addr
    );
    let (p, addr) = start(
        Engine::Forwarder,
        &list,
        "consecutive_5xx: 0, consecutive_gateway_failures: 2, latency_factor: 0",
    );
    // Each failed connect is retried on another backend: clients see 200s.
    for _ in 0..12 {
        assert_eq!(get(addr, "outliers.test", "/").status, 200);
    }
    assert_eq!(ejected(&p, &dead), 1.0, "{}", p.log());
    assert_eq!(ejections(&p, &dead, "gateway"), 1.0);
    let refused = p.log().matches("failed").count();
    for _ in 0..12 {
        assert_eq!(get(addr, "outliers.test", "/").status, 200);
    }
    assert_eq!(
        p.log().matches("failed").count(),
        refused,
        "no connect is tried while ejected"
    );
}

fn latency_ejection(engine: Engine) {
    let b = backends("slow", 3);
    let (p, addr) = start(
        engine,
        &backend_list(&b),
        "consecutive_5xx: 0, consecutive_gateway_failures: 0, latency_factor: 3, interval: 1s, base_ejection: 1m",
    );
    b[1].state.force_delay(Some(Duration::from_millis(30)));
    let slow = b[1].addr.to_string();
    assert!(
        send_until(addr, 30, || ejected(&p, &slow) == 1.0),
        "{engine:?}: the slow backend was not ejected:\n{}",
        p.log()
    );
    assert_eq!(ejections(&p, &slow, "latency"), 1.0, "{engine:?}");
    for fast in [&b[0], &b[2]] {
        assert_eq!(ejected(&p, &fast.addr.to_string()), 0.0, "{engine:?}");
    }
    let hits = b[1].hits();
    for _ in 0..30 {
        assert_eq!(get(addr, "outliers.test", "/").status, 200);
    }
    assert_eq!(
        b[1].hits(),
        hits,
        "{engine:?}: the slow backend gets nothing"
    );
    assert!(p.log().contains("the others'"), "{}", p.log());
}

#[test]
fn a_slow_backend_is_ejected_on_the_forwarder() {
    latency_ejection(Engine::Forwarder);
}

#[test]
fn a_slow_backend_is_ejected_on_pingoras_path() {
    latency_ejection(Engine::Pingora);
}

#[test]
fn an_ejected_backend_returns_after_base_ejection() {
    let b = backends("back", 3);
    let (p, addr) = start(
        Engine::Forwarder,
        &backend_list(&b),
        "consecutive_5xx: 2, latency_factor: 0, base_ejection: 1s",
    );
    b[2].state.force_status(Some(503));
    let flaky = b[2].addr.to_string();
    assert!(send_until(addr, 6, || ejected(&p, &flaky) == 1.0));
    b[2].state.force_status(None);
    let hits = b[2].hits();
    assert!(
        send_until(addr, 6, || b[2].hits() > hits),
        "the backend never came back:\n{}",
        p.log()
    );
    assert_eq!(ejected(&p, &flaky), 0.0);
    let s = status_of(&p, &flaky);
    assert_eq!(
        (s["ejected"].clone(), s["ejections"].clone()),
        (false.into(), 1.into())
    );
    assert!(p.log().contains("returns from ejection"), "{}", p.log());
}

#[test]
fn max_ejected_keeps_the_cap() {
    let b = backends("cap", 3);
    let (p, addr) = start(
        Engine::Forwarder,
        &backend_list(&b),
        "consecutive_5xx: 2, latency_factor: 0, max_ejected: 50%, base_ejection: 1m",
    );
    b[0].state.force_status(Some(500));
    b[1].state.force_status(Some(500));
    for _ in 0..30 {
        get(addr, "outliers.test", "/");
    }
    let bad = [b[0].addr.to_string(), b[1].addr.to_string()];
    let out: Vec<f64> = bad.iter().map(|a| ejected(&p, a)).collect();
    assert_eq!(out.iter().sum::<f64>(), 1.0, "one of the two: {out:?}");
    // The other failing backend still takes its share.
    let kept = if out[0] == 1.0 { &b[1] } else { &b[0] };
    let hits = kept.hits();
    for _ in 0..10 {
        get(addr, "outliers.test", "/");
    }
    assert!(kept.hits() > hits, "the capped backend is still used");
    assert_eq!(ejected(&p, &b[2].addr.to_string()), 0.0);
}

fn get_with(addr: SocketAddr, header: &str) -> Response {
    send(
        addr,
        format!("GET / HTTP/1.1\r\nHost: outliers.test\r\n{header}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn sticky_clients_and_hash_keys_leave_an_ejected_backend() {
    let b = backends("pin", 3);
    let p = Proxy::start(&format!(
        "server: {{ threads: 2 }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\n\
         listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u, sticky: {{ cookie: SY }} }}]\n\
         \x20 ring:\n    listen: \"{{TCP}}\"\n    routes: [{{ upstream: h }}]\n\
         upstreams:\n  u:\n    backends: {list}\n    outlier_detection: {{ consecutive_5xx: 1, latency_factor: 0 }}\n\
         \x20 h:\n    policy: consistent_hash\n    hash_key: header:X-Key\n    backends: {list}\n\
         \x20   outlier_detection: {{ consecutive_5xx: 1, latency_factor: 0 }}\n",
        list = backend_list(&b)
    ));
    // Sticky: the pinned backend fails once, is ejected, and the cookie
    // moves its client to another one.
    let first = p.get("outliers.test", "/");
    let cookie = first
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a sticky cookie")
        .to_owned();
    let owner = first.backend().expect("a backend").to_owned();
    let pinned = b.iter().find(|s| s.name == owner).expect("owner");
    pinned.state.force_status(Some(500));
    let cookie_line = format!("Cookie: {cookie}");
    assert_eq!(get_with(p.http, &cookie_line).status, 500);
    let moved = get_with(p.http, &cookie_line);
    assert_eq!(moved.status, 200);
    assert_ne!(moved.backend(), Some(owner.as_str()));
    assert!(moved.header("set-cookie").is_some(), "re-pinned");
    pinned.state.force_status(None);

    // consistent_hash: the key's backend fails once; the key goes elsewhere.
    let key_line = "X-Key: some-client";
    let home = get_with(p.tcp, key_line)
        .backend()
        .expect("a backend")
        .to_owned();
    assert_eq!(
        get_with(p.tcp, key_line).backend(),
        Some(home.as_str()),
        "stable"
    );
    let ring_home = b.iter().find(|s| s.name == home).expect("home");
    ring_home.state.force_status(Some(502));
    assert_eq!(get_with(p.tcp, key_line).status, 502);
    ring_home.state.force_status(None);
    let hits = ring_home.hits();
    for _ in 0..5 {
        let r = get_with(p.tcp, key_line);
        assert_eq!(r.status, 200);
        assert_ne!(r.backend(), Some(home.as_str()));
    }
    assert_eq!(ring_home.hits(), hits);
}
