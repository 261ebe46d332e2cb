//! Hostile HTTP/2 input on an h2c listener, written frame by frame (RFC
//! 9113) with a tiny HPACK encoder (tests/common/h2frames.rs), because
//! well-behaved client libraries refuse to send it: connection-specific
//! headers and unknown pseudo-headers are refused per stream without
//! reaching a backend, a rapid-reset flood (CVE-2023-44487) leaves the
//! proxy serving, a CONTINUATION flood (CVE-2024-27316) ends its connection
//! in bounded memory, and a header list over `server.max_header_bytes` is
//! answered 431 on its own stream. Flow-control abuse and floods of control
//! frames: tests/h2_hostile_flow.rs.

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

/// KiB as MiB, for messages.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// CVE-2024-27316: a HEADERS frame without END_HEADERS, then CONTINUATION
/// frames without end. A server that gathers the block until it ends holds
/// all of it (or spends its CPU decoding). The h2 server counts them (at
/// most max_header_list_size / max_frame_size + 25 %, and at least 5) and
/// ends the connection: so one hostile client costs one connection's
/// buffers, not the flood.
#[test]
fn continuation_flood_ends_the_connection_in_bounded_memory() {
    let b = backends("cont", 1);
    let proxy = h2c_proxy("", &b);
    let pid = proxy.pid();
    let mut warm = Conn::open(proxy.http);
    assert_eq!(warm.status(1, "/warm"), Some(200), "{}", proxy.log());
    let rss_before = proc_kib(pid, "VmRSS");
    assert!(reset_peak(pid), "cannot reset VmHWM of {pid}");

    // (a) 10,000 empty CONTINUATION frames after a whole request block.
    // (b) 4,096 of 16 KiB (64 MiB) continuing one field value that is
    //     declared 64 MiB long: to be held whole by a naive server.
    let block = request_block("/cont", &[]);
    let mut open_value = block.clone();
    open_value.extend([0x00, 7]);
    open_value.extend(b"x-flood");
    hpack_int(0x00, 7, 64 << 20, &mut open_value);
    type Case = (&'static str, Vec<u8>, usize, usize);
    let cases: [Case; 2] = [
        ("10,000 empty", block, 10_000, 0),
        ("4,096 x 16 KiB", open_value, 4096, 16 * 1024),
    ];
    for (name, first, count, size) in cases {
        let mut c = Conn::open(proxy.http);
        let total = (9 + first.len() + count * (9 + size)) as u64;
        let first = frame(HEADERS, END_STREAM, 1, &first);
        let writer = c.flood(first, count, move |_| {
            frame(CONTINUATION, 0, 1, &vec![b'a'; size])
        });
        let goaway = c.until_closed(Duration::from_secs(10));
        let (frames, bytes) = writer.join().unwrap();
        // The proxy says why, then closes; the flooded stream was never
        // accepted (the GOAWAY's last stream is below it).
        let goaway = goaway.unwrap_or_else(|| panic!("{name}: closed without GOAWAY"));
        eprintln!(
            "{name}: the socket took {frames} frames, {bytes} of {total} bytes; {}",
            goaway.goaway_text()
        );
        assert_eq!(goaway.error_code(), Some(ENHANCE_YOUR_CALM), "{name}");
        assert_eq!(goaway.last_stream(), Some(0), "{name}");
        if size > 0 {
            assert!(bytes < total, "{name}: the whole flood was taken");
        }
    }
    let peak = proc_kib(pid, "VmHWM");
    let rss_after = proc_kib(pid, "VmRSS");
    eprintln!(
        "switchyard VmRSS {:.1} MiB before, peak {:.1} MiB during, {:.1} MiB after",
        mib(rss_before),
        mib(peak),
        mib(rss_after)
    );
    // The flood was 64 MiB; a few frames and one partial block (at most
    // 64 KiB) per connection are what the proxy may hold. 16 MiB leaves
    // room for the allocator's and the runtime's own growth.
    assert!(
        peak.saturating_sub(rss_before) < 16 * 1024,
        "peak RSS grew by {:.1} MiB",
        mib(peak - rss_before)
    );
    // The proxy serves a new connection, and no flooded block became a
    // request.
    let mut fresh = Conn::open(proxy.http);
    assert_eq!(fresh.status(1, "/after"), Some(200), "{}", proxy.log());
    assert_eq!(b[0].hits(), 2, "a flooded header block reached the backend");
    assert!(!proxy.log().contains("panicked"), "{}", proxy.log());
}

/// A header list over `server.max_header_bytes` is refused on its own
/// stream (the h2 server answers 431 itself, RFC 9113 §10.5.1) and never
/// reaches the backend; the connection's other streams go on. One over
/// four times the limit ends the connection (the h2 crate's abuse limit).
#[test]
fn oversized_header_list_is_refused_on_its_stream() {
    let b = backends("hdr", 1);
    let proxy = h2c_proxy("max_header_bytes: 8192", &b);
    // One 12 KiB field; 150 fields of 40 bytes (HPACK sizes: 12 KiB + 37,
    // and 150 x (8 + 40 + 32) = 12,000 bytes: both over 8,192). Each on a
    // connection of its own, between two good streams (a repeated 431 would
    // be a reference to the connection's HPACK table, which this client
    // does not keep).
    let big = "v".repeat(12 * 1024);
    let names: Vec<String> = (0..150).map(|i| format!("x-h-{i:04}")).collect();
    let forty = "w".repeat(40);
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), forty.as_str())).collect();
    let oversized: [(&str, &[(&str, &str)]); 2] =
        [("one field", &[("x-big", &big)]), ("150 fields", &many)];
    for (i, (name, extra)) in oversized.into_iter().enumerate() {
        let mut c = Conn::open(proxy.http);
        assert_eq!(c.status(1, "/before"), Some(200), "{}", proxy.log());
        assert!(c.send(&h2_get(3, "/big", extra)));
        let f = c
            .wait_for(|t, s| s == 3 && (t == HEADERS || t == RST_STREAM) || t == GOAWAY)
            .unwrap_or_else(|| panic!("{name}: no answer\n{}", proxy.log()));
        eprintln!("{name}: {f:?}");
        assert_eq!(f.kind, HEADERS, "{name}: {f:?}");
        assert_eq!(status_of(&f.payload), Some(431), "{name}: {f:?}");
        assert_ne!(f.flags & END_STREAM, 0, "{name}: a 431 ends its stream");
        // The same connection goes on serving.
        assert_eq!(c.status(5, "/after"), Some(200), "{}", proxy.log());
        assert_eq!(b[0].hits(), 2 * (i + 1), "{name} reached the backend");
    }

    // 40 KiB (over 4 x 8 KiB): HEADERS and two CONTINUATIONs. The
    // connection ends with a GOAWAY.
    let mut c = Conn::open(proxy.http);
    assert_eq!(c.status(1, "/before"), Some(200), "{}", proxy.log());
    let huge = "h".repeat(40 * 1024);
    let block = request_block("/huge", &[("x-huge", &huge)]);
    let (one, rest) = block.split_at(16 * 1024);
    let (two, three) = rest.split_at(16 * 1024);
    let mut bytes = frame(HEADERS, END_STREAM, 3, one);
    bytes.extend(frame(CONTINUATION, 0, 3, two));
    bytes.extend(frame(CONTINUATION, END_HEADERS, 3, three));
    assert!(c.send(&bytes));
    let goaway = c.until_closed(Duration::from_secs(10));
    let goaway = goaway.expect("a GOAWAY before the close");
    eprintln!("40 KiB: {}", goaway.goaway_text());
    assert_eq!(goaway.error_code(), Some(ENHANCE_YOUR_CALM));
    assert_eq!(
        goaway.last_stream(),
        Some(1),
        "the huge stream was acted on"
    );
    // Other clients are served; nothing oversized got through.
    let mut fresh = Conn::open(proxy.http);
    assert_eq!(fresh.status(1, "/fresh"), Some(200), "{}", proxy.log());
    assert_eq!(b[0].hits(), 6, "an oversized request reached the backend");
}
