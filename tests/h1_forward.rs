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

/// One request head plus its Content-Length body, as text.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut text = String::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        text.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    text.push_str(&String::from_utf8_lossy(&body));
    Some(text)
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

#[test]
fn a_close_delimited_response_arrives_whole_and_closes_the_client() {
    let (backend, seen) = scripted(|_| (b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(), true));
    let proxy = proxy_to(backend);
    let (mut s, mut r) = keep_alive(proxy.http);
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut got = String::new();
    r.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
    assert!(got.contains("\r\nConnection: close\r\n"), "{got:?}");
    assert!(got.ends_with("\r\n\r\nuntil the end"), "{got:?}");
    // The next request opens a new backend connection.
    assert_eq!(get(proxy.http, "a", "/").body, "until the end");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn interim_responses_are_not_passed_on() {
    let (backend, _) = scripted(|_| {
        let bytes = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (bytes.to_vec(), false)
    });
    let proxy = proxy_to(backend);
    let r = get(proxy.http, "a", "/");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(r.header("link"), None);
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
