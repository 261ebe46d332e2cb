//! Route response compression (`compress`, SPEC "Route policies") through
//! the real binary, on the three paths a request can take: the HTTP/1
//! forwarder (a default listener), Pingora's path (`forwarder: false`, and
//! HTTP/1.0 clients), and the HTTP/2 front (h2c). Bodies are decoded here
//! and compared with what the backend sent.

#[path = "compress/backend.rs"]
mod backend;
#[path = "compress/client.rs"]
mod client;
mod common;
#[path = "compress/events.rs"]
mod events;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use backend::text;
use client::{fetch, h2_get, Conn, Resp};
use common::*;
use events::events_arrive_one_by_one;

/// A proxy to `b`: `{HTTP}` the forwarder (and the HTTP/2 front by
/// h2c), `{TCP}` Pingora's path (HTTP/1 and, by h2c, HTTP/2); on each, `/` compresses by default, `/custom` only
/// `application/x-custom` from 10 bytes, `/plain` never.
pub fn proxy(b: &backend::Backend) -> Proxy {
    let routes = "      - { path_prefix: /, upstream: u, compress: {} }\n      - { path_prefix: /custom, upstream: u, compress: { types: [application/x-custom], min_bytes: 10 } }\n      - { path_prefix: /plain, upstream: u }\n";
    Proxy::start(&format!(
        "listeners:\n  fwd:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes:\n{routes}  pin:\n    listen: \"{{TCP}}\"\n    forwarder: false\n    h2c: true\n    routes:\n{routes}upstreams:\n  u: {{ backends: [{{ addr: \"{}\" }}] }}\n",
        b.addr
    ))
}

/// The two HTTP/1 entry points, named for messages.
fn h1_paths(p: &Proxy) -> [(&'static str, SocketAddr); 2] {
    [("forwarder", p.http), ("pingora", p.tcp)]
}

fn assert_compressed(what: &str, r: &Resp, coding: &str, original: &[u8]) {
    assert_eq!(r.status, 200, "{what}");
    assert_eq!(
        r.header("content-encoding"),
        Some(coding),
        "{what}: {:?}",
        r.headers
    );
    assert_eq!(r.header("content-length"), None, "{what}");
    assert!(
        r.all("vary").any(|v| v.contains("Accept-Encoding")),
        "{what}: {:?}",
        r.headers
    );
    assert!(
        r.body.len() < original.len() / 3,
        "{what}: {} bytes",
        r.body.len()
    );
    assert!(r.complete, "{what}");
    assert!(r.decoded() == original, "{what}: decoded body differs");
}

#[test]
fn every_coding_and_framing_round_trips_on_every_path() {
    let b = backend::start(None);
    let p = proxy(&b);
    let original = text(20_000);
    for coding in ["gzip", "br", "zstd"] {
        for framing in ["length", "chunked", "close"] {
            let target = format!("/doc?len=20000&framing={framing}&type=text/html;charset=utf-8");
            for (path, addr) in h1_paths(&p) {
                let r = fetch(addr, "GET", &target, &[("Accept-Encoding", coding)]);
                let what = format!("{path} {coding} {framing}");
                assert_compressed(&what, &r, coding, &original);
                assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{what}");
            }
            for (path, addr) in [("h2 front", p.http), ("pingora h2", p.tcp)] {
                let r = h2_get(addr, &target, Some(coding));
                assert_compressed(&format!("{path} {coding} {framing}"), &r, coding, &original);
            }
        }
    }
}

#[test]
fn the_coding_follows_accept_encoding_weights_and_q0_refuses() {
    let b = backend::start(None);
    let p = proxy(&b);
    let cases = [
        ("gzip, deflate, br, zstd", Some("br")),
        ("gzip;q=0.5, zstd;q=0.9, br;q=0.8", Some("zstd")),
        ("br;q=0, zstd;q=0, gzip", Some("gzip")),
        ("*", Some("br")),
        ("br;q=0, *;q=0.5", Some("zstd")),
        ("gzip;q=0", None),
        ("identity", None),
        ("", None),
    ];
    let original = text(4000);
    for (path, addr) in h1_paths(&p) {
        for (accept, want) in cases {
            let r = fetch(addr, "GET", "/doc", &[("Accept-Encoding", accept)]);
            let what = format!("{path} {accept:?}");
            assert_eq!(r.header("content-encoding"), want, "{what}");
            assert_eq!(
                r.all("vary").collect::<Vec<_>>(),
                ["Accept-Encoding"],
                "{what}"
            );
            assert!(r.decoded() == original, "{what}");
        }
        // No Accept-Encoding at all: as it is, but the cache is told.
        let r = fetch(addr, "GET", "/doc", &[]);
        assert_eq!(r.header("content-length"), Some("4000"), "{path}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path}");
    }
    let r = h2_get(p.http, "/doc", Some("gzip;q=0"));
    assert_eq!(
        (r.header("content-encoding"), r.header("vary")),
        (None, Some("Accept-Encoding"))
    );
    assert_eq!(r.body, original);
}

#[test]
fn responses_that_must_stay_as_they_are_do() {
    let b = backend::start(None);
    let p = proxy(&b);
    let gzip = [("Accept-Encoding", "gzip, br")];
    let cases = [
        ("HEAD", "/doc"),
        ("GET", "/doc?status=204"),
        ("GET", "/doc?status=304"),
        ("GET", "/doc?status=206&h=Content-Range:bytes%200-3999/8000"),
        ("GET", "/doc?h=Cache-Control:no-transform"),
        ("GET", "/doc?h=Content-Encoding:identity"),
        ("GET", "/doc?len=1023"),
        ("GET", "/doc?type=image/png"),
        ("GET", "/doc?type=application/octet-stream&framing=chunked"),
        ("GET", "/plain/doc"),
        ("GET", "/custom/doc"),
    ];
    for (path, addr) in h1_paths(&p) {
        for (method, target) in cases {
            let r = Conn::open(addr).request(method, target, &gzip);
            let what = format!("{path} {method} {target}");
            let coded = r.header("content-encoding");
            assert!(
                coded.is_none() || coded == Some("identity"),
                "{what}: {:?}",
                r.headers
            );
            if method == "GET" && r.status == 200 {
                let len = if target.contains("1023") { 1023 } else { 4000 };
                assert!(r.body == text(len), "{what}: body changed");
            }
            // Only what a capable client would have had compressed varies.
            let varies = method == "HEAD";
            assert_eq!(
                r.header("vary").is_some(),
                varies,
                "{what}: {:?}",
                r.headers
            );
        }
        // The route's own types and threshold.
        let r = fetch(
            addr,
            "GET",
            "/custom/x?type=application/x-custom&len=20",
            &gzip,
        );
        assert_eq!(r.header("content-encoding"), Some("br"), "{path}");
        assert!(r.decoded() == text(20), "{path}");
    }
}

#[test]
fn vary_is_extended_not_repeated() {
    let b = backend::start(None);
    let p = proxy(&b);
    for (path, addr) in h1_paths(&p) {
        let r = fetch(
            addr,
            "GET",
            "/doc?h=Vary:Origin",
            &[("Accept-Encoding", "gzip")],
        );
        assert_eq!(
            r.all("vary").collect::<Vec<_>>(),
            ["Origin, Accept-Encoding"],
            "{path}"
        );
        let r = fetch(
            addr,
            "GET",
            "/doc?h=Vary:accept-encoding",
            &[("Accept-Encoding", "gzip")],
        );
        assert_eq!(
            r.all("vary").collect::<Vec<_>>(),
            ["accept-encoding"],
            "{path}"
        );
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
    }
}

#[test]
fn an_http10_client_gets_a_compressed_body_ended_by_the_close() {
    let b = backend::start(None);
    let p = proxy(&b);
    for (path, addr) in h1_paths(&p) {
        let r = Conn::open(addr).request_as(
            "HTTP/1.0",
            "GET",
            "/doc?len=9000",
            &[("Accept-Encoding", "gzip")],
        );
        assert_eq!(r.header("transfer-encoding"), None, "{path}");
        assert_eq!(r.header("content-length"), None, "{path}");
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
        assert!(r.decoded() == text(9000), "{path}");
    }
}

/// Trailers survive: announced ones keep the response as it is, others
/// follow the compressed body. (Pingora's path drops HTTP/1 backends'
/// trailers, compressed or not: the forwarder only.)
#[test]
fn trailers_follow_a_chunked_body() {
    let b = backend::start(None);
    let p = proxy(&b);
    let accept = [("Accept-Encoding", "zstd"), ("TE", "trailers")];
    for (target, coding) in [("/trailers", None), ("/trailers?quiet", Some("zstd"))] {
        let r = fetch(p.http, "GET", target, &accept);
        assert_eq!(r.header("content-encoding"), coding, "{target}");
        assert!(r.complete, "{target}");
        let sum = [("X-Sum".to_string(), "4000".to_string())];
        assert_eq!(r.trailers, sum, "{target}");
        assert!(r.decoded() == text(4000), "{target}");
    }
}

/// Pingora's path with an HTTP/2 backend (a second switchyard, h2c, in
/// front of the test backend): a body that ends with trailers, not with a
/// last DATA frame, still gets the end of its compressed stream (in place
/// of unannounced trailers); announced trailers keep it uncompressed.
#[test]
fn a_body_from_an_http2_backend_ends_its_stream_before_the_trailers() {
    let b = backend::start(None);
    let middle = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: [{{ addr: \"{}\" }}] }}\n",
        b.addr
    ));
    let front = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: h2, compress: {{}} }}]\nupstreams:\n  h2:\n    protocol: h2\n    backends: [{{ addr: \"{}\" }}]\n",
        middle.http
    ));
    let accept = [("Accept-Encoding", "gzip"), ("TE", "trailers")];
    let cases = [
        ("/trailers", None),
        ("/trailers?quiet", Some("gzip")),
        ("/doc?framing=chunked", Some("gzip")),
    ];
    for (target, coding) in cases {
        let r = fetch(front.http, "GET", target, &accept);
        assert_eq!(
            r.header("content-encoding"),
            coding,
            "{target}: {:?}",
            r.headers
        );
        assert!(r.complete, "{target}");
        assert!(r.decoded() == text(4000), "{target}");
    }
}

#[test]
fn a_backend_cut_short_does_not_look_complete() {
    let b = backend::start(None);
    let p = proxy(&b);
    for (path, addr) in h1_paths(&p) {
        let r = fetch(addr, "GET", "/cut", &[("Accept-Encoding", "gzip")]);
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
        assert!(!r.complete, "{path}: a cut body ended with its last chunk");
    }
}

#[test]
fn the_backend_connection_is_reused_after_compressed_responses() {
    let b = backend::start(None);
    let p = proxy(&b);
    for (path, addr) in h1_paths(&p) {
        let before = b.accepted.load(Ordering::SeqCst);
        let mut c = Conn::open(addr);
        for framing in ["length", "chunked", "length"] {
            let target = format!("/doc?framing={framing}");
            let r = c.request("GET", &target, &[("Accept-Encoding", "br")]);
            assert_eq!(r.header("content-encoding"), Some("br"), "{path}");
            assert!(r.decoded() == text(4000), "{path}");
        }
        let opened = b.accepted.load(Ordering::SeqCst) - before;
        assert_eq!(
            opened, 1,
            "{path}: {opened} backend connections for 3 requests"
        );
    }
}

#[test]
fn events_arrive_one_by_one_through_the_forwarder() {
    events_arrive_one_by_one("gzip", "forwarder");
    events_arrive_one_by_one("br", "forwarder");
}

#[test]
fn events_arrive_one_by_one_through_pingoras_path() {
    events_arrive_one_by_one("gzip", "pingora");
}

#[test]
fn events_arrive_one_by_one_over_http2() {
    events_arrive_one_by_one("br", "h2");
}

#[test]
fn check_names_a_bad_compress_entry_with_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.yaml");
    std::fs::write(
        &conf,
        "listeners:\n  web:\n    listen: 127.0.0.1:8080\n    routes:\n      - upstream: u\n        compress:\n          types: [text/html, \"text/html; charset=utf-8\", json]\n          min_byte: 10\nupstreams:\n  u: { backends: [{ addr: 127.0.0.1:9 }] }\n",
    )
    .unwrap();
    let (code, _, err) = check(&conf);
    assert_eq!(code, 1, "{err}");
    for (line, path, words) in [
        (
            7,
            "listeners.web.routes[0].compress.types[1]",
            "is not a media type",
        ),
        (
            7,
            "listeners.web.routes[0].compress.types[2]",
            "\"json\" is not a media type",
        ),
        (
            8,
            "listeners.web.routes[0].compress.min_byte",
            "did you mean \"min_bytes\"",
        ),
    ] {
        let hit = err
            .lines()
            .position(|l| l.contains(&format!("line {line}: error: {path}")))
            .unwrap_or_else(|| panic!("no error at line {line} for {path}:\n{err}"));
        let block: String = err.lines().skip(hit).take(2).collect::<Vec<_>>().join("\n");
        assert!(block.contains(words), "{words:?} not in:\n{block}");
    }
}
