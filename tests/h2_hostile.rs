//! Hostile HTTP/2 input on an h2c listener, written frame by frame (RFC
//! 9113) with a tiny HPACK encoder, because well-behaved client libraries
//! refuse to send it: connection-specific headers and unknown pseudo-headers
//! are refused per stream without reaching a backend, and a rapid-reset
//! flood (CVE-2023-44487) leaves the proxy serving.

mod common;
use common::*;

use common::h2frames::*;

use std::time::Duration;

fn h2c_proxy(server: &str, b: &[DemoServer]) -> Proxy {
    Proxy::start(&format!(
        "server: {{ {server} }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: true\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(b)
    ))
}

#[test]
fn malformed_h2_requests_are_reset_and_never_forwarded() {
    let b = backends("h2bad", 1);
    let proxy = h2c_proxy("", &b);
    let mut c = Conn::open(proxy.http);
    let bad: [&[(&str, &str)]; 4] = [
        &[("connection", "keep-alive")],
        &[("transfer-encoding", "chunked")],
        &[(":bogus", "1")],
        &[("te", "gzip")],
    ];
    for (i, extra) in bad.iter().enumerate() {
        let stream = 1 + 2 * i as u32;
        assert!(c.send(&h2_get(stream, "/bad", extra)));
        let got = c.wait_for(|t, s| {
            (t == RST_STREAM && s == stream) || t == GOAWAY || (t == HEADERS && s == stream)
        });
        match got.as_ref().map(|f| (f.kind, f.payload.as_slice())) {
            Some((RST_STREAM, _)) => {}
            Some((GOAWAY, _)) => {
                // A connection error is also a correct answer; go on on a
                // fresh connection.
                c = Conn::open(proxy.http);
            }
            Some((HEADERS, p)) => {
                // A response is only acceptable if it is not the backend's.
                assert_ne!(p.first(), Some(&STATUS_200), "{extra:?} was answered 200");
            }
            _ => panic!("{extra:?}: no reset, got {got:?}\n{}", proxy.log()),
        }
    }
    assert_eq!(b[0].hits(), 0, "a malformed request reached the backend");
    // A well-formed request on the same listener still works (status 200 is
    // HPACK static index 8).
    let mut c = Conn::open(proxy.http);
    assert!(c.send(&h2_get(1, "/good", &[])));
    let f = c
        .wait_for(|t, s| t == HEADERS && s == 1)
        .unwrap_or_else(|| panic!("no response\n{}", proxy.log()));
    assert_eq!(f.payload.first(), Some(&STATUS_200));
    assert_eq!(b[0].hits(), 1);
}

#[test]
fn rapid_reset_flood_leaves_the_proxy_serving() {
    let b = backends("reset", 1);
    let proxy = h2c_proxy("", &b);
    let mut c = Conn::open(proxy.http);
    let cancel = CANCEL.to_be_bytes();
    let mut sent = 0;
    for i in 0..2000u32 {
        let stream = 1 + 2 * i;
        let mut burst = h2_get(stream, "/flood", &[]);
        burst.extend(frame(RST_STREAM, 0, stream, &cancel));
        if !c.send(&burst) {
            break; // the server gave up on us: fine
        }
        sent += 1;
    }
    // However the server answered the flood, a new client is served.
    let mut fresh = Conn::open(proxy.http);
    assert!(fresh.send(&h2_get(1, "/after", &[])));
    let f = fresh
        .wait_for(|t, s| t == HEADERS && s == 1)
        .unwrap_or_else(|| panic!("proxy not serving after {sent} resets\n{}", proxy.log()));
    assert_eq!(f.payload.first(), Some(&STATUS_200));
    assert!(!proxy.log().contains("panicked"), "{}", proxy.log());
    // Cancelled streams must not turn into as many backend requests (in
    // practice none do: the h2 server closes the flooding connection).
    let flood_hits = b[0].hits() - 1;
    assert!(
        flood_hits < sent / 2,
        "{flood_hits} of {sent} reset streams reached the backend"
    );
}
