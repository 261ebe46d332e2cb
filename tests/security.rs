//! Hostile clients and broken backends, byte for byte, through the real
//! binary. Every malformed or ambiguous request is refused with the SPEC's
//! status and never reaches a backend; broken backend responses never look
//! complete to the client.

mod common;
use common::*;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn proxy_with(server: &str, backend: &str) -> Proxy {
    Proxy::start(&format!(
        "server: {{ {server} }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ host: a, upstream: u }}]\nupstreams:\n  u: {{ read_timeout: 1s, backends: [{{ addr: \"{backend}\" }}] }}\n"
    ))
}

/// Sends `raw` and returns the status line's code (None: closed without one).
fn status_of(addr: SocketAddr, raw: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

const REFUSED: &[(&str, &[u8], u16)] = &[
    ("CL and TE", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE repeated", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("chunked twice in one TE", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    ("chunked not last", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("unknown coding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("space before colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    ("HTTP/1.0 with TE", b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("two lengths", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("same length twice", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    ("length +3", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
    ("length 0x3", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", 400),
    ("empty length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\nabc", 400),
    ("length list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,6\r\n\r\nhello!", 400),
    ("bad chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("overflowing chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
    ("bare LF", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    ("bare CR", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400),
    ("NUL in a header", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
    ("no Host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("obsolete line folding", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("CONNECT", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405),
];

#[test]
fn malformed_and_ambiguous_requests_are_refused_and_never_forwarded() {
    let b = backends("sec", 1);
    let proxy = proxy_with("max_header_bytes: 4096", &b[0].addr.to_string());
    for (name, raw, want) in REFUSED {
        assert_eq!(status_of(proxy.http, raw), Some(*want), "{name}");
    }
    let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 5000));
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        status_of(proxy.http, &big),
        Some(431),
        "headers over max_header_bytes"
    );
    assert_eq!(b[0].hits(), 0, "a refused request reached the backend");
    // And a sane request still works.
    assert_eq!(
        status_of(
            proxy.http,
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        ),
        Some(200)
    );
}

/// A backend that only counts the bytes it receives (and never answers).
fn counting_backend() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got = std::sync::Arc::new(AtomicUsize::new(0));
    let g = std::sync::Arc::clone(&got);
    std::thread::spawn(move || {
        for mut conn in l.incoming().flatten().take(32) {
            let g = std::sync::Arc::clone(&g);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    g.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, got)
}

/// Faults in what arrives with the head: refused before a byte of the
/// request is sent on (SPEC), on both HTTP/1 engines.
#[test]
fn a_bad_first_chunk_or_a_long_target_is_refused_before_anything_is_forwarded() {
    let (backend, got) = counting_backend();
    for forwarder in [true, false] {
        let proxy = Proxy::start(&format!(
            "server: {{ max_uri_bytes: 1024 }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    forwarder: {forwarder}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ read_timeout: 1s, backends: [{{ addr: \"{backend}\" }}] }}\n"
        ));
        for size in ["Z", "10000000000000001", "5\rX"] {
            let raw = format!(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nhello\r\n0\r\n\r\n"
            );
            assert_eq!(
                status_of(proxy.http, raw.as_bytes()),
                Some(400),
                "chunk size {size:?}, forwarder {forwarder}"
            );
        }
        // Over max_uri_bytes, and far over max_header_bytes too: 414 all the same.
        for len in [1025, 100 * 1024] {
            let raw = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(len));
            assert_eq!(
                status_of(proxy.http, raw.as_bytes()),
                Some(414),
                "a {len}-byte target, forwarder {forwarder}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            got.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a refused request reached the backend (forwarder {forwarder})"
        );
    }
}

#[test]
fn a_locally_answered_body_is_never_parsed_as_the_next_request() {
    let b = backends("smuggle", 1);
    let proxy = proxy_with("idle_timeout: 60s", &b[0].addr.to_string());
    let hidden = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut raw = format!(
        "POST / HTTP/1.1\r\nHost: nowhere\r\nContent-Length: {}\r\n\r\n",
        hidden.len()
    )
    .into_bytes();
    raw.extend_from_slice(hidden);
    let mut s = TcpStream::connect(proxy.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&raw).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "only one response: {text}"
    );
    assert_eq!(b[0].hits(), 0);
}

#[test]
fn headers_trickling_past_header_timeout_get_408() {
    let b = backends("slow", 1);
    let proxy = proxy_with("header_timeout: 1s", &b[0].addr.to_string());
    let mut s = TcpStream::connect(proxy.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let head =
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: 0123456789012345678901234567890123456789\r\n\r\n";
    // One byte every 100 ms: every read is quick, the whole head is not.
    let mut closed_early = false;
    for byte in head.iter() {
        if s.write_all(&[*byte]).is_err() {
            closed_early = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let _ = closed_early;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(b[0].hits(), 0);
}

#[test]
fn idle_keep_alive_connections_are_closed_after_idle_timeout() {
    let b = backends("idle", 1);
    let proxy = proxy_with("idle_timeout: 1s", &b[0].addr.to_string());
    let s = TcpStream::connect(proxy.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut r).unwrap().status, 200);
    let idle_since = Instant::now();
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    let waited = idle_since.elapsed();
    assert!(rest.is_empty());
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

/// A backend that answers every connection with `response` (then closes).
fn evil_backend(response: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten().take(16) {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(response);
                std::thread::sleep(Duration::from_millis(100));
            });
        }
    });
    addr
}

#[test]
fn malformed_backend_responses_are_502() {
    for (name, response) in [
        (
            "two lengths",
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"[..],
        ),
        (
            "bad length",
            b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello",
        ),
        ("not HTTP", b"SSH-2.0-OpenSSH_9.2\r\n"),
    ] {
        let proxy = proxy_with("idle_timeout: 60s", &evil_backend(response).to_string());
        let r = get(proxy.http, "a", "/");
        assert_eq!(r.status, 502, "{name}: {r:?}");
        assert_eq!(r.body, "502 Bad Gateway\n");
    }
}

#[test]
fn a_response_cut_short_never_looks_complete() {
    // Content-Length promises 100 bytes; 10 arrive, then the backend closes.
    let proxy = proxy_with(
        "idle_timeout: 60s",
        &evil_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").to_string(),
    );
    let mut s = TcpStream::connect(proxy.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(
        body.len() < 100,
        "a cut response must not be padded to look complete: {text:?}"
    );

    // Chunked: one chunk, then the backend closes: no final 0-chunk reaches the client.
    let proxy = proxy_with(
        "idle_timeout: 60s",
        &evil_backend(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            .to_string(),
    );
    let mut s = TcpStream::connect(proxy.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("hello"), "{text:?}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the client connection must close without a final chunk: {text:?}"
    );
}

#[test]
fn a_flood_of_silent_connections_is_shed_and_others_are_still_served() {
    let b = backends("flood", 1);
    let proxy = proxy_with("header_timeout: 1s", &b[0].addr.to_string());
    // 400 connections that never send a byte (bounded by this test's fd use).
    let mut silent: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(proxy.http).ok())
        .collect();
    assert!(
        silent.len() >= 300,
        "only {} connections opened",
        silent.len()
    );
    // A real client is served meanwhile.
    assert_eq!(get(proxy.http, "a", "/").status, 200);
    // Every silent connection is closed by the header timeout, without an answer.
    std::thread::sleep(Duration::from_millis(1500));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut open = silent.len();
    for s in silent.iter_mut() {
        s.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10)),
        ))
        .unwrap();
        let mut rest = Vec::new();
        if s.read_to_end(&mut rest).is_ok() {
            open -= 1;
        }
    }
    assert_eq!(
        open, 0,
        "{open} silent connections still open after header_timeout"
    );
    assert_eq!(get(proxy.http, "a", "/").status, 200);
}
