//! Route policies through the real binary, on both HTTP/1 engines: every
//! test runs its requests through `fwd` (the forwarder) and `pingora`
//! (`forwarder: false`). (HTTP/2 clients get the same policies from the
//! same code: `tests/differential` compares them.)

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts switchyard with `server` settings and `routes` on two listeners:
/// the forwarder at `{HTTP}`, Pingora's path at `{TCP}`.
fn start(server: &str, listener_extra: &str, routes: &str, upstreams: &str) -> Proxy {
    Proxy::start(&format!(
        "server: {{ threads: 1{server} }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  fwd:\n    listen: \"{{HTTP}}\"\n{listener_extra}    routes: {routes}\n  pingora:\n    listen: \"{{TCP}}\"\n    forwarder: false\n{listener_extra}    routes: {routes}\nupstreams:\n{upstreams}"
    ))
}

fn engines(p: &Proxy) -> [(&'static str, SocketAddr); 2] {
    [("forwarder", p.http), ("pingora", p.tcp)]
}

fn upstream(b: &[DemoServer]) -> String {
    format!("  u: {{ backends: {} }}\n", backend_list(b))
}

#[test]
fn a_redirect_is_answered_without_a_backend() {
    let b = backends("rd", 1);
    let p = start(
        "",
        "",
        "[{ path_prefix: /old, redirect: { scheme: https } }, \
           { path_prefix: /moved, upstream: u, redirect: { host: new.example, path: /new, strip_query: true, status: 302 } }]",
        &upstream(&b),
    );
    for (engine, addr) in engines(&p) {
        let r = get(addr, "shop.example:8080", "/old/page?x=1");
        assert_eq!(r.status, 308, "{engine}");
        assert_eq!(
            r.header("location"),
            Some("https://shop.example/old/page?x=1"),
            "{engine}"
        );
        let r = get(addr, "shop.example:8080", "/moved/a?b=2");
        assert_eq!(r.status, 302, "{engine}");
        assert_eq!(
            r.header("location"),
            Some("http://new.example:8080/new"),
            "{engine}"
        );
    }
    assert_eq!(b[0].hits(), 0, "no backend is contacted");
}

#[test]
fn header_rules_change_what_each_side_gets() {
    let b = backends("hr", 1);
    let rules = "request_headers: { set: { X-Env: prod }, add: { X-Tag: edge }, remove: [X-Debug] }, \
                 response_headers: { set: { Strict-Transport-Security: \"max-age=63072000\" }, remove: [X-Backend] }";
    let p = start(
        "",
        "",
        &format!("[{{ upstream: u, {rules} }}]"),
        &upstream(&b),
    );
    for (engine, addr) in engines(&p) {
        let r = send(
            addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Env: dev\r\nX-Tag: client\r\nX-Debug: 1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{engine}");
        assert_eq!(r.seen_headers("x-env"), ["prod"], "{engine}");
        assert_eq!(r.seen_headers("x-tag"), ["client", "edge"], "{engine}");
        assert!(r.seen_headers("x-debug").is_empty(), "{engine}");
        // Switchyard's own forwarding headers are still there.
        assert_eq!(
            r.seen_header("x-forwarded-for"),
            Some("127.0.0.1"),
            "{engine}"
        );
        assert_eq!(r.header("x-backend"), None, "{engine}");
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=63072000"),
            "{engine}"
        );
    }
}

#[test]
fn bodies_over_max_body_bytes_get_413_and_nothing_forwarded() {
    let b = backends("mb", 1);
    let p = start(
        ", max_body_bytes: 10",
        "",
        "[{ path_prefix: /big, upstream: u, max_body_bytes: 0 }, { path_prefix: /, upstream: u }]",
        &upstream(&b),
    );
    for (engine, addr) in engines(&p) {
        let r = send(
            addr,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
        );
        assert_eq!(r.status, 413, "{engine}");
        let r = send(
            addr,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhelloworld",
        );
        assert_eq!(r.status, 200, "{engine}");
        // The route lifts the server's limit.
        let r = send(
            addr,
            b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
        );
        assert_eq!(r.status, 200, "{engine}");
    }
    assert_eq!(b[0].hits(), 4, "only the bodies within the limit went on");
}

/// A backend that records every byte each connection sent it, until the
/// proxy closes it.
fn recording_backend() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4) {
            let Ok(mut conn) = conn else { return };
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                record.lock().unwrap().push(got);
            });
        }
    });
    (addr, seen)
}

#[test]
fn a_streamed_body_is_cut_at_the_limit() {
    let (backend, seen) = recording_backend();
    let p = start(
        "",
        "",
        "[{ upstream: u, max_body_bytes: 20 }]",
        &format!("  u: {{ read_timeout: 5s, backends: [{{ addr: \"{backend}\" }}] }}\n"),
    );
    for (engine, addr) in engines(&p) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        s.write_all(b"a\r\n0123456789\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(b"a\r\n0123456789\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // One byte more than the limit.
        let _ = s.write_all(b"1\r\nX\r\n0\r\n\r\n");
        let r = read_response(&mut std::io::BufReader::new(s)).expect("an answer");
        assert_eq!(r.status, 413, "{engine}");
    }
    // The backend connections were closed without the last chunk.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one backend connection per engine");
    for got in seen.iter() {
        let text = String::from_utf8_lossy(got);
        assert!(
            !text.contains('X') && !text.ends_with("0\r\n\r\n"),
            "{text:?}"
        );
    }
}

#[test]
fn allow_and_deny_judge_the_client_ip() {
    let b = backends("ip", 1);
    let p = start(
        "",
        "",
        "[{ path_prefix: /allowed, upstream: u, allow: [127.0.0.0/8], deny: [127.0.0.2/32] }, \
           { path_prefix: /intranet, upstream: u, allow: [10.0.0.0/8] }, \
           { path_prefix: /blocked, upstream: u, deny: [\"127.0.0.1\", \"::1/128\"] }]",
        &upstream(&b),
    );
    for (engine, addr) in engines(&p) {
        assert_eq!(get(addr, "a", "/allowed").status, 200, "{engine}");
        let r = get(addr, "a", "/intranet");
        assert_eq!(r.status, 403, "{engine}");
        assert!(r.body.starts_with("403 Forbidden"), "{engine}: {}", r.body);
        assert_eq!(get(addr, "a", "/blocked").status, 403, "{engine}");
    }
    assert_eq!(b[0].hits(), 2);
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_client_is_judged() {
    let b = backends("tp", 1);
    let p = start(
        ", access_log: \"{DIR}/access.log\"",
        "    trusted_proxies: [127.0.0.0/8]\n",
        "[{ path_prefix: /office, upstream: u, allow: [203.0.113.0/24] }, { path_prefix: /, upstream: u }]",
        &upstream(&b),
    );
    for (engine, addr) in engines(&p) {
        let via = |xff: &str, path: &str| {
            send(
                addr,
                format!("GET {path} HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: {xff}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
        };
        assert_eq!(
            via("198.51.100.1, 203.0.113.9", "/office").status,
            200,
            "{engine}"
        );
        assert_eq!(
            via("203.0.113.9, 198.51.100.1", "/office").status,
            403,
            "{engine}"
        );
        // A trusted hop is skipped over.
        let r = via("203.0.113.9, 127.0.0.5", "/office");
        assert_eq!(r.status, 200, "{engine}");
        // The chain the backend gets still ends with the real peer.
        assert_eq!(
            r.seen_header("x-forwarded-for"),
            Some("203.0.113.9, 127.0.0.5, 127.0.0.1"),
            "{engine}"
        );
        assert_eq!(via("192.0.2.1", "/log-me").status, 200, "{engine}");
    }
    let log = proxy_log_lines(&p, 8);
    let logged: Vec<&str> = log
        .iter()
        .filter(|l| l["path"] == "/log-me")
        .map(|l| l["client_ip"].as_str().unwrap())
        .collect();
    assert_eq!(logged, ["192.0.2.1", "192.0.2.1"], "{log:?}");
}

/// The access log's lines once there are `n`.
fn proxy_log_lines(p: &Proxy, n: usize) -> Vec<serde_json::Value> {
    let path = p.dir.path().join("access.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn max_inflight_turns_away_the_one_too_many() {
    let b = backends("mi", 1);
    let p = start("", "", "[{ upstream: u, max_inflight: 1 }]", &upstream(&b));
    for (engine, addr) in engines(&p) {
        let before = b[0].hits();
        let slow = std::thread::spawn(move || get(addr, "a", "/?sleep_ms=1500").status);
        // Once the backend has the slow request, it holds the only slot.
        let deadline = Instant::now() + Duration::from_secs(5);
        while b[0].hits() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let refused = get(addr, "a", "/");
        assert_eq!(refused.status, 503, "{engine}");
        assert_eq!(refused.header("retry-after"), Some("1"), "{engine}");
        assert_eq!(slow.join().unwrap(), 200, "{engine}");
        // The slot came back when the slow request ended.
        assert_eq!(get(addr, "a", "/").status, 200, "{engine}");
    }
}

#[test]
fn a_route_timeout_answers_504_in_time() {
    let b = backends("to", 1);
    let p = start("", "", "[{ upstream: u, timeout: 300ms }]", &upstream(&b));
    for (engine, addr) in engines(&p) {
        let started = Instant::now();
        let r = get(addr, "a", "/?sleep_ms=3000");
        assert_eq!(r.status, 504, "{engine}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{engine}: {:?}",
            started.elapsed()
        );
        assert_eq!(get(addr, "a", "/?sleep_ms=10").status, 200, "{engine}");
    }
}

#[test]
fn request_ids_reach_the_backend_the_client_and_the_log() {
    let b = backends("id", 1);
    let p = start(
        ", access_log: \"{DIR}/access.log\", request_id: { header: X-Request-Id }",
        "",
        "[{ path_prefix: /app, upstream: u }]",
        &upstream(&b),
    );
    for (engine, addr) in engines(&p) {
        let r = send(
            addr,
            b"GET /app HTTP/1.1\r\nHost: a\r\nX-Request-Id: from-client\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{engine}");
        let id = r.header("x-request-id").expect("an id on the response");
        assert_eq!(id.len(), 36, "{engine}: a generated UUID, not the client's");
        assert_eq!(r.seen_headers("x-request-id"), [id], "{engine}");
        // Switchyard's own answers carry one too.
        let r = get(addr, "a", "/nowhere");
        assert_eq!(r.status, 404, "{engine}");
        assert_eq!(r.header("x-request-id").map(str::len), Some(36), "{engine}");
    }
    let log = proxy_log_lines(&p, 4);
    assert!(
        log.iter()
            .all(|l| l["request_id"].as_str().is_some_and(|s| s.len() == 36)),
        "{log:?}"
    );
}

#[test]
fn a_trusted_incoming_id_is_kept() {
    let b = backends("ti", 1);
    let p = start(
        ", request_id: { trust_incoming: true }",
        "",
        "[{ upstream: u }]",
        &upstream(&b),
    );
    for (engine, addr) in engines(&p) {
        let r = send(
            addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: trace-42\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.header("x-request-id"), Some("trace-42"), "{engine}");
        assert_eq!(r.seen_headers("x-request-id"), ["trace-42"], "{engine}");
    }
}
