//! Hostile HTTP/2 input on an h2c listener, written frame by frame (RFC
//! 9113) with a tiny HPACK encoder, because well-behaved client libraries
//! refuse to send it: connection-specific headers and unknown pseudo-headers
//! are refused per stream without reaching a backend, and a rapid-reset
//! flood (CVE-2023-44487) leaves the proxy serving.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK "literal header field without indexing, new name", no Huffman.
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00, name.len() as u8];
    b.extend_from_slice(name.as_bytes());
    b.push(value.len() as u8);
    b.extend_from_slice(value.as_bytes());
    b
}

/// `GET http://h2.test/path` plus `extra` header fields.
fn request_block(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    // :method GET (static 2), :scheme http (static 6).
    let mut b = vec![0x82, 0x86];
    b.extend(literal(":path", path));
    b.extend(literal(":authority", "h2.test"));
    for (k, v) in extra {
        b.extend(literal(k, v));
    }
    b
}

struct Conn {
    s: TcpStream,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(PREFACE).unwrap();
        s.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
        Conn { s }
    }

    fn send(&mut self, bytes: &[u8]) -> bool {
        self.s.write_all(bytes).is_ok()
    }

    /// Frames until one matches `want` (type, stream) or the connection ends.
    fn wait_for(&mut self, want: impl Fn(u8, u32) -> bool) -> Option<(u8, u32, Vec<u8>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mut h = [0u8; 9];
            self.s.read_exact(&mut h).ok()?;
            let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            self.s.read_exact(&mut payload).ok()?;
            if h[3] == SETTINGS && h[4] & 1 == 0 {
                self.send(&frame(SETTINGS, 1, 0, &[]));
            }
            if want(h[3], stream) {
                return Some((h[3], stream, payload));
            }
        }
        None
    }
}

fn h2c_proxy(b: &[DemoServer]) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(b)
    ))
}

/// HEADERS with END_STREAM | END_HEADERS.
fn get(stream: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    frame(HEADERS, 0x5, stream, &request_block(path, extra))
}

#[test]
fn malformed_h2_requests_are_reset_and_never_forwarded() {
    let b = backends("h2bad", 1);
    let proxy = h2c_proxy(&b);
    let mut c = Conn::open(proxy.http);
    let bad: [&[(&str, &str)]; 4] = [
        &[("connection", "keep-alive")],
        &[("transfer-encoding", "chunked")],
        &[(":bogus", "1")],
        &[("te", "gzip")],
    ];
    for (i, extra) in bad.iter().enumerate() {
        let stream = 1 + 2 * i as u32;
        assert!(c.send(&get(stream, "/bad", extra)));
        let got = c.wait_for(|t, s| {
            (t == RST_STREAM && s == stream) || t == GOAWAY || (t == HEADERS && s == stream)
        });
        match got {
            Some((RST_STREAM, _, _)) => {}
            Some((GOAWAY, _, _)) => {
                // A connection error is also a correct answer; go on on a
                // fresh connection.
                c = Conn::open(proxy.http);
            }
            Some((HEADERS, _, p)) => {
                // A response is only acceptable if it is not the backend's.
                assert_ne!(p.first(), Some(&0x88), "{extra:?} was answered 200");
            }
            other => panic!("{extra:?}: no reset, got {other:?}\n{}", proxy.log()),
        }
    }
    assert_eq!(b[0].hits(), 0, "a malformed request reached the backend");
    // A well-formed request on the same listener still works (status 200 is
    // HPACK static index 8).
    let mut c = Conn::open(proxy.http);
    assert!(c.send(&get(1, "/good", &[])));
    let (_, _, p) = c
        .wait_for(|t, s| t == HEADERS && s == 1)
        .unwrap_or_else(|| panic!("no response\n{}", proxy.log()));
    assert_eq!(p.first(), Some(&0x88));
    assert_eq!(b[0].hits(), 1);
}

#[test]
fn rapid_reset_flood_leaves_the_proxy_serving() {
    let b = backends("reset", 1);
    let proxy = h2c_proxy(&b);
    let mut c = Conn::open(proxy.http);
    let cancel = 0x8u32.to_be_bytes(); // CANCEL
    let mut sent = 0;
    for i in 0..2000u32 {
        let stream = 1 + 2 * i;
        let mut burst = get(stream, "/flood", &[]);
        burst.extend(frame(RST_STREAM, 0, stream, &cancel));
        if !c.send(&burst) {
            break; // the server gave up on us: fine
        }
        sent += 1;
    }
    // However the server answered the flood, a new client is served.
    let mut fresh = Conn::open(proxy.http);
    assert!(fresh.send(&get(1, "/after", &[])));
    let (_, _, p) = fresh
        .wait_for(|t, s| t == HEADERS && s == 1)
        .unwrap_or_else(|| panic!("proxy not serving after {sent} resets\n{}", proxy.log()));
    assert_eq!(p.first(), Some(&0x88));
    assert!(!proxy.log().contains("panicked"), "{}", proxy.log());
    // Cancelled streams must not turn into as many backend requests (in
    // practice none do: the h2 server closes the flooding connection).
    let flood_hits = b[0].hits() - 1;
    assert!(
        flood_hits < sent / 2,
        "{flood_hits} of {sent} reset streams reached the backend"
    );
}
