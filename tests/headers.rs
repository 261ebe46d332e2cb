//! What the backend sees and what the client gets back: forwarding headers,
//! Host, hop-by-hop headers, and bodies streamed both ways.

mod common;
use common::*;

fn proxy() -> (Proxy, Vec<DemoServer>) {
    let b = backends("h", 1);
    let p = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(&b)
    ));
    (p, b)
}

#[test]
fn forwarding_headers_are_set_and_host_is_kept() {
    let (proxy, _b) = proxy();
    let r = send(
        proxy.http,
        b"GET / HTTP/1.1\r\nHost: App.Example:8080\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.seen_header("host"), Some("App.Example:8080"));
    assert_eq!(
        r.seen_headers("x-forwarded-for"),
        ["203.0.113.7, 127.0.0.1"]
    );
    assert_eq!(r.seen_headers("x-forwarded-proto"), ["http"]);
    assert_eq!(r.seen_headers("x-forwarded-host"), ["App.Example:8080"]);
}

#[test]
fn hop_by_hop_headers_are_not_forwarded() {
    let (proxy, _b) = proxy();
    let r = send(
        proxy.http,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Private\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nX-Normal: yes\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.seen_header("x-private"), None);
    assert_eq!(r.seen_header("keep-alive"), None);
    assert_eq!(r.seen_header("proxy-connection"), None);
    assert_eq!(r.seen_header("te"), Some("trailers"));
    assert_eq!(r.seen_header("x-normal"), Some("yes"));
}

#[test]
fn request_bodies_arrive_whole_with_either_framing() {
    let (proxy, _b) = proxy();
    let body = vec![b'a'; 300_000];
    let mut raw = format!(
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let r = send(proxy.http, &raw);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("body-bytes: 300000\n"), "{}", r.body);

    let mut raw = b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..10 {
        raw.extend_from_slice(b"2710\r\n");
        raw.extend_from_slice(&[b'b'; 10_000]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = send(proxy.http, &raw);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("body-bytes: 100000\n"), "{}", r.body);
}

#[test]
fn large_responses_arrive_whole() {
    let (proxy, _b) = proxy();
    let r = proxy.get("a", "/?pad=2000000");
    assert_eq!(r.status, 200);
    assert!(r.body.ends_with(&"x".repeat(1000)));
    assert!(r.body.len() > 2_000_000);
}

#[test]
fn keep_alive_connections_carry_many_requests() {
    use std::io::{BufReader, Write};
    let (proxy, _b) = proxy();
    let s = std::net::TcpStream::connect(proxy.http).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    for i in 0..5 {
        w.write_all(format!("GET /n{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .unwrap();
        let r = read_response(&mut reader).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.target(), Some(format!("/n{i}").as_str()));
    }
}
