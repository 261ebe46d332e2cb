//! Retries by policy through the real binary, each case on both engines:
//! the forwarder (`fwd`) and Pingora's path (`forwarder: false`). Backends
//! are scripted (`retries/script.rs`): one fails a set way, one answers.

mod common;
#[path = "retries/script.rs"]
mod script;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::daemon::wait_until;
use common::*;
use script::{dead, Act, Backend};

/// Switchyard with upstream `u` (its keys in `upstream`, indented four
/// spaces) behind a forwarder listener and a Pingora one.
fn start(upstream: &str) -> Proxy {
    Proxy::start(&format!(
        "server: {{ threads: 1 }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  fwd:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\n  pingora:\n    listen: \"{{TCP}}\"\n    forwarder: false\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n{upstream}"
    ))
}

fn engines(p: &Proxy) -> [(&'static str, SocketAddr); 2] {
    [("forwarder", p.http), ("pingora", p.tcp)]
}

/// `method /` with a body of `body_len` bytes.
fn request(addr: SocketAddr, method: &str, body_len: usize) -> Response {
    let mut raw = format!(
        "{method} / HTTP/1.1\r\nHost: a\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    raw.resize(raw.len() + body_len, b'x');
    send(addr, &raw)
}

fn retries(p: &Proxy, reason: &str) -> f64 {
    let labels = [("upstream", "u"), ("reason", reason)];
    p.metric("switchyard_upstream_retries_total", &labels)
        .unwrap_or(0.0)
}

fn exhausted(p: &Proxy) -> f64 {
    p.metric(
        "switchyard_retry_budget_exhausted_total",
        &[("upstream", "u")],
    )
    .unwrap_or(0.0)
}

#[test]
fn each_trigger_is_retried_on_another_backend() {
    let cases = [
        ("connect_failure", None),
        ("reset", Some(Act::Reset)),
        ("timeout", Some(Act::Hang(Duration::from_secs(3)))),
        ("502", Some(Act::Status(502, None))),
        ("503", Some(Act::Status(503, None))),
        ("504", Some(Act::Status(504, None))),
    ];
    for (reason, act) in cases {
        let good = Backend::start("good", Act::Good);
        let bad = act.map(|a| Backend::start("bad", a));
        let bad_yaml = bad.as_ref().map_or_else(dead, |b| b.yaml());
        let p = start(&format!(
            "    retries: 1\n    retry_on: [{reason}]\n    read_timeout: 300ms\n    backends: [{bad_yaml}, {}]\n",
            good.yaml()
        ));
        for (engine, addr) in engines(&p) {
            let before = retries(&p, reason);
            let bad_before = bad.as_ref().map_or(0, |b| b.hits());
            for i in 0..4 {
                let r = request(addr, "GET", 0);
                assert_eq!(r.status, 200, "{reason} {engine} #{i}: {}", r.body);
                assert_eq!(r.body, "good good len=0", "{reason} {engine}");
                // A replayed body arrives whole.
                let r = request(addr, "PUT", 1000);
                assert_eq!(r.status, 200, "{reason} {engine} PUT #{i}: {}", r.body);
                assert_eq!(r.body, "good good len=1000", "{reason} {engine}");
            }
            let retried = retries(&p, reason) - before;
            assert!(retried >= 1.0, "{reason} {engine}: retried {retried}");
            if let Some(bad) = &bad {
                let tried = (bad.hits() - bad_before) as f64;
                assert_eq!(tried, retried, "{reason} {engine}: each failure retried");
            }
        }
    }
}

#[test]
fn unsafe_or_unkept_requests_and_unlisted_statuses_are_not_retried() {
    let good = Backend::start("good", Act::Good);
    let bad = Backend::start("bad", Act::Status(503, None));
    let p = start(&format!(
        "    retries: 1\n    retry_on: [502, \"503\"]\n    backends: [{}, {}]\n",
        bad.yaml(),
        good.yaml()
    ));
    for (engine, addr) in engines(&p) {
        // POST: not idempotent. PUT of 70 KiB: more than is kept.
        for (method, len) in [("POST", 10), ("PUT", 70 * 1024)] {
            let statuses: Vec<u16> = (0..4).map(|_| request(addr, method, len).status).collect();
            assert!(statuses.contains(&503), "{engine} {method}: {statuses:?}");
            assert!(statuses.iter().all(|s| [200, 503].contains(s)), "{engine}");
        }
    }
    assert_eq!(retries(&p, "503"), 0.0);
    drop(p);

    // A status retry_on does not name is passed on.
    let p = start(&format!(
        "    retries: 1\n    retry_on: [connect_failure, 502]\n    backends: [{}, {}]\n",
        bad.yaml(),
        good.yaml()
    ));
    for (engine, addr) in engines(&p) {
        let bodies: Vec<String> = (0..4).map(|_| request(addr, "GET", 0).body).collect();
        assert!(
            bodies.iter().any(|b| b == "503 from bad"),
            "{engine}: {bodies:?}"
        );
    }
    assert_eq!(retries(&p, "503"), 0.0);
}

/// Reads everything the proxy sends for a GET, until it closes.
fn raw_get(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn nothing_is_retried_once_the_response_started() {
    let good = Backend::start("good", Act::Good);
    let bad = Backend::start("bad", Act::Partial);
    let p = start(&format!(
        "    retries: 1\n    retry_on: [connect_failure, reset, timeout, 502, 503, 504]\n    backends: [{}, {}]\n",
        bad.yaml(),
        good.yaml()
    ));
    let mut cut = 0;
    for (engine, addr) in engines(&p) {
        for _ in 0..4 {
            let got = raw_get(addr);
            assert!(got.starts_with("HTTP/1.1 200"), "{engine}: {got}");
            if got.contains("0123456789") {
                cut += 1;
                assert!(!got.contains("good"), "{engine}: {got}");
            }
        }
    }
    assert!(cut >= 2, "the cut backend was tried");
    assert_eq!(
        good.hits() + bad.hits(),
        8,
        "no request went to two backends"
    );
    assert_eq!(retries(&p, "reset"), 0.0);
}

#[test]
fn the_budget_stops_retries_under_a_failing_upstream() {
    let a = Backend::start("a", Act::Status(503, None));
    let b = Backend::start("b", Act::Status(503, None));
    let p = start(&format!(
        "    retries: 1\n    retry_on: [503]\n    retry_budget: 0%\n    backends: [{}, {}]\n",
        a.yaml(),
        b.yaml()
    ));
    let n = 60;
    for i in 0..n {
        let (engine, addr) = engines(&p)[i % 2];
        let r = request(addr, "GET", 0);
        assert_eq!(r.status, 503, "{engine}");
        assert!(
            r.body.ends_with("from a") || r.body.ends_with("from b"),
            "{engine}: {}",
            r.body
        );
    }
    let (made, refused) = (retries(&p, "503"), exhausted(&p));
    assert_eq!(made + refused, n as f64, "one retry decision per request");
    // The floor is 30 retries in 10 s; these requests took far less.
    assert!(made >= 30.0, "made {made}");
    assert!(refused >= 10.0, "refused {refused}");
}

fn held_secs(p: &Proxy, backend: usize) -> u64 {
    let status: serde_json::Value =
        serde_json::from_str(&get(p.admin, "admin", "/status").body).unwrap();
    status["upstreams"]["u"]["backends"][backend]["retry_after_secs"]
        .as_u64()
        .unwrap()
}

#[test]
fn retry_after_keeps_new_requests_off_a_backend_for_a_while() {
    let busy = Backend::start("busy", Act::Status(503, Some("2")));
    let good = Backend::start("good", Act::Good);
    let p = start(&format!(
        "    backends: [{}, {}]\n",
        busy.yaml(),
        good.yaml()
    ));
    for (engine, addr) in engines(&p) {
        assert!(
            wait_until(Duration::from_secs(10), || held_secs(&p, 0) == 0),
            "{engine}: the previous hold ends"
        );
        // Round robin reaches the busy backend within two requests; its 503
        // is passed on (retry_on is connect_failure only).
        let first = (0..2)
            .map(|_| request(addr, "GET", 0))
            .find(|r| r.status == 503);
        let first = first.unwrap_or_else(|| panic!("{engine}: busy never answered"));
        assert_eq!(first.header("retry-after"), Some("2"), "{engine}");
        let since = Instant::now();
        let hits = busy.hits();
        assert!(held_secs(&p, 0) >= 1, "{engine}: /status shows the hold");
        for _ in 0..5 {
            let r = request(addr, "GET", 0);
            if since.elapsed() < Duration::from_millis(1500) {
                assert_eq!(r.status, 200, "{engine}: held off");
            }
        }
        if since.elapsed() < Duration::from_millis(1500) {
            assert_eq!(busy.hits(), hits, "{engine}: no new request while held");
        }
        // Then it gets traffic again.
        let back = wait_until(Duration::from_secs(10), || {
            request(addr, "GET", 0);
            busy.hits() > hits
        });
        assert!(back, "{engine}: traffic again after the hold");
        assert!(since.elapsed() >= Duration::from_secs(1), "{engine}");
    }
}

#[test]
fn http2_clients_get_the_same_retries() {
    let good = Backend::start("good", Act::Good);
    let bad = Backend::start("bad", Act::Status(503, None));
    let p = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    retries: 1\n    retry_on: [503]\n    backends: [{}, {}]\n",
        bad.yaml(),
        good.yaml()
    ));
    let url = format!("http://{}/", p.http);
    let body = "y".repeat(1000);
    for i in 0..4 {
        let (ok, out, err) = curl(&["--http2-prior-knowledge", &url]);
        assert!(ok, "{err}");
        assert_eq!(out, "good good len=0", "GET #{i}");
        let put = [
            "--http2-prior-knowledge",
            "-X",
            "PUT",
            "--data-binary",
            &body,
            &url,
        ];
        let (ok, out, err) = curl(&put);
        assert!(ok, "{err}");
        assert_eq!(out, "good good len=1000", "PUT #{i}");
    }
    assert!(bad.hits() >= 2, "the failing backend was tried");
    assert_eq!(retries(&p, "503"), bad.hits() as f64);
}
