//! The two HTTP/1 engines held to one behaviour: switchyard's own forwarder
//! (`src/h1`) and Pingora's proxy path (`src/proxy`).
//!
//! One switchyard, two http listeners with the same routes to the same
//! scripted backend: `forwarder` (the default: plain requests take the
//! forwarder) and `pingora` (`forwarder: false`: every request goes through
//! Pingora). Each case of [`cases`] is one request shape and one scripted
//! backend answer; it is sent once through each listener, on a fresh client
//! connection, and what the client got (interim responses, status line,
//! headers, framing, body, trailers, whether the connection carries a next
//! request, what came through a tunnel, whether a paused body streamed) and
//! what the backend got (request line, headers, body) are compared. A
//! difference fails unless [`DELIBERATE`] lists it; some cases also state
//! what both engines must do ([`Expect`]), since a bug both share is no
//! difference.
//!
//! Every backend connection idle from an earlier run is closed before each
//! run, so no run depends on which idle connection a pool kept. Every read
//! has a deadline; the backend's threads end when the test does.
//!
//! `DIFFERENTIAL_ONLY=substring` runs only the cases whose name contains it;
//! `DIFFERENTIAL_VERBOSE=1` prints every aspect of every run.

mod common;
use common::*;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Differences we keep: (case name, aspect, why). The aspects are those of
/// [`aspects`]. Known bugs are not listed here: their cases fail until fixed.
/// An entry whose difference no longer shows is reported as a note.
const DELIBERATE: &[(&str, &str, &str)] = &[
    (
        "resp_backend_date",
        "headers",
        "the forwarder passes the backend's Date through (and adds one only when there is none); Pingora's path always sets its own (README, HTTP behaviour)",
    ),
    (
        "resp_chunked_trailers_te",
        "trailers",
        "the forwarder copies a chunked body as it is, trailers included; Pingora 0.9's HTTP/1 path drops response trailers (README, HTTP behaviour)",
    ),
    (
        "resp_chunked_trailers_no_te",
        "trailers",
        "as resp_chunked_trailers_te; a recipient may discard trailers it did not ask for (RFC 9110 6.5.1) (README, HTTP behaviour)",
    ),
    (
        "fault_bad_chunk_in_response",
        "body",
        "how much of a body with broken chunk framing reaches the client before the cut depends on where the break falls in a read: the forwarder drops the read holding it, Pingora's path passes the chunks decoded before it; both cut the response and close (README, HTTP behaviour)",
    ),
];

/// The longest a client waits for one response.
const RESPONSE_WAIT: Duration = Duration::from_secs(5);
/// The longest a client waits for the answer to the follow-up request that
/// tells whether its connection is still usable.
const PROBE_WAIT: Duration = Duration::from_millis(1500);
/// The longest the backend waits for any read.
const BACKEND_WAIT: Duration = Duration::from_secs(2);
/// The backend's `Date`, to tell it from one the proxy made.
const BACKEND_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
/// How long a paused response pauses.
const PAUSE_MS: u64 = 400;

// ---------------------------------------------------------------------------
// The cases

/// What the client does, in order. Request bytes may contain `{P}`, replaced
/// by the case's path `/case/N` (which selects the backend's script).
enum Act {
    Write(Vec<u8>),
    Sleep(u64),
    /// Waits up to this many ms for an interim response (100 Continue); it
    /// is reported with the next response.
    AwaitInterim(u64),
    /// Reads one response (and the interim responses before it).
    Read,
    /// Reads one response to a HEAD request.
    ReadHead,
    /// After a 101: sends these bytes through the tunnel and reads what
    /// comes back (until the backend's echo of them has arrived).
    Tunnel(Vec<u8>),
}

/// What the backend does with one request of a case, in order.
#[derive(Clone)]
enum Step {
    /// `100 Continue`, if the request carries `Expect: 100-continue`.
    Continue,
    /// Reads the request body by its framing and records the request.
    ReadBody,
    Send(Vec<u8>),
    Pause(u64),
    /// Answers nothing and holds the connection until the proxy gives up.
    Hang,
    /// Echoes what arrives, prefixed `echo:`, until the proxy closes.
    Tunnel,
    /// Closes the connection.
    Close,
}

/// Where the first part of a paused response ends.
#[derive(Clone, Copy)]
enum Split {
    /// After the response head.
    Head,
    /// After this many body bytes.
    Body(usize),
}

/// What both engines must do, whatever the other does.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The (first) final response has this status.
    Status(u16),
    /// The backend received no request.
    NothingForwarded,
    /// The first part of the paused response arrived before the pause ended.
    Streamed,
    /// The connection answered a next request.
    KeepsConnection,
    /// No response was chunked (HTTP/1.0 clients).
    NotChunked,
}

struct Case {
    name: &'static str,
    acts: Vec<Act>,
    steps: Vec<Step>,
    timing: Option<Split>,
    expect: Vec<Expect>,
}

impl Case {
    fn new(name: &'static str, acts: Vec<Act>, steps: Vec<Step>) -> Case {
        Case {
            name,
            acts,
            steps,
            timing: None,
            expect: Vec::new(),
        }
    }

    fn timing(mut self, split: Split) -> Case {
        self.timing = Some(split);
        self.expect.push(Expect::Streamed);
        self
    }

    fn expect(mut self, e: Expect) -> Case {
        self.expect.push(e);
        self
    }
}

fn w(bytes: impl AsRef<[u8]>) -> Act {
    Act::Write(bytes.as_ref().to_vec())
}

/// Send `request`, read one response.
fn req(request: impl AsRef<[u8]>) -> Vec<Act> {
    let head = request.as_ref().starts_with(b"HEAD ");
    vec![w(request), if head { Act::ReadHead } else { Act::Read }]
}

/// Read the request, send `bytes`.
fn answer(bytes: impl AsRef<[u8]>) -> Vec<Step> {
    vec![Step::ReadBody, Step::Send(bytes.as_ref().to_vec())]
}

/// A 200 with a Content-Length body.
fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `body` as chunks of at most `size` bytes, with the last chunk.
fn chunked(body: &str, size: usize) -> String {
    let mut out = String::new();
    for part in body.as_bytes().chunks(size) {
        out.push_str(&format!("{:x}\r\n", part.len()));
        out.push_str(std::str::from_utf8(part).unwrap());
        out.push_str("\r\n");
    }
    out.push_str("0\r\n\r\n");
    out
}

const GET: &str = "GET {P} HTTP/1.1\r\nHost: a\r\n\r\n";
const WEBSOCKET: &str = "GET {P} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const SWITCHED: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

fn cases() -> Vec<Case> {
    use Expect::*;
    let big_headers: String = (0..30)
        .map(|i| format!("X-Big-{i}: {}\r\n", "b".repeat(1000)))
        .collect();
    let many_headers: String = (0..150).map(|i| format!("X-Many-{i}: v{i}\r\n")).collect();
    let huge_headers: String = (0..70)
        .map(|i| format!("X-Huge-{i}: {}\r\n", "h".repeat(1000)))
        .collect();
    let big_body = "0123456789abcdef".repeat(12 * 1024);
    let huge_body = "abcdefghijklmnopqrstuvwxyz012345".repeat(32 * 1024);
    let long_path = format!("{{P}}/{}", "u".repeat(8000));
    let too_long_path = format!("{{P}}/{}", "u".repeat(9000));
    let paused_length = vec![
        Step::ReadBody,
        Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\nfirst-part|".to_vec()),
        Step::Pause(PAUSE_MS),
        Step::Send(b"second-part".to_vec()),
    ];
    let paused_chunked = vec![
        Step::ReadBody,
        Step::Send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nfirst-part|\r\n".to_vec(),
        ),
        Step::Pause(PAUSE_MS),
        Step::Send(b"b\r\nsecond-part\r\n0\r\n\r\n".to_vec()),
    ];
    let paused_close = vec![
        Step::ReadBody,
        Step::Send(b"HTTP/1.1 200 OK\r\n\r\nfirst-part|".to_vec()),
        Step::Pause(PAUSE_MS),
        Step::Send(b"second-part".to_vec()),
        Step::Close,
    ];
    let paused_head = vec![
        Step::ReadBody,
        Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n".to_vec()),
        Step::Pause(PAUSE_MS),
        Step::Send(b"second-part".to_vec()),
    ];
    let tunnel = vec![
        Step::ReadBody,
        Step::Send(SWITCHED.as_bytes().to_vec()),
        Step::Tunnel,
    ];
    let tunnel_server_first = vec![
        Step::ReadBody,
        Step::Send(format!("{SWITCHED}hello-from-backend|").into_bytes()),
        Step::Tunnel,
    ];
    let expect_ok = vec![Step::Continue, Step::ReadBody, Step::Send(ok("stored"))];
    let close_after = |bytes: &[u8]| vec![Step::ReadBody, Step::Send(bytes.to_vec()), Step::Close];

    vec![
        // Methods and request bodies.
        Case::new("get", req(GET), answer(ok("hello"))),
        Case::new(
            "get_query_and_percent_encoding",
            req("GET {P}/a%2Fb/%7Euser?x=1&y=%20z HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("hello")),
        ),
        Case::new(
            "get_dot_segments",
            req("GET {P}/x/../y/./z HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("hello")),
        ),
        Case::new(
            "head",
            req("HEAD {P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"),
        )
        .expect(KeepsConnection),
        Case::new(
            "head_chunked_answer",
            req("HEAD {P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ),
        Case::new(
            "options",
            req("OPTIONS {P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer("HTTP/1.1 200 OK\r\nAllow: GET, HEAD, OPTIONS\r\nContent-Length: 0\r\n\r\n"),
        ),
        Case::new(
            "options_cors_preflight",
            req("OPTIONS {P} HTTP/1.1\r\nHost: a\r\nOrigin: http://b.example\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-token\r\n\r\n"),
            answer("HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: http://b.example\r\nAccess-Control-Allow-Methods: PUT\r\nAccess-Control-Allow-Headers: x-token\r\nAccess-Control-Max-Age: 600\r\n\r\n"),
        ),
        Case::new(
            "options_asterisk",
            req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("star")),
        ),
        Case::new(
            "delete",
            req("DELETE {P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer("HTTP/1.1 204 No Content\r\n\r\n"),
        )
        .expect(KeepsConnection),
        Case::new(
            "delete_with_body",
            req("DELETE {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\ngone"),
            answer(ok("deleted")),
        ),
        Case::new(
            "put_content_length",
            req("PUT {P} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"),
            answer("HTTP/1.1 201 Created\r\nLocation: /things/1\r\nContent-Length: 0\r\n\r\n"),
        ),
        Case::new(
            "post_content_length",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2"),
            answer(ok("got it")),
        ),
        Case::new(
            "post_empty_content_length",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
            answer(ok("empty")),
        ),
        Case::new(
            "post_without_length",
            req("POST {P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("nothing")),
        ),
        Case::new(
            "patch",
            req("PATCH {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n{\"a\": 2}\n"),
            answer(ok("patched")),
        ),
        Case::new(
            "custom_method",
            req("PURGE {P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("purged")),
        ),
        Case::new(
            "get_with_body",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"),
            answer(ok("hello")),
        ),
        Case::new(
            "post_large_body",
            req(format!(
                "POST {{P}} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{big_body}",
                big_body.len()
            )),
            answer(ok("big")),
        ),
        Case::new(
            "post_slow_body",
            vec![
                w("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello"),
                Act::Sleep(200),
                w("world"),
                Act::Read,
            ],
            answer(ok("slow")),
        ),
        Case::new(
            "post_chunked",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            answer(ok("chunks")),
        )
        .expect(KeepsConnection),
        Case::new(
            "post_chunked_extensions",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6;x\r\n world\r\n0\r\n\r\n"),
            answer(ok("chunks")),
        ),
        Case::new(
            "post_chunked_trailers",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n"),
            answer(ok("trailers")),
        ),
        Case::new(
            "post_chunked_empty",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            answer(ok("none")),
        ),
        Case::new(
            "post_chunked_large",
            req(format!(
                "POST {{P}} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{}",
                chunked(&big_body, 4096)
            )),
            answer(ok("big")),
        ),
        Case::new(
            "request_hop_by_hop_headers",
            req("POST {P} HTTP/1.1\r\nHost: App.Example\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: 5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nTE: gzip, trailers\r\nTrailer: X-T\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-Proto: gopher\r\nX-Forwarded-Host: evil.example\r\nCookie: a=b\r\nX-Normal: yes\r\nContent-Length: 2\r\n\r\nhi"),
            answer(ok("ok")),
        ),
        Case::new(
            "request_header_name_case",
            req("GET {P} HTTP/1.1\r\nHOST: a\r\nX-MiXeD-CaSe: 1\r\nx-lower: 2\r\nAccept: */*\r\n\r\n"),
            answer(ok("hello")),
        ),
        Case::new(
            "leading_blank_line",
            req("\r\nGET {P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("hello")),
        ),
        // Response shapes.
        Case::new("resp_204", req(GET), answer("HTTP/1.1 204 No Content\r\nX-Done: 1\r\n\r\n")),
        Case::new(
            "resp_304",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v1\"\r\n\r\n"),
            answer("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=60\r\n\r\n"),
        )
        .expect(KeepsConnection),
        Case::new(
            "resp_304_with_length",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v1\"\r\n\r\n"),
            answer("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n"),
        ),
        Case::new(
            "resp_content_length_zero",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ),
        Case::new(
            "resp_chunked",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        )
        .expect(KeepsConnection),
        Case::new(
            "resp_chunked_extensions",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6;c\r\n world\r\n0\r\n\r\n"),
        ),
        Case::new(
            "resp_chunked_trailers_te",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n"),
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n"),
        ),
        Case::new(
            "resp_chunked_trailers_no_te",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n"),
        ),
        Case::new(
            "resp_chunked_and_length",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ),
        Case::new(
            "resp_close_delimited",
            req(GET),
            close_after(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"),
        ),
        Case::new(
            "resp_close_delimited_connection_close",
            req(GET),
            close_after(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"),
        ),
        Case::new(
            "resp_length_then_backend_closes",
            req(GET),
            close_after(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
        )
        .expect(KeepsConnection),
        Case::new(
            "resp_chunked_empty",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ),
        Case::new(
            "resp_http10_backend",
            req(GET),
            close_after(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ),
        Case::new(
            "resp_100_then_200",
            req(GET),
            answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ),
        Case::new(
            "resp_103_then_200",
            req(GET),
            answer("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ),
        Case::new(
            "resp_two_103_then_200",
            req(GET),
            answer("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ),
        Case::new(
            "resp_102_then_200",
            req(GET),
            answer("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ),
        Case::new(
            "resp_custom_reason",
            req(GET),
            answer("HTTP/1.1 299 Quite Alright\r\nContent-Length: 2\r\n\r\nok"),
        ),
        Case::new(
            "resp_no_reason",
            req(GET),
            answer("HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
        ),
        Case::new(
            "resp_hop_by_hop_headers",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\nok"),
        ),
        Case::new(
            "resp_repeated_headers",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nX-Kept: yes\r\nSet-Cookie: b=2; Path=/\r\nX-Kept: twice\r\nx-lower-case: v\r\nContent-Length: 2\r\n\r\nok"),
        ),
        Case::new(
            "resp_backend_date",
            req(GET),
            answer(format!(
                "HTTP/1.1 200 OK\r\nDate: {BACKEND_DATE}\r\nContent-Length: 2\r\n\r\nok"
            )),
        ),
        Case::new(
            "resp_large_head",
            req(GET),
            answer(format!(
                "HTTP/1.1 200 OK\r\n{big_headers}Content-Length: 2\r\n\r\nok"
            )),
        ),
        Case::new(
            "resp_head_over_64k",
            req(GET),
            answer(format!(
                "HTTP/1.1 200 OK\r\n{huge_headers}Content-Length: 2\r\n\r\nok"
            )),
        ),
        Case::new(
            "resp_large_body",
            req(GET),
            answer(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{huge_body}",
                huge_body.len()
            )),
        ),
        Case::new(
            "resp_large_chunked",
            req(GET),
            answer(format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{}",
                chunked(&huge_body[..256 * 1024], 8192)
            )),
        ),
        Case::new(
            "resp_500_with_body",
            req(GET),
            answer("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\n\r\nbroken"),
        ),
        Case::new(
            "resp_extra_bytes_after_body",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXYZ"),
        ),
        Case::new(
            "resp_101_without_upgrade",
            req(GET),
            answer(SWITCHED),
        ),
        Case::new(
            "resp_conflicting_lengths",
            req(GET),
            answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
        ),
        // Paused responses: what came before the pause is passed on at once.
        Case::new("paused_length", req(GET), paused_length).timing(Split::Body(11)),
        Case::new("paused_chunked", req(GET), paused_chunked).timing(Split::Body(11)),
        Case::new("paused_close_delimited", req(GET), paused_close).timing(Split::Body(11)),
        Case::new("paused_after_head", req(GET), paused_head).timing(Split::Head),
        // Clients: HTTP/1.0, keep-alive, close, pipelining, large heads.
        Case::new(
            "http10_get",
            req("GET {P} HTTP/1.0\r\nHost: a\r\n\r\n"),
            answer(ok("hello")),
        ),
        Case::new(
            "http10_keep_alive",
            req("GET {P} HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"),
            answer(ok("hello")),
        ),
        Case::new(
            "http10_chunked_answer",
            req("GET {P} HTTP/1.0\r\nHost: a\r\n\r\n"),
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        )
        .expect(NotChunked),
        Case::new(
            "http10_keep_alive_chunked_answer",
            req("GET {P} HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"),
            answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        )
        .expect(NotChunked),
        Case::new(
            "http10_close_delimited_answer",
            req("GET {P} HTTP/1.0\r\nHost: a\r\n\r\n"),
            close_after(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"),
        )
        .expect(NotChunked),
        Case::new(
            "http10_post",
            req("POST {P} HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"),
            answer(ok("posted")),
        ),
        Case::new(
            "http10_chunked_request",
            req("POST {P} HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "http10_without_host",
            req("GET {P} HTTP/1.0\r\n\r\n"),
            answer(ok("hello")),
        ),
        Case::new(
            "connection_close",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
            answer(ok("bye")),
        ),
        Case::new(
            "keep_alive_two_requests",
            vec![w(GET), Act::Read, w("GET {P}/second HTTP/1.1\r\nHost: a\r\n\r\n"), Act::Read],
            answer(ok("again")),
        )
        .expect(KeepsConnection),
        Case::new(
            "pipelined_gets",
            vec![
                w("GET {P} HTTP/1.1\r\nHost: a\r\n\r\nGET {P}/second HTTP/1.1\r\nHost: a\r\n\r\n"),
                Act::Read,
                Act::Read,
            ],
            answer(ok("piped")),
        )
        .expect(KeepsConnection),
        Case::new(
            "pipelined_post_then_get",
            vec![
                w("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET {P}/second HTTP/1.1\r\nHost: a\r\n\r\n"),
                Act::Read,
                Act::Read,
            ],
            answer(ok("piped")),
        ),
        Case::new(
            "pipelined_chunked_post_then_get",
            vec![
                w("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET {P}/second HTTP/1.1\r\nHost: a\r\n\r\n"),
                Act::Read,
                Act::Read,
            ],
            answer(ok("piped")),
        ),
        Case::new(
            "large_request_head",
            req(format!("GET {{P}} HTTP/1.1\r\nHost: a\r\n{big_headers}\r\n")),
            answer(ok("big head")),
        ),
        Case::new(
            "many_request_headers",
            req(format!("GET {{P}} HTTP/1.1\r\nHost: a\r\n{many_headers}\r\n")),
            answer(ok("many")),
        ),
        Case::new(
            "request_head_too_large",
            req(format!("GET {{P}} HTTP/1.1\r\nHost: a\r\n{huge_headers}\r\n")),
            answer(ok("never")),
        )
        .expect(Status(431))
        .expect(NothingForwarded),
        Case::new(
            "long_uri_under_limit",
            req(format!("GET {long_path} HTTP/1.1\r\nHost: a\r\n\r\n")),
            answer(ok("long")),
        )
        .expect(Status(200)),
        Case::new(
            "uri_too_long",
            req(format!("GET {too_long_path} HTTP/1.1\r\nHost: a\r\n\r\n")),
            answer(ok("never")),
        )
        .expect(Status(414))
        .expect(NothingForwarded),
        Case::new(
            "absolute_form",
            req("GET http://a{P}?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("absolute")),
        ),
        Case::new(
            "unrouted",
            req("GET /elsewhere HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(404))
        .expect(NothingForwarded),
        // Malformed or ambiguous requests: 400 (405), nothing forwarded.
        Case::new(
            "missing_host",
            req("GET {P} HTTP/1.1\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "two_host_headers",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "connect_method",
            req("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(405))
        .expect(NothingForwarded),
        Case::new(
            "bare_lf_line_ends",
            req("GET {P} HTTP/1.1\nHost: a\n\n"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "length_and_chunked",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "conflicting_lengths",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "unknown_transfer_coding",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nxx"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "bad_chunk_size_z",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\nhello\r\n0\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "bad_chunk_size_overflow",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nhello\r\n0\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        Case::new(
            "bad_chunk_size_bare_cr",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\rhello\r\n0\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
        // Upgrades, refused and tunnelled.
        Case::new("upgrade_websocket_refused", req(WEBSOCKET), answer(ok("no upgrade")))
            .expect(KeepsConnection),
        Case::new(
            "upgrade_h2c_refused",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"),
            answer(ok("no upgrade")),
        ),
        Case::new(
            "upgrade_websocket_tunnel",
            vec![w(WEBSOCKET), Act::Read, Act::Tunnel(b"ping".to_vec())],
            tunnel,
        ),
        Case::new(
            "upgrade_websocket_tunnel_backend_first",
            vec![w(WEBSOCKET), Act::Read, Act::Tunnel(b"ping".to_vec())],
            tunnel_server_first,
        ),
        // Expect: 100-continue.
        Case::new(
            "expect_continue_length",
            vec![
                w("PUT {P} HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
                Act::AwaitInterim(1000),
                w("hello"),
                Act::Read,
            ],
            expect_ok.clone(),
        )
        .expect(Status(200))
        .expect(KeepsConnection),
        Case::new(
            "expect_continue_chunked",
            vec![
                w("PUT {P} HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"),
                Act::AwaitInterim(1000),
                w("5\r\nhello\r\n0\r\n\r\n"),
                Act::Read,
            ],
            expect_ok.clone(),
        )
        .expect(Status(200))
        .expect(KeepsConnection),
        Case::new(
            "expect_continue_body_without_waiting",
            req("PUT {P} HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"),
            expect_ok,
        )
        .expect(Status(200))
        .expect(KeepsConnection),
        // Backend faults.
        Case::new(
            "fault_cut_length",
            req(GET),
            close_after(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd"),
        ),
        Case::new(
            "fault_cut_chunked",
            req(GET),
            close_after(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        ),
        Case::new(
            "fault_bad_chunk_in_response",
            req(GET),
            close_after(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"),
        ),
        Case::new(
            "fault_cut_head",
            req(GET),
            close_after(b"HTTP/1.1 200 OK\r\nContent-Le"),
        )
        .expect(Status(502)),
        Case::new(
            "fault_garbage_status_line",
            req(GET),
            close_after(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        )
        .expect(Status(502)),
        Case::new(
            "fault_binary_garbage",
            req(GET),
            close_after(&(0u8..=255).chain(*b"\r\n\r\n").collect::<Vec<u8>>()),
        )
        .expect(Status(502)),
        Case::new(
            "fault_1xx_then_close",
            req(GET),
            close_after(b"HTTP/1.1 100 Continue\r\n\r\n"),
        )
        .expect(Status(502)),
        Case::new(
            "fault_closes_without_answer",
            req(GET),
            vec![Step::ReadBody, Step::Close],
        )
        .expect(Status(502)),
        Case::new(
            "fault_closes_without_answer_post",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"),
            vec![Step::ReadBody, Step::Close],
        )
        .expect(Status(502)),
        Case::new(
            "fault_never_answers",
            req("GET /slow{P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            vec![Step::ReadBody, Step::Hang],
        )
        .expect(Status(504)),
        Case::new(
            "fault_slow_head_within_timeout",
            req("GET /slow{P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            vec![Step::ReadBody, Step::Pause(500), Step::Send(ok("late"))],
        )
        .expect(Status(200)),
        Case::new(
            "fault_body_gap_over_timeout",
            req("GET /slow{P} HTTP/1.1\r\nHost: a\r\n\r\n"),
            vec![
                Step::ReadBody,
                Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd".to_vec()),
                Step::Pause(1500),
                Step::Send(b"efghij".to_vec()),
            ],
        ),
    ]
}

// ---------------------------------------------------------------------------
// The scripted backend

/// A request as the backend received it, described for comparison.
type Record = String;

struct Shared {
    scripts: Vec<Vec<Step>>,
    /// Per case: the requests received (probes left out).
    records: Mutex<HashMap<usize, Vec<Record>>>,
    /// Per case: requests whose head arrived and which are not recorded yet.
    busy: Mutex<HashMap<usize, usize>>,
    /// Bumped to make idle connections close.
    epoch: AtomicU64,
    /// Connections waiting for a next request.
    idle: AtomicUsize,
    stop: AtomicBool,
}

struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Backend {
    fn start(scripts: Vec<Vec<Step>>) -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let shared = Arc::new(Shared {
            scripts,
            records: Mutex::default(),
            busy: Mutex::default(),
            epoch: AtomicU64::new(0),
            idle: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let sh = Arc::clone(&shared);
        thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(300);
            while !sh.stop.load(SeqCst) && Instant::now() < end {
                match l.accept() {
                    Ok((s, _)) => {
                        let sh = Arc::clone(&sh);
                        thread::spawn(move || serve(s, &sh));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Backend { addr, shared }
    }

    /// Closes every idle connection, so the next request opens a new one.
    fn fresh(&self) {
        self.shared.epoch.fetch_add(1, SeqCst);
        let end = Instant::now() + Duration::from_secs(1);
        while self.shared.idle.load(SeqCst) > 0 && Instant::now() < end {
            thread::sleep(Duration::from_millis(2));
        }
        // Time for the proxy's pools to see the close.
        thread::sleep(Duration::from_millis(15));
    }

    /// What case `n` made the backend receive since the last call.
    fn take(&self, n: usize) -> Vec<Record> {
        thread::sleep(Duration::from_millis(10));
        let end = Instant::now() + BACKEND_WAIT + Duration::from_millis(500);
        while self
            .shared
            .busy
            .lock()
            .unwrap()
            .get(&n)
            .copied()
            .unwrap_or(0)
            > 0
            && Instant::now() < end
        {
            thread::sleep(Duration::from_millis(5));
        }
        self.shared
            .records
            .lock()
            .unwrap()
            .remove(&n)
            .unwrap_or_default()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
    }
}

/// The case a request target belongs to: `/case/N` anywhere in it.
fn case_of(target: &str) -> Option<usize> {
    let at = target.find("/case/")? + "/case/".len();
    let digits: String = target[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// One backend connection: requests, each answered by its case's script.
fn serve(s: TcpStream, sh: &Shared) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_nodelay(true);
    let Ok(mut out) = s.try_clone() else { return };
    let mut r = BufReader::with_capacity(64 * 1024, s);
    for _ in 0..1000 {
        if !wait_for_request(&mut r, sh) {
            return;
        }
        let _ = r.get_ref().set_read_timeout(Some(BACKEND_WAIT));
        let Some(lines) = read_lines(&mut r) else {
            return;
        };
        let target = lines[0].split(' ').nth(1).unwrap_or("").to_string();
        let probe = target.ends_with("/probe");
        let case = case_of(&target).filter(|_| !probe);
        let steps = if probe {
            answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nprobe")
        } else {
            case.and_then(|c| sh.scripts.get(c).cloned())
                .unwrap_or_else(|| answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        };
        if let Some(c) = case {
            *sh.busy.lock().unwrap().entry(c).or_default() += 1;
        }
        let headers = header_fields(&lines[1..]);
        let mut recorded = false;
        let mut record = |body: String| {
            if let (Some(c), false) = (case, recorded) {
                let mut text = format!("{}\n", lines[0]);
                for (n, v) in sorted(&headers) {
                    text.push_str(&format!("  {n}: {}\n", show(v.as_bytes())));
                }
                text.push_str(&format!("  body: {body}"));
                sh.records.lock().unwrap().entry(c).or_default().push(text);
                *sh.busy.lock().unwrap().entry(c).or_default() -= 1;
            }
            recorded = true;
        };
        let mut open = true;
        for step in steps {
            match step {
                Step::Continue => {
                    let expects = headers.iter().any(|(n, v)| {
                        n.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue")
                    });
                    if expects && out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                        open = false;
                    }
                }
                Step::ReadBody => {
                    let (body, intact) = read_body(&mut r, &headers);
                    record(body);
                    open &= intact;
                }
                Step::Send(bytes) => open &= out.write_all(&bytes).is_ok(),
                Step::Pause(ms) => thread::sleep(Duration::from_millis(ms)),
                Step::Hang => {
                    hold(&mut r, Duration::from_secs(4));
                    open = false;
                }
                Step::Tunnel => {
                    echo(&mut r, &mut out);
                    open = false;
                }
                Step::Close => open = false,
            }
            if !open {
                break;
            }
        }
        record("(not read)".into());
        if !open {
            let _ = out.shutdown(Shutdown::Write);
            // Read what is left for a moment, so the close is not a reset.
            let _ = r
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(50)));
            let _ = r.read(&mut [0u8; 4096]);
            return;
        }
    }
}

/// Waits for the first byte of a next request; false when the connection
/// closed, or was told to close ([`Backend::fresh`]) while idle.
fn wait_for_request(r: &mut BufReader<TcpStream>, sh: &Shared) -> bool {
    if !r.buffer().is_empty() {
        return true;
    }
    let epoch = sh.epoch.load(SeqCst);
    sh.idle.fetch_add(1, SeqCst);
    let _ = r.get_ref().set_read_timeout(Some(Duration::from_millis(5)));
    let end = Instant::now() + Duration::from_secs(120);
    let ready = loop {
        match r.fill_buf() {
            Ok(b) => break !b.is_empty(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if sh.epoch.load(SeqCst) != epoch || sh.stop.load(SeqCst) || Instant::now() > end {
                    break false;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    sh.idle.fetch_sub(1, SeqCst);
    ready
}

/// A head's lines (without CRLF), the request line first.
fn read_lines(r: &mut BufReader<TcpStream>) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let line = crlf_line(r).ok()?;
        total += line.len() + 2;
        if total > 256 * 1024 {
            return None;
        }
        if line.is_empty() {
            return (!lines.is_empty()).then_some(lines);
        }
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
}

/// One line up to LF, without its line end.
fn crlf_line<R: BufRead>(r: &mut R) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    match r.take(128 * 1024).read_until(b'\n', &mut line) {
        Ok(0) => Err("closed".into()),
        Ok(_) if line.last() != Some(&b'\n') => Err("closed mid-line".into()),
        Ok(_) => {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            Ok(line)
        }
        Err(e) => Err(format!("{:?}", e.kind())),
    }
}

/// (name as sent, value) of header lines.
fn header_fields(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
            None => ("(no colon)".to_string(), l.clone()),
        })
        .collect()
}

fn field<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads a request body; its description, and whether it arrived whole.
fn read_body(r: &mut BufReader<TcpStream>, headers: &[(String, String)]) -> (String, bool) {
    let chunked = field(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let (mut body, mut trailers) = (Vec::new(), Vec::new());
        let result = read_chunks(r, &mut body, &mut trailers);
        let mut text = format!("chunked {}", show(&body));
        if !trailers.is_empty() {
            text.push_str(&format!(", trailers [{}]", trailers.join("; ")));
        }
        if let Err(e) = &result {
            text.push_str(&format!(", broken: {e}"));
        }
        return (text, result.is_ok());
    }
    let Some(len) = field(headers, "content-length") else {
        return ("none".into(), true);
    };
    let Ok(len) = len.parse::<usize>() else {
        return (format!("bad length {len:?}"), false);
    };
    let mut body = Vec::new();
    let got = r.take(len as u64).read_to_end(&mut body);
    let mut text = format!("length {}", show(&body));
    let whole = got.is_ok() && body.len() == len;
    if !whole {
        text.push_str(&format!(", cut short at {} of {len}", body.len()));
    }
    (text, whole)
}

/// A chunked body, decoded, and its trailer lines.
fn read_chunks<R: BufRead>(
    r: &mut R,
    body: &mut Vec<u8>,
    trailers: &mut Vec<String>,
) -> Result<(), String> {
    for _ in 0..100_000 {
        let line = crlf_line(r)?;
        let text = String::from_utf8_lossy(&line);
        let size = text.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16)
            .ok()
            .filter(|n| *n <= 16 << 20)
            .ok_or_else(|| format!("bad chunk size line {}", show(&line)))?;
        if n == 0 {
            loop {
                let line = crlf_line(r)?;
                if line.is_empty() {
                    return Ok(());
                }
                trailers.push(String::from_utf8_lossy(&line).into_owned());
            }
        }
        let mut data = vec![0u8; n + 2];
        r.read_exact(&mut data)
            .map_err(|e| format!("{:?}", e.kind()))?;
        if &data[n..] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        body.extend_from_slice(&data[..n]);
    }
    Err("too many chunks".into())
}

/// Reads and drops what arrives until the peer closes or `limit` passes.
fn hold(r: &mut BufReader<TcpStream>, limit: Duration) {
    let end = Instant::now() + limit;
    let _ = r
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)));
    let mut sink = [0u8; 4096];
    while Instant::now() < end {
        match r.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// The tunnel's far end: echoes what arrives until the peer closes.
fn echo(r: &mut BufReader<TcpStream>, out: &mut TcpStream) {
    let _ = r.get_ref().set_read_timeout(Some(BACKEND_WAIT));
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                if out.write_all(&reply).is_err() {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The client

/// A client connection that keeps every byte received, and when it came.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
    /// Read position in `buf`.
    pos: usize,
    /// (length of `buf` after a read, when that read returned).
    arrivals: Vec<(usize, Instant)>,
    closed: bool,
}

enum Fill {
    Data,
    Closed,
    Timeout,
}

/// Why a message could not be read whole.
fn stop_reason(f: Fill) -> String {
    match f {
        Fill::Closed => "cut short (connection closed)".into(),
        _ => "stalled (nothing more within the wait)".into(),
    }
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_write_timeout(Some(RESPONSE_WAIT)).unwrap();
        Client {
            s,
            buf: Vec::new(),
            pos: 0,
            arrivals: Vec::new(),
            closed: false,
        }
    }

    fn avail(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn fill(&mut self, deadline: Instant) -> Fill {
        let mut tmp = vec![0u8; 64 * 1024];
        for _ in 0..100 {
            if self.closed {
                return Fill::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Fill::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            let _ = self.s.set_read_timeout(Some(wait));
            match self.s.read(&mut tmp) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    self.arrivals.push((self.buf.len(), Instant::now()));
                    return Fill::Data;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Fill::Timeout
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
        Fill::Timeout
    }

    /// When the byte at `offset` arrived.
    fn arrival(&self, offset: usize) -> Option<Instant> {
        self.arrivals
            .iter()
            .find(|(end, _)| *end > offset)
            .map(|(_, t)| *t)
    }

    /// A complete head at the read position: its lines, consumed.
    fn head(&mut self, deadline: Instant) -> Result<Vec<String>, String> {
        loop {
            if let Some(i) = find(&self.buf[self.pos..], b"\r\n\r\n") {
                let head = &self.buf[self.pos..self.pos + i];
                let lines = head
                    .split(|b| *b == b'\n')
                    .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into())
                    .collect();
                self.pos += i + 4;
                return Ok(lines);
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Closed if self.avail() == 0 => {
                    return Err("connection closed without a response".into())
                }
                Fill::Closed => {
                    return Err(format!(
                        "connection closed mid-head: {}",
                        show(&self.buf[self.pos..])
                    ))
                }
                Fill::Timeout if self.avail() == 0 => return Err("no response (timed out)".into()),
                Fill::Timeout => {
                    return Err(format!(
                        "incomplete head, then nothing: {}",
                        show(&self.buf[self.pos..])
                    ))
                }
            }
        }
    }

    /// A CRLF-ended line, consumed, without its CRLF.
    fn line(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = find(&self.buf[self.pos..], b"\r\n") {
                let line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.avail() > 64 * 1024 {
                return Err("line too long".into());
            }
            match self.fill(deadline) {
                Fill::Data => {}
                f => return Err(stop_reason(f)),
            }
        }
    }

    /// `n` body bytes into `resp`.
    fn body_bytes(&mut self, n: usize, resp: &mut Resp, deadline: Instant) -> Result<(), String> {
        let mut left = n;
        while left > 0 {
            if self.avail() == 0 {
                match self.fill(deadline) {
                    Fill::Data => {}
                    f => return Err(stop_reason(f)),
                }
            }
            let k = left.min(self.avail());
            resp.segments.push((resp.body.len(), self.pos, k));
            resp.body
                .extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            left -= k;
        }
        Ok(())
    }

    fn chunked_body(&mut self, resp: &mut Resp, deadline: Instant) -> Result<(), String> {
        for _ in 0..100_000 {
            let line = self.line(deadline)?;
            let text = String::from_utf8_lossy(&line).into_owned();
            let size = text.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(size, 16)
                .ok()
                .filter(|n| *n <= 64 << 20)
                .ok_or_else(|| format!("bad chunk size line {}", show(&line)))?;
            if n == 0 {
                loop {
                    let line = self.line(deadline)?;
                    if line.is_empty() {
                        return Ok(());
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    resp.trailers.extend(header_fields(&[text]));
                }
            }
            self.body_bytes(n, resp, deadline)?;
            if !self.line(deadline)?.is_empty() {
                return Err("chunk data not followed by CRLF".into());
            }
        }
        Err("too many chunks".into())
    }

    fn until_close(&mut self, resp: &mut Resp, deadline: Instant) -> Result<(), String> {
        loop {
            let k = self.avail();
            if k > 0 {
                resp.segments.push((resp.body.len(), self.pos, k));
                resp.body.extend_from_slice(&self.buf[self.pos..]);
                self.pos += k;
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Closed => return Ok(()),
                Fill::Timeout => return Err(stop_reason(Fill::Timeout)),
            }
        }
    }

    /// One response, with the interim responses before it.
    fn response(&mut self, head_request: bool, interim: Vec<String>) -> Result<Resp, String> {
        let deadline = Instant::now() + RESPONSE_WAIT;
        let mut resp = Resp {
            interim,
            ..Resp::default()
        };
        let lines = loop {
            let lines = match self.head(deadline) {
                Ok(lines) => lines,
                Err(e) if resp.interim.is_empty() => return Err(e),
                Err(e) => return Err(format!("{:?}, then {e}", resp.interim)),
            };
            let status = status_of(&lines[0])?;
            if (100..200).contains(&status) && status != 101 {
                resp.interim.push(describe_head(&lines));
                continue;
            }
            break lines;
        };
        resp.status_line = lines[0].clone();
        resp.status = status_of(&lines[0])?;
        resp.headers = header_fields(&lines[1..]);
        resp.head_end = self.pos;
        let coded = field(&resp.headers, "transfer-encoding").map(str::to_string);
        let length = field(&resp.headers, "content-length").map(str::to_string);
        let result = if head_request || resp.status == 204 || resp.status == 304 {
            resp.framing = "no body";
            Ok(())
        } else if resp.status == 101 {
            resp.framing = "switched";
            Ok(())
        } else if let Some(coding) = coded {
            if coding.to_ascii_lowercase().trim_end().ends_with("chunked") {
                resp.framing = "chunked";
                self.chunked_body(&mut resp, deadline)
            } else {
                resp.framing = "close-delimited (non-chunked coding)";
                self.until_close(&mut resp, deadline)
            }
        } else if let Some(length) = length {
            resp.framing = "length";
            match length.parse::<usize>() {
                Ok(n) => self.body_bytes(n, &mut resp, deadline),
                Err(_) => Err(format!("bad Content-Length {length:?}")),
            }
        } else {
            resp.framing = "close-delimited";
            self.until_close(&mut resp, deadline)
        };
        resp.end = match result {
            Ok(()) => "complete".into(),
            Err(e) => e,
        };
        Ok(resp)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn status_of(line: &str) -> Result<u16, String> {
    line.split(' ')
        .nth(1)
        .filter(|_| line.starts_with("HTTP/"))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not a status line: {}", show(line.as_bytes())))
}

fn describe_head(lines: &[String]) -> String {
    let fields: Vec<String> = sorted(&header_fields(&lines[1..]))
        .iter()
        .map(|(n, v)| format!("{n}: {}", show(v.as_bytes())))
        .collect();
    format!("{} {{{}}}", lines[0], fields.join("; "))
}

/// One response as the client got it.
#[derive(Default)]
struct Resp {
    interim: Vec<String>,
    status_line: String,
    status: u16,
    headers: Vec<(String, String)>,
    framing: &'static str,
    /// "complete", or how it ended early.
    end: String,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    /// Offset in the connection's bytes just past the head.
    head_end: usize,
    /// (offset in body, offset in the connection's bytes, length).
    segments: Vec<(usize, usize, usize)>,
}

impl Resp {
    /// Where body byte `i` was in the connection's bytes.
    fn raw_offset(&self, i: usize) -> Option<usize> {
        self.segments
            .iter()
            .find(|(at, _, len)| (*at..at + len).contains(&i))
            .map(|(at, raw, _)| raw + (i - at))
    }
}

/// Everything one run of a case showed.
#[derive(Default)]
struct Obs {
    responses: Vec<Result<Resp, String>>,
    tunnel: Option<String>,
    /// What became of the connection after the last response.
    after: String,
    /// Whether the first part of a paused response came before the pause
    /// ended, and the measured gap.
    streamed: Option<(bool, String)>,
    backend: Vec<Record>,
}

/// Runs `case` (number `n`) once on a fresh connection to `addr`.
fn run(addr: SocketAddr, n: usize, case: &Case) -> Obs {
    let path = format!("/case/{n}");
    let sub = |bytes: &[u8]| -> Vec<u8> {
        String::from_utf8_lossy(bytes)
            .replace("{P}", &path)
            .into_bytes()
    };
    let mut c = Client::connect(addr);
    let mut obs = Obs::default();
    let mut interim = Vec::new();
    let mut tunnelled = false;
    for act in &case.acts {
        match act {
            Act::Write(bytes) => {
                // A write the proxy refuses shows in what is read next.
                let _ = c.s.write_all(&sub(bytes));
            }
            Act::Sleep(ms) => thread::sleep(Duration::from_millis(*ms)),
            Act::AwaitInterim(ms) => {
                let deadline = Instant::now() + Duration::from_millis(*ms);
                loop {
                    if let Some(i) = find(&c.buf[c.pos..], b"\r\n\r\n") {
                        let head: Vec<String> = String::from_utf8_lossy(&c.buf[c.pos..c.pos + i])
                            .split("\r\n")
                            .map(str::to_string)
                            .collect();
                        if status_of(&head[0]).is_ok_and(|s| (100..200).contains(&s) && s != 101) {
                            c.pos += i + 4;
                            interim.push(describe_head(&head));
                        }
                        break;
                    }
                    if !matches!(c.fill(deadline), Fill::Data) {
                        break;
                    }
                }
            }
            Act::Read | Act::ReadHead => {
                let r = c.response(matches!(act, Act::ReadHead), std::mem::take(&mut interim));
                let failed = r.is_err();
                obs.responses.push(r);
                if failed {
                    break;
                }
            }
            Act::Tunnel(bytes) => {
                tunnelled = true;
                let switched = matches!(obs.responses.last(), Some(Ok(r)) if r.status == 101);
                if !switched {
                    obs.tunnel = Some("(not switched)".into());
                    continue;
                }
                let _ = c.s.write_all(bytes);
                let mut wanted = b"echo:".to_vec();
                wanted.extend_from_slice(bytes);
                let deadline = Instant::now() + PROBE_WAIT;
                while find(&c.buf[c.pos..], &wanted).is_none() {
                    if !matches!(c.fill(deadline), Fill::Data) {
                        break;
                    }
                }
                obs.tunnel = Some(show(&c.buf[c.pos..]));
                c.pos = c.buf.len();
            }
        }
    }
    if let (Some(split), Some(Ok(r))) = (case.timing, obs.responses.first()) {
        let first = match split {
            Split::Head => r.head_end.checked_sub(1),
            Split::Body(k) => k.checked_sub(1).and_then(|i| r.raw_offset(i)),
        };
        let last = r.body.len().checked_sub(1).and_then(|i| r.raw_offset(i));
        if let (Some(a), Some(b)) = (
            first.and_then(|o| c.arrival(o)),
            last.and_then(|o| c.arrival(o)),
        ) {
            let gap = b.duration_since(a);
            let streamed = gap >= Duration::from_millis(PAUSE_MS / 2);
            obs.streamed = Some((
                streamed,
                format!("the first part came {} ms before the rest", gap.as_millis()),
            ));
        }
    }
    obs.after = if tunnelled {
        "tunnel".into()
    } else {
        after(&mut c, &path)
    };
    obs
}

/// Whether the connection carries a next request.
fn after(c: &mut Client, path: &str) -> String {
    let mut text = String::new();
    if c.avail() > 0 {
        text.push_str(&format!(
            "unexpected bytes after the response: {}; ",
            show(&c.buf[c.pos..])
        ));
        c.pos = c.buf.len();
    }
    if c.closed {
        text.push_str("closed");
        return text;
    }
    let probe = format!("GET {path}/probe HTTP/1.1\r\nHost: a\r\n\r\n");
    if c.s.write_all(probe.as_bytes()).is_err() {
        text.push_str("closed");
        return text;
    }
    let deadline = Instant::now() + PROBE_WAIT;
    let got = loop {
        if find(&c.buf[c.pos..], b"\r\n\r\n").is_some() {
            break c.response(false, Vec::new());
        }
        match c.fill(deadline) {
            Fill::Data => {}
            Fill::Closed if c.avail() == 0 => break Err("closed".into()),
            Fill::Timeout if c.avail() == 0 => break Err("timeout".into()),
            _ => break c.response(false, Vec::new()),
        }
    };
    match got {
        Ok(r) if r.status == 200 && r.body == b"probe" => text.push_str("open"),
        Ok(r) => text.push_str(&format!(
            "next request answered {} {}",
            r.status_line,
            show(&r.body)
        )),
        Err(e) if e == "closed" => text.push_str("closed"),
        Err(e) if e == "timeout" => text.push_str(&format!(
            "open, but a next request got no answer within {} ms",
            PROBE_WAIT.as_millis()
        )),
        Err(e) => text.push_str(&format!("next request: {e}")),
    }
    text
}

// ---------------------------------------------------------------------------
// Comparing

/// Headers sorted by name (case-blind), same-name values in their order.
fn sorted(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = headers.to_vec();
    out.sort_by_key(|h| h.0.to_ascii_lowercase());
    out
}

/// Bytes as escaped text; long ones cut, with their length and a hash.
fn show(b: &[u8]) -> String {
    if b.len() <= 100 {
        return format!("\"{}\"", b.escape_ascii());
    }
    let hash = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    });
    format!(
        "\"{}\"... ({} bytes, fnv {hash:016x})",
        b[..40].escape_ascii(),
        b.len()
    )
}

/// A header value as compared: `Date` values say whose date they are.
fn normal_value(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("date") {
        if value == BACKEND_DATE {
            "(the backend's)".into()
        } else {
            "(a date of its own)".into()
        }
    } else {
        show(value.as_bytes())
    }
}

/// Each aspect of a run as text; runs agree when all texts are equal.
/// Responses missing on either side show in `status` only: `both[i]` says
/// whether both runs got response `i`.
fn aspects(o: &Obs, both: &[bool]) -> Vec<(&'static str, String)> {
    // One line per response, or per header; `#2 ` marks the second response.
    let each = |f: &dyn Fn(&Resp) -> String| -> String {
        let mut out = Vec::new();
        for (i, (r, both_got)) in o.responses.iter().zip(both).enumerate() {
            let Some(r) = r.as_ref().ok().filter(|_| *both_got) else {
                continue;
            };
            let text = f(r);
            if both.len() < 2 {
                out.push(text);
            } else if text.is_empty() {
                out.push(format!("#{}", i + 1));
            } else {
                out.extend(text.lines().map(|l| format!("#{} {l}", i + 1)));
            }
        }
        out.join("\n")
    };
    let framing_headers = ["content-length", "transfer-encoding", "connection"];
    let status = o
        .responses
        .iter()
        .map(|r| match r {
            Ok(r) => r.status_line.clone(),
            Err(e) => format!("(no response: {e})"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    vec![
        ("status", status),
        ("interim", each(&|r| format!("{:?}", r.interim))),
        (
            "headers",
            each(&|r| {
                sorted(&r.headers)
                    .iter()
                    .filter(|(n, _)| !framing_headers.contains(&n.to_ascii_lowercase().as_str()))
                    .map(|(n, v)| format!("{n}: {}", normal_value(n, v)))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        ),
        (
            "framing",
            each(&|r| {
                let length = match field(&r.headers, "content-length") {
                    Some(l) if r.framing != "length" => format!(", Content-Length: {l}"),
                    _ => String::new(),
                };
                format!("{}{length}, {}", r.framing, r.end)
            }),
        ),
        ("body", each(&|r| show(&r.body))),
        (
            "trailers",
            each(&|r| {
                sorted(&r.trailers)
                    .iter()
                    .map(|(n, v)| format!("{n}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        ),
        (
            "connection",
            format!(
                "said {}; {}",
                o.responses
                    .iter()
                    .map(|r| match r {
                        Ok(r) => field(&r.headers, "connection")
                            .unwrap_or("nothing")
                            .to_string(),
                        Err(_) => "-".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                o.after
            ),
        ),
        ("tunnel", o.tunnel.clone().unwrap_or_default()),
        (
            "timing",
            match &o.streamed {
                Some((true, _)) => "the first part came before the pause ended".into(),
                Some((false, _)) => "the first part was held back until the rest came".into(),
                None => String::new(),
            },
        ),
        ("backend", o.backend.join("\n")),
    ]
}

/// Whether `o` meets `e`; if not, why.
fn check(e: Expect, o: &Obs) -> Result<(), String> {
    let first = o.responses.first();
    match e {
        Expect::Status(s) => match first {
            Some(Ok(r)) if r.status == s => Ok(()),
            Some(Ok(r)) => Err(format!("status {s} expected, got {}", r.status_line)),
            Some(Err(e)) => Err(format!("status {s} expected, got no response: {e}")),
            None => Err(format!("status {s} expected, nothing read")),
        },
        Expect::NothingForwarded if o.backend.is_empty() => Ok(()),
        Expect::NothingForwarded => Err(format!(
            "nothing should reach the backend, it got:\n{}",
            o.backend.join("\n")
        )),
        Expect::Streamed => match &o.streamed {
            Some((true, _)) => Ok(()),
            Some((false, gap)) => Err(format!(
                "the first part should arrive before the {PAUSE_MS} ms pause ends: {gap}"
            )),
            None => Err("no paused body to measure".into()),
        },
        Expect::KeepsConnection if o.after == "open" => Ok(()),
        Expect::KeepsConnection => Err(format!(
            "the connection should carry a next request: {}",
            o.after
        )),
        Expect::NotChunked => match o
            .responses
            .iter()
            .flatten()
            .find(|r| r.framing == "chunked")
        {
            None => Ok(()),
            Some(r) => Err(format!(
                "an HTTP/1.0 client must not get a chunked response: {} with {:?}",
                r.status_line,
                sorted(&r.headers)
            )),
        },
    }
}

/// A two-sided text diff, line by line.
fn diff(a: &str, b: &str) -> String {
    if !a.contains('\n') && !b.contains('\n') {
        return format!("      forwarder: {a}\n      pingora:   {b}\n");
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in &la {
        if !lb.contains(l) {
            out.push_str(&format!("      forwarder only: {l}\n"));
        }
    }
    for l in &lb {
        if !la.contains(l) {
            out.push_str(&format!("      pingora only:   {l}\n"));
        }
    }
    if out.is_empty() {
        out = format!(
            "      (same lines, another order)\n      forwarder: {a:?}\n      pingora:   {b:?}\n"
        );
    }
    out
}

fn config(backend: SocketAddr) -> String {
    let routes = "[{ path_prefix: /slow, upstream: slow }, { path_prefix: /case, upstream: main }]";
    format!(
        r#"server: {{ threads: 1 }}
admin: {{ listen: "{{ADMIN}}" }}
listeners:
  forwarder:
    listen: "{{HTTP}}"
    routes: {routes}
  pingora:
    listen: "{{TCP}}"
    forwarder: false
    routes: {routes}
upstreams:
  main: {{ read_timeout: 3s, backends: [{{ addr: "{backend}" }}] }}
  slow: {{ read_timeout: 1s, backends: [{{ addr: "{backend}" }}] }}
"#
    )
}

#[test]
fn both_http1_engines_behave_alike() {
    let started = Instant::now();
    let cases = cases();
    let only = std::env::var("DIFFERENTIAL_ONLY").ok();
    let verbose = std::env::var_os("DIFFERENTIAL_VERBOSE").is_some();
    for (name, aspect, _) in DELIBERATE {
        assert!(
            cases.iter().any(|c| c.name == *name),
            "DELIBERATE names no case {name:?} ({aspect})"
        );
    }
    let backend = Backend::start(cases.iter().map(|c| c.steps.clone()).collect());
    let proxy = Proxy::start(&config(backend.addr));
    let engines = [proxy.http, proxy.tcp];

    let (mut ran, mut identical, mut deliberate_only) = (0, 0, 0);
    let mut failing = Vec::new();
    let mut report = String::new();
    for (n, case) in cases.iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !case.name.contains(o.as_str()))
        {
            continue;
        }
        ran += 1;
        let obs: Vec<Obs> = engines
            .iter()
            .map(|addr| {
                backend.fresh();
                let mut o = run(*addr, n, case);
                o.backend = backend.take(n);
                o
            })
            .collect();
        let longest = obs[0].responses.len().max(obs[1].responses.len());
        let both: Vec<bool> = (0..longest)
            .map(|i| {
                obs.iter()
                    .all(|o| matches!(o.responses.get(i), Some(Ok(_))))
            })
            .collect();
        let (fa, pa) = (aspects(&obs[0], &both), aspects(&obs[1], &both));
        if verbose {
            report.push_str(&format!("----- {n} {}\n", case.name));
            for ((aspect, a), (_, b)) in fa.iter().zip(&pa) {
                report.push_str(&format!(
                    "  [{aspect}]\n    forwarder: {}\n    pingora:   {}\n",
                    a.replace('\n', "\n               "),
                    b.replace('\n', "\n               ")
                ));
            }
        }
        let mut problems = String::new();
        let mut kept = Vec::new();
        for ((aspect, a), (_, b)) in fa.iter().zip(&pa) {
            let listed = DELIBERATE
                .iter()
                .find(|(c, x, _)| *c == case.name && x == aspect);
            match (a == b, listed) {
                (true, None) => {}
                (true, Some(_)) => report.push_str(&format!(
                    "note: {} — the deliberate difference in {aspect} did not show\n",
                    case.name
                )),
                (false, Some(_)) => kept.push(*aspect),
                (false, None) => {
                    problems.push_str(&format!("    differs in {aspect}:\n{}", diff(a, b)));
                }
            }
        }
        for e in &case.expect {
            for (engine, o) in ["forwarder", "pingora"].iter().zip(&obs) {
                if let Err(why) = check(*e, o) {
                    problems.push_str(&format!("    {engine}: expected {e:?}: {why}\n"));
                }
            }
        }
        if problems.is_empty() {
            if kept.is_empty() {
                identical += 1;
                report.push_str(&format!("ok    {n:>3} {}\n", case.name));
            } else {
                deliberate_only += 1;
                report.push_str(&format!(
                    "ok    {n:>3} {} (deliberate differences: {})\n",
                    case.name,
                    kept.join(", ")
                ));
            }
        } else {
            failing.push(case.name);
            report.push_str(&format!("FAIL  {n:>3} {}\n{problems}", case.name));
        }
    }
    let summary = format!(
        "differential: {ran} cases ran in {:.1} s: {identical} identical, {deliberate_only} with deliberate differences only, {} failing{}",
        started.elapsed().as_secs_f64(),
        failing.len(),
        if failing.is_empty() {
            String::new()
        } else {
            format!(" ({})", failing.join(", "))
        }
    );
    println!("{report}");
    // Past the harness's capture: the summary shows on success too.
    let _ = writeln!(std::io::stderr(), "{summary}");
    drop(proxy);
    drop(backend);
    assert!(failing.is_empty(), "{summary}");
}
