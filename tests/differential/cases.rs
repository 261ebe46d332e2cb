//! The cases: what the client sends and does ([`Act`]), what the scripted
//! backend answers ([`Step`]), and what both engines must do ([`Expect`]).

use crate::compare::{Obs, BACKEND_DATE};
use crate::wire::sorted;

/// How long a paused response pauses.
pub const PAUSE_MS: u64 = 400;

/// What the client does, in order. Request bytes may contain `{P}`, replaced
/// by the case's path `/case/N` (which selects the backend's script).
pub enum Act {
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
pub enum Step {
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
pub enum Split {
    /// After the response head.
    Head,
    /// After this many body bytes.
    Body(usize),
}

/// What both engines must do, whatever the other does.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
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

/// One request shape and one scripted backend answer.
pub struct Case {
    pub name: &'static str,
    pub acts: Vec<Act>,
    pub steps: Vec<Step>,
    pub timing: Option<Split>,
    pub expect: Vec<Expect>,
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
pub fn answer(bytes: impl AsRef<[u8]>) -> Vec<Step> {
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

/// The cases, in order: case `N` is requested as `/case/N`.
pub fn cases() -> Vec<Case> {
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
        // Route policies: header rules (on every case), the request id, and
        // answers switchyard makes itself.
        Case::new(
            "policy_header_rules",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nX-Drop: 1\r\nX-Edge: client\r\nX-Tag: client\r\nX-Diff-Id: client-id-7\r\n\r\n"),
            answer("HTTP/1.1 200 OK\r\nX-Powered-By: php\r\nX-Resp: backend\r\nX-Diff-Id: backend-id\r\nContent-Length: 2\r\n\r\nok"),
        )
        .expect(Status(200)),
        Case::new(
            "policy_request_id_refused",
            req("GET {P} HTTP/1.1\r\nHost: a\r\nX-Diff-Id: has space\r\n\r\n"),
            answer(ok("ok")),
        ),
        Case::new(
            "policy_redirect",
            req("GET /moved/x?q=1 HTTP/1.1\r\nHost: a:8080\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(301))
        .expect(NothingForwarded),
        Case::new(
            "policy_denied",
            req("GET /denied HTTP/1.1\r\nHost: a\r\n\r\n"),
            answer(ok("never")),
        )
        .expect(Status(403))
        .expect(NothingForwarded),
        Case::new(
            "policy_body_over_limit",
            req("POST /capped HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"),
            answer(ok("never")),
        )
        .expect(Status(413))
        .expect(NothingForwarded),
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
            "resp_coding_not_chunked",
            req(GET),
            close_after(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbody"),
        ),
        // Found by the engines fuzz target (with the last case).
        Case::new(
            "early_close_before_the_whole_body",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"),
            vec![Step::Close],
        )
        .expect(Status(502)),
        Case::new(
            "non_ascii_connection_value",
            req(b"GET {P} HTTP/1.1\r\nHost: a\r\nConnection: x\xf3\r\n\r\n"),
            answer(ok("ok")),
        )
        .expect(Status(400))
        .expect(NothingForwarded),
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
        // The last case: after an early answer to an unfinished body,
        // Pingora 0.9 puts the backend connection back in its pool although
        // the backend still waits for the rest of the body (README, "Known
        // limits of Pingora's path"); a later request on Pingora's path to
        // that backend could be sent on it. The forwarder never reuses such
        // a connection.
        Case::new(
            "early_answer_before_the_whole_body",
            req("POST {P} HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"),
            vec![Step::Send(ok("early"))],
        )
        .expect(Status(200)),
    ]
}

/// Why a case says nothing about HTTP/2.
const HTTP10: &str = "HTTP/1.0 is an HTTP/1 version; an HTTP/2 request has none";
const WIRE: &str =
    "HTTP/1 wire syntax; an HTTP/2 request has no request line or header lines to get wrong";
const CHUNKS: &str =
    "HTTP/1 chunked framing from the client; HTTP/2 carries the body in DATA frames";
const CONNECTION: &str = "the Connection header and keep-alive are HTTP/1 connection management; HTTP/2 forbids Connection and multiplexes streams";
const PIPELINE: &str = "pipelining is HTTP/1; HTTP/2 sends concurrent requests as streams";
const UPGRADE: &str =
    "upgrades and tunnels are HTTP/1.1 (WebSocket over HTTP/2, RFC 8441, is not supported)";
const HEAD_SIZE: &str = "the head-size limit is the HTTP/1 head reader's (max_header_bytes); HTTP/2 heads meet the h2 crate's header-list limit instead (README, HTTP/2 to clients)";

/// The cases not sent through the HTTP/2 listeners, and why: shapes that
/// only exist on the HTTP/1 wire. Every other case must be expressible as
/// one HTTP/2 request ([`h2client::h2_request`](crate::h2client::h2_request)
/// says why not, and the test fails until the case is listed here).
pub const H2_SKIP: &[(&str, &str)] = &[
    ("post_chunked_extensions", "chunk extensions are HTTP/1 framing; as HTTP/2 DATA this is post_chunked"),
    ("leading_blank_line", WIRE),
    ("http10_get", HTTP10),
    ("http10_keep_alive", HTTP10),
    ("http10_chunked_answer", HTTP10),
    ("http10_keep_alive_chunked_answer", HTTP10),
    ("http10_close_delimited_answer", HTTP10),
    ("http10_post", HTTP10),
    ("http10_chunked_request", HTTP10),
    ("http10_without_host", HTTP10),
    ("connection_close", CONNECTION),
    ("keep_alive_two_requests", CONNECTION),
    ("pipelined_gets", PIPELINE),
    ("pipelined_post_then_get", PIPELINE),
    ("pipelined_chunked_post_then_get", PIPELINE),
    ("large_request_head", HEAD_SIZE),
    ("request_head_too_large", HEAD_SIZE),
    ("bare_lf_line_ends", WIRE),
    ("length_and_chunked", "Content-Length with Transfer-Encoding is HTTP/1 framing ambiguity; HTTP/2 forbids Transfer-Encoding"),
    ("conflicting_lengths", "two Content-Lengths are HTTP/1 framing ambiguity; HTTP/2 frames the body with DATA and END_STREAM"),
    ("unknown_transfer_coding", "Transfer-Encoding is HTTP/1 framing; HTTP/2 forbids it"),
    ("bad_chunk_size_z", CHUNKS),
    ("bad_chunk_size_overflow", CHUNKS),
    ("bad_chunk_size_bare_cr", CHUNKS),
    ("non_ascii_connection_value", CONNECTION),
    ("upgrade_websocket_refused", UPGRADE),
    ("upgrade_h2c_refused", UPGRADE),
    ("upgrade_websocket_tunnel", UPGRADE),
    ("upgrade_websocket_tunnel_backend_first", UPGRADE),
];

/// Why `case` is not sent through HTTP/2, if it is not.
pub fn h2_skip(case: &str) -> Option<&'static str> {
    H2_SKIP
        .iter()
        .find(|(c, _)| *c == case)
        .map(|(_, why)| *why)
}

/// [`Expect::NothingForwarded`] against what the backend got (either
/// client protocol).
pub fn nothing_forwarded(backend: &[String]) -> Result<(), String> {
    if backend.is_empty() {
        return Ok(());
    }
    Err(format!(
        "nothing should reach the backend, it got:\n{}",
        backend.join("\n")
    ))
}

/// [`Expect::Streamed`] against a paused body's measurement (either client
/// protocol): whether its first part came before the pause ended.
pub fn streamed(measured: &Option<(bool, String)>) -> Result<(), String> {
    match measured {
        Some((true, _)) => Ok(()),
        Some((false, gap)) => Err(format!(
            "the first part should arrive before the {PAUSE_MS} ms pause ends: {gap}"
        )),
        None => Err("no paused body to measure".into()),
    }
}

/// Whether `o` meets `e`; if not, why.
pub fn check(e: Expect, o: &Obs) -> Result<(), String> {
    let first = o.responses.first();
    match e {
        Expect::Status(s) => match first {
            Some(Ok(r)) if r.status == s => Ok(()),
            Some(Ok(r)) => Err(format!("status {s} expected, got {}", r.status_line)),
            Some(Err(e)) => Err(format!("status {s} expected, got no response: {e}")),
            None => Err(format!("status {s} expected, nothing read")),
        },
        Expect::NothingForwarded => nothing_forwarded(&o.backend),
        Expect::Streamed => streamed(&o.streamed),
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
