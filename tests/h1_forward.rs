//! The HTTP/1 forwarder (src/h1) through the real binary, against scripted
//! backends: what it must get right on the wire that the demo backend never
//! exercises — connection reuse, a pooled connection the backend closed,
//! pipelining, chunked and close-delimited responses, interim responses.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One worker thread: idle backend connections are kept per thread, and
/// these tests count backend connections.
fn proxy_to(backend: SocketAddr) -> Proxy {
    Proxy::start(&format!(
        "server: {{ threads: 1 }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ read_timeout: 2s, backends: [{{ addr: \"{backend}\" }}] }}\n"
    ))
}

/// What a scripted backend saw: connections accepted, requests (head and
/// body) in arrival order.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

/// A keep-alive backend that answers the n-th request (from 0, over all
/// connections) with `answer(n)`; when that returns `close`, it closes the
/// connection right after, without saying so.
fn scripted(answer: fn(usize) -> (Vec<u8>, bool)) -> (SocketAddr, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in l.incoming().flatten().take(64) {
            s.connections.fetch_add(1, Ordering::SeqCst);
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                while let Some(req) = read_request(&mut r) {
                    let n = {
                        let mut reqs = s.requests.lock().unwrap();
                        reqs.push(req);
                        reqs.len() - 1
                    };
                    let (bytes, close) = answer(n);
                    if w.write_all(&bytes).is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// One request head plus its body (Content-Length or chunked), as text.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut text = String::new();
    let (mut len, mut chunked) = (0, false);
    loop {
        let line = read_line(r)?;
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        text.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    if chunked {
        // Chunks as sent, through the last chunk and the end of trailers.
        loop {
            let size = read_line(r)?;
            text.push_str(&size);
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                break;
            }
            let mut data = vec![0u8; n + 2];
            r.read_exact(&mut data).ok()?;
            text.push_str(&String::from_utf8_lossy(&data));
        }
        loop {
            let line = read_line(r)?;
            text.push_str(&line);
            if line == "\r\n" {
                return Some(text);
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    text.push_str(&String::from_utf8_lossy(&body));
    Some(text)
}

fn read_line(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(n) if n > 0 => Some(line),
        _ => None,
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn keep_alive(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

#[test]
fn backend_connections_are_reused_and_one_closed_while_idle_is_replaced() {
    // The 4th answer closes its connection behind the proxy's back.
    let (backend, seen) = scripted(|n| (ok(&format!("r{n}")), n == 3));
    let proxy = proxy_to(backend);
    for n in 0..4 {
        let r = get(proxy.http, "a", "/");
        assert_eq!((r.status, r.body.as_str()), (200, format!("r{n}").as_str()));
    }
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "one connection, reused"
    );
    std::thread::sleep(Duration::from_millis(100));
    // The pooled connection is closed now: the next request still succeeds.
    let r = get(proxy.http, "a", "/");
    assert_eq!((r.status, r.body.as_str()), (200, "r4"));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (backend, seen) = scripted(|n| (ok(&format!("r{n}")), false));
    let proxy = proxy_to(backend);
    let (mut s, mut r) = keep_alive(proxy.http);
    s.write_all(
        b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    for n in 0..3 {
        let resp = read_response(&mut r).expect("a response");
        assert_eq!(
            (resp.status, resp.body.as_str()),
            (200, format!("r{n}").as_str())
        );
    }
    let reqs = seen.requests.lock().unwrap();
    assert!(reqs[0].starts_with("POST /1 HTTP/1.1\r\n") && reqs[0].ends_with("\r\n\r\nhello"));
    assert!(reqs[1].starts_with("GET /2 "), "{:?}", reqs[1]);
    assert!(reqs[2].starts_with("GET /3 "), "{:?}", reqs[2]);
}

#[test]
fn chunked_responses_pass_through_with_trailers_and_keep_the_connection() {
    let (backend, seen) = scripted(|_| {
        let body = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n";
        (body.as_bytes().to_vec(), false)
    });
    let proxy = proxy_to(backend);
    let (mut s, mut r) = keep_alive(proxy.http);
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let resp = read_response(&mut r).expect("a response");
        assert_eq!((resp.status, resp.body.as_str()), (200, "hello world"));
        assert_eq!(resp.header("connection"), Some("keep-alive"));
        assert_eq!(resp.header("x-sum"), Some("11"), "the trailer");
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

/// A response without length or coding ends when the backend closes; the
/// client gets it in chunks and keeps its connection (as on Pingora's path).
#[test]
fn a_close_delimited_response_is_rechunked_and_the_client_kept() {
    let (backend, seen) = scripted(|_| (b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(), true));
    let proxy = proxy_to(backend);
    let (mut s, mut r) = keep_alive(proxy.http);
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let resp = read_response(&mut r).expect("a response");
        assert_eq!((resp.status, resp.body.as_str()), (200, "until the end"));
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
        assert_eq!(resp.header("connection"), Some("keep-alive"));
    }
    // Each request needed a new backend connection.
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

/// Interim responses reach the client at once, before the final one
/// (RFC 9110 §15.2); the final one is still whole and the connection kept.
#[test]
fn interim_responses_are_passed_on() {
    let (backend, _) = scripted(|_| {
        let bytes = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (bytes.to_vec(), false)
    });
    let proxy = proxy_to(backend);
    let (mut s, mut r) = keep_alive(proxy.http);
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let interim = read_response(&mut r).expect("the 103");
        assert_eq!(interim.status, 103);
        assert_eq!(interim.header("link"), Some("</a.css>; rel=preload"));
        let last = read_response(&mut r).expect("the 200");
        assert_eq!((last.status, last.body.as_str()), (200, "ok"));
        assert_eq!(last.header("link"), None);
    }
}

#[test]
fn a_head_response_has_no_body_whatever_its_length_says() {
    let (backend, seen) = scripted(|_| {
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec(),
            false,
        )
    });
    let proxy = proxy_to(backend);
    let (mut s, mut r) = keep_alive(proxy.http);
    for _ in 0..2 {
        s.write_all(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        assert!(head.contains("Content-Length: 5\r\n"), "{head:?}");
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

/// Header lines of a head, as (lowercase name, value), sorted; framing and
/// connection headers left out.
fn fields(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = head
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(n, _)| {
            !["content-length", "transfer-encoding", "connection", "date"].contains(&n.as_str())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn both_request_paths_rewrite_headers_alike() {
    // The forwarder takes the Content-Length request; a chunked one goes
    // through Pingora. The backend and the client must not tell them apart.
    let (backend, seen) = scripted(|_| {
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nX-Kept: yes\r\nX-Kept: twice\r\n\r\nok";
        (answer.as_bytes().to_vec(), false)
    });
    let proxy = proxy_to(backend);
    let headers = "Host: App.Example\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: 5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nTE: gzip, trailers\r\nTrailer: X-T\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-Proto: gopher\r\nX-Forwarded-Host: evil.example\r\nCookie: a=b\r\nX-Normal: yes\r\n";
    let forwarded = send(
        proxy.http,
        format!("POST /p?q=1 HTTP/1.1\r\n{headers}Content-Length: 2\r\n\r\nhi").as_bytes(),
    );
    let pingora = send(
        proxy.http,
        format!("POST /p?q=1 HTTP/1.1\r\n{headers}Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
            .as_bytes(),
    );
    let reqs = seen.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(
        reqs.iter()
            .all(|r| r.starts_with("POST /p?q=1 HTTP/1.1\r\n")),
        "{reqs:?}"
    );
    let expected: Vec<(String, String)> = [
        ("cookie", "a=b"),
        ("host", "App.Example"),
        ("te", "trailers"),
        ("x-forwarded-for", "203.0.113.7, 198.51.100.1, 127.0.0.1"),
        ("x-forwarded-host", "App.Example"),
        ("x-forwarded-proto", "http"),
        ("x-normal", "yes"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    assert_eq!(fields(&reqs[0]), expected, "forwarder: {}", reqs[0]);
    assert_eq!(fields(&reqs[1]), expected, "pingora: {}", reqs[1]);
    for r in [&forwarded, &pingora] {
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        let mut got: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .filter(|(n, _)| {
                !["content-length", "transfer-encoding", "connection", "date"].contains(&n.as_str())
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("x-kept".to_string(), "twice".to_string()),
                ("x-kept".to_string(), "yes".to_string())
            ]
        );
    }
}
