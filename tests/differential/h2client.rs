//! The HTTP/2 client side: a case's HTTP/1.1 request turned into one HTTP/2
//! request ([`h2_request`]), sent on a fresh connection by prior knowledge
//! (h2c), and what came back ([`run_h2`]): interim heads, status, headers,
//! body (with when each part arrived), trailers, how the stream ended, and
//! whether the connection carries a next stream.
//!
//! Every wait is bounded: connecting, sending (flow control), each read of
//! the response, the probe, and the whole exchange.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::SendStream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, timeout_at, Instant};

use crate::cases::{Act, Case, Split, PAUSE_MS};
use crate::wire::{find, header_fields, Record};

/// The longest the client waits for one response (as `run::RESPONSE_WAIT`).
const RESPONSE_WAIT: Duration = Duration::from_secs(5);
/// The longest the probe stream may take (as `run::PROBE_WAIT`).
const PROBE_WAIT: Duration = Duration::from_millis(1500);
/// The longest a whole exchange may take: a safety net over the waits above.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(15);
/// The probe: a path no route takes, answered 404 by the proxy itself, so it
/// tells whether the connection carries a next stream without touching the
/// backend (or a backend connection a run left in a proxy's pool).
const PROBE_PATH: &str = "/h2-probe-unrouted";

/// The field each HTTP/2 request carries to say which run sent it (its value
/// is the listener's name), so that the two HTTP/2 runs of a case can go at
/// once: [`records_by_run`] sorts what the backend got by it and removes it
/// before anything is compared.
pub const RUN_FIELD: &str = "x-differential-run";

/// What the backend got in the runs `runs` (at once, one case), per run,
/// without the [`RUN_FIELD`] line. A record without it (none should be)
/// goes to every run, so that it shows.
pub fn records_by_run(records: Vec<Record>, runs: &[&str]) -> Vec<Vec<Record>> {
    let mut out = vec![Vec::new(); runs.len()];
    for record in records {
        let mut run = None;
        let kept: Vec<&str> = record
            .lines()
            .filter(|l| {
                let field = l
                    .strip_prefix("  ")
                    .and_then(|f| f.split_once(": "))
                    .filter(|(n, _)| n.eq_ignore_ascii_case(RUN_FIELD));
                match field {
                    Some((_, v)) => {
                        run = runs.iter().position(|r| v == format!("\"{r}\""));
                        false
                    }
                    None => true,
                }
            })
            .collect();
        let kept = kept.join("\n");
        match run {
            Some(i) => out[i].push(kept),
            None => out.iter_mut().for_each(|o| o.push(kept.clone())),
        }
    }
    out
}

/// One HTTP/2 request made from a case's HTTP/1.1 request.
pub struct H2Request {
    pub method: String,
    /// `:authority`: the authority of an absolute-form target, else the
    /// first `Host`; none when the request has neither.
    pub authority: Option<String>,
    /// `:path` (none for CONNECT).
    pub path: String,
    /// Regular fields, in order, as the HTTP/1.1 request had them less
    /// those HTTP/2 forbids (see [`h2_request`]).
    pub headers: Vec<(String, String)>,
    /// What the client does after HEADERS, in order.
    pub parts: Vec<Part>,
    /// The HTTP/1.1 request had no body framing: HEADERS ends the stream.
    pub bodyless: bool,
    /// The body arrived whole (the stream is ended after `parts`); false
    /// when the case leaves it unfinished.
    pub ends: bool,
    /// Trailer fields of a chunked body, sent as a trailing HEADERS.
    pub trailers: Vec<(String, String)>,
}

/// What the client does after the request's HEADERS.
pub enum Part {
    /// Body bytes: one write of the case, as DATA.
    Data(Vec<u8>),
    Sleep(u64),
    /// Waits up to this many ms for an interim response.
    AwaitInterim(u64),
}

/// How the HTTP/1.1 request framed its body.
enum Framing {
    None,
    Length(usize),
    Chunked(Dechunk),
}

/// The fields HTTP/2 forbids in a request (RFC 9113 8.2.2), with `TE` other
/// than `trailers` and `Host` handled apart.
const CONNECTION_SPECIFIC: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The case's request as one HTTP/2 request, or why it cannot be one.
///
/// - The request line gives `:method` and `:path`; an absolute-form target
///   gives `:authority` and `:path`, CONNECT's authority-form `:authority`.
/// - `Host` becomes `:authority` (one equal to it is dropped; any other is
///   sent as a regular `host` field).
/// - `Connection`, the fields it names (hop-by-hop for the HTTP/1 hop the
///   case had with the proxy; an HTTP/2 client has no such hop),
///   `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding` and `Upgrade`
///   are left out; `TE` is sent as `trailers` if it lists `trailers`, else
///   left out. Field names go lower-case (HTTP/2 requires it).
/// - A `Content-Length` body is sent as it is, one DATA frame (or more, by
///   flow control) per write of the case; a chunked one decoded, with its
///   trailers as trailing HEADERS and no `Content-Length`. Sleeps and waits
///   for 100 Continue between writes are kept.
/// - A body the case leaves unfinished leaves the stream open.
pub fn h2_request(case: &Case, path: &str) -> Result<H2Request, String> {
    let sub = |b: &[u8]| String::from_utf8_lossy(b).replace("{P}", path).into_bytes();
    let mut head = Vec::new();
    let mut req: Option<(H2Request, Framing)> = None;
    let mut read = false;
    for act in &case.acts {
        if read {
            return Err("the case acts after its response (a second request, a tunnel)".into());
        }
        match act {
            Act::Write(bytes) => match &mut req {
                None => {
                    head.extend_from_slice(&sub(bytes));
                    if let Some(i) = find(&head, b"\r\n\r\n") {
                        let rest = head.split_off(i + 4);
                        let (mut r, mut framing) = parse_head(&head[..i])?;
                        body(&mut r, &mut framing, &rest)?;
                        req = Some((r, framing));
                    }
                }
                Some((r, framing)) => body(r, framing, &sub(bytes))?,
            },
            Act::Sleep(ms) | Act::AwaitInterim(ms) => {
                let Some((r, _)) = &mut req else {
                    return Err("the case pauses inside the request head".into());
                };
                r.parts.push(match act {
                    Act::Sleep(_) => Part::Sleep(*ms),
                    _ => Part::AwaitInterim(*ms),
                });
            }
            Act::Read | Act::ReadHead => read = true,
            Act::Tunnel(_) => return Err("a tunnel".into()),
        }
    }
    let Some((mut r, framing)) = req else {
        return Err("no complete request head".into());
    };
    r.ends = match framing {
        Framing::None => true,
        Framing::Length(left) => left == 0,
        Framing::Chunked(d) => {
            r.trailers = d.trailers;
            d.done
        }
    };
    Ok(r)
}

/// The head of an HTTP/1.1 request (without its blank line) as the start of
/// an HTTP/2 request.
fn parse_head(head: &[u8]) -> Result<(H2Request, Framing), String> {
    let text = String::from_utf8(head.to_vec()).map_err(|_| "a head that is not UTF-8")?;
    let lines: Vec<String> = text.split("\r\n").map(str::to_string).collect();
    if lines.iter().any(|l| l.contains('\n') || l.contains('\r')) {
        return Err("a line not ended by CRLF".into());
    }
    let words: Vec<&str> = lines[0].split(' ').collect();
    let [method, target, version] = words[..] else {
        return Err(format!("request line {:?}", lines[0]));
    };
    if version != "HTTP/1.1" {
        return Err(format!("{version} request"));
    }
    let fields = header_fields(&lines[1..]);
    if fields.iter().any(|(n, _)| n == "(no colon)") {
        return Err("a header line without a colon".into());
    }
    let named: Vec<String> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    let hosts: Vec<&str> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.as_str())
        .collect();
    let absolute = ["http://", "https://"]
        .iter()
        .find_map(|s| target.strip_prefix(s));
    let (authority, path) = if let Some(rest) = absolute {
        let at = rest.find(['/', '?']).unwrap_or(rest.len());
        let path = match &rest[at..] {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        (Some(rest[..at].to_string()), path)
    } else if method == "CONNECT" {
        (Some(target.to_string()), String::new())
    } else {
        (hosts.first().map(|h| h.to_string()), target.to_string())
    };
    let mut framing = Framing::None;
    let mut lengths = Vec::new();
    let mut headers = Vec::new();
    let mut host_dropped = false;
    for (name, value) in &fields {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "transfer-encoding" => {
                let last = value.rsplit(',').next().unwrap_or("").trim();
                if !last.eq_ignore_ascii_case("chunked") {
                    return Err(format!("Transfer-Encoding {value:?}"));
                }
                framing = Framing::Chunked(Dechunk::default());
            }
            "content-length" => lengths.push(value.clone()),
            "host" if !host_dropped && Some(value) == authority.as_ref() => host_dropped = true,
            "te" => {
                if value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
                {
                    headers.push(("te".to_string(), "trailers".to_string()));
                }
            }
            n if CONNECTION_SPECIFIC.contains(&n) || named.iter().any(|t| t == n) => {}
            _ => headers.push((lower, value.clone())),
        }
    }
    match (&framing, &lengths[..]) {
        (_, []) => {}
        (Framing::None, [l]) => {
            let n = l
                .parse()
                .map_err(|_| format!("Content-Length {l:?} is not a number"))?;
            framing = Framing::Length(n);
            headers.push(("content-length".to_string(), l.clone()));
        }
        _ => return Err("Content-Length with chunked, or two of them".into()),
    }
    let bodyless = matches!(framing, Framing::None);
    let req = H2Request {
        method: method.to_string(),
        authority,
        path,
        headers,
        parts: Vec::new(),
        bodyless,
        ends: false,
        trailers: Vec::new(),
    };
    Ok((req, framing))
}

/// Body bytes of one write, by the request's framing, as DATA.
fn body(r: &mut H2Request, framing: &mut Framing, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let data = match framing {
        Framing::None => return Err("bytes after a request without a body (pipelining)".into()),
        Framing::Length(left) => {
            if bytes.len() > *left {
                return Err("bytes after the body (pipelining)".into());
            }
            *left -= bytes.len();
            bytes.to_vec()
        }
        Framing::Chunked(d) => d.feed(bytes)?,
    };
    if !data.is_empty() {
        r.parts.push(Part::Data(data));
    }
    Ok(())
}

/// A chunked body decoded as its writes come.
#[derive(Default)]
struct Dechunk {
    pending: Vec<u8>,
    /// Data bytes still due in the current chunk, and its CRLF.
    in_chunk: Option<usize>,
    /// In the trailer section.
    last: bool,
    done: bool,
    trailers: Vec<(String, String)>,
}

impl Dechunk {
    /// Takes one write; the data it completes.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        if self.done {
            return Err("bytes after the last chunk (pipelining)".into());
        }
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if let Some(n) = self.in_chunk {
                if self.pending.len() < n + 2 {
                    // Pass on what came; the rest follows in a later write.
                    let k = self.pending.len().min(n);
                    out.extend(self.pending.drain(..k));
                    self.in_chunk = Some(n - k);
                    return Ok(out);
                }
                if &self.pending[n..n + 2] != b"\r\n" {
                    return Err("chunk data not followed by CRLF".into());
                }
                out.extend(self.pending.drain(..n));
                self.pending.drain(..2);
                self.in_chunk = None;
                continue;
            }
            let Some(i) = find(&self.pending, b"\r\n") else {
                return Ok(out);
            };
            let line = String::from_utf8_lossy(&self.pending[..i]).into_owned();
            self.pending.drain(..i + 2);
            if self.last {
                if line.is_empty() {
                    self.done = true;
                    if !self.pending.is_empty() {
                        return Err("bytes after the last chunk (pipelining)".into());
                    }
                    return Ok(out);
                }
                self.trailers.extend(header_fields(&[line]));
                continue;
            }
            let size = line.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(size, 16)
                .ok()
                .filter(|n| *n <= 16 << 20)
                .ok_or_else(|| format!("chunk size line {line:?}"))?;
            if n == 0 {
                self.last = true;
            } else {
                self.in_chunk = Some(n);
            }
        }
    }
}

/// How a response, or the attempt to get one, ended early.
#[derive(Clone)]
pub struct Stop {
    /// "cut short" (the stream was reset or the connection ended), or
    /// "stalled" (nothing more within the wait); as the HTTP/1 client's
    /// view reads.
    pub kind: &'static str,
    /// What exactly: the reset's error code, a GOAWAY, an I/O error.
    pub detail: String,
}

impl Stop {
    fn stalled(what: &str) -> Stop {
        Stop {
            kind: "stalled",
            detail: format!("nothing more within the wait ({what})"),
        }
    }

    fn of(e: &h2::Error) -> Stop {
        let reason = e.reason().map(|r| format!("{r:?}")).unwrap_or_default();
        let detail = if e.is_reset() {
            format!("RST_STREAM {reason}")
        } else if e.is_go_away() {
            format!("GOAWAY {reason}")
        } else if e.is_io() {
            "connection ended".to_string()
        } else {
            format!("{e}")
        };
        Stop {
            kind: "cut short",
            detail,
        }
    }
}

/// Header fields: (name, value).
pub type Fields = Vec<(String, String)>;

/// An interim (1xx) head: status and fields.
pub type Interim = (u16, Fields);

/// One HTTP/2 response as the client got it.
pub struct H2Resp {
    pub interim: Vec<Interim>,
    pub status: u16,
    pub headers: Fields,
    pub body: Vec<u8>,
    pub trailers: Fields,
    /// None: the stream ended (END_STREAM) after the whole body.
    pub stop: Option<Stop>,
    /// When the head arrived.
    head_at: Instant,
    /// (body length after a DATA frame, when it arrived).
    arrivals: Vec<(usize, Instant)>,
}

/// Everything one HTTP/2 run of a case showed.
pub struct H2Obs {
    /// The final response, or how the attempt ended (with the interim
    /// heads that came before).
    pub response: Result<H2Resp, (Stop, Vec<Interim>)>,
    /// Whether the connection carried a next stream.
    pub after: String,
    /// As [`Obs::streamed`](crate::compare::Obs).
    pub streamed: Option<(bool, String)>,
    pub backend: Vec<Record>,
}

/// Sends `req` on a fresh HTTP/2 connection to `addr`, marked as run `run`
/// ([`RUN_FIELD`]); `timing` says where the first part of a paused response
/// ends.
pub fn run_h2(addr: SocketAddr, run: &str, req: &H2Request, timing: Option<Split>) -> H2Obs {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let obs = rt.block_on(async {
        match timeout(EXCHANGE_LIMIT, exchange(addr, run, req, timing)).await {
            Ok(obs) => obs,
            Err(_) => H2Obs {
                response: Err((Stop::stalled("the whole exchange"), Vec::new())),
                after: "(not probed)".into(),
                streamed: None,
                backend: Vec::new(),
            },
        }
    });
    // The connection's task and anything left of it end with the runtime.
    rt.shutdown_timeout(Duration::from_millis(100));
    obs
}

async fn exchange(addr: SocketAddr, run: &str, req: &H2Request, timing: Option<Split>) -> H2Obs {
    let mut obs = H2Obs {
        response: Err((Stop::stalled("connecting"), Vec::new())),
        after: "(not probed)".into(),
        streamed: None,
        backend: Vec::new(),
    };
    let deadline = Instant::now() + RESPONSE_WAIT;
    let tcp = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => panic!("connect to {addr}: {e}"),
        Err(_) => return obs,
    };
    let _ = tcp.set_nodelay(true);
    let (client, connection) = match timeout_at(deadline, h2::client::handshake(tcp)).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            obs.response = Err((Stop::of(&e), Vec::new()));
            return obs;
        }
        Err(_) => return obs,
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = match timeout_at(deadline, client.ready()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            obs.response = Err((Stop::of(&e), Vec::new()));
            return obs;
        }
        Err(_) => return obs,
    };
    let mut request = build(req);
    request.headers_mut().append(RUN_FIELD, value(run));
    let (mut response, mut send) = match client.send_request(request, req.bodyless) {
        Ok(pair) => pair,
        Err(e) => panic!("the h2 client refused the request: {e}"),
    };
    let mut interim = Vec::new();
    // A write the proxy refuses (it reset the stream, or answered early)
    // shows in what is read next, as on HTTP/1.
    let mut sending = !req.bodyless;
    let last_data = req.parts.iter().rposition(|p| matches!(p, Part::Data(_)));
    let end_on_data =
        req.ends && req.trailers.is_empty() && last_data.is_some_and(|i| i + 1 == req.parts.len());
    for (i, part) in req.parts.iter().enumerate() {
        match part {
            Part::Data(d) if sending => {
                let end = end_on_data && Some(i) == last_data;
                sending = send_data(&mut send, d, end, deadline).await;
            }
            Part::Data(_) => {}
            Part::Sleep(ms) => sleep(Duration::from_millis(*ms)).await,
            Part::AwaitInterim(ms) => {
                let wait = Instant::now() + Duration::from_millis(*ms);
                let got = timeout_at(wait, poll_fn(|cx| response.poll_informational(cx))).await;
                if let Ok(Some(Ok(r))) = got {
                    interim.push((r.status().as_u16(), fields(r.headers())));
                }
            }
        }
    }
    if sending && req.ends && !end_on_data {
        if req.trailers.is_empty() {
            let _ = send.send_data(Bytes::new(), true);
        } else {
            let mut map = HeaderMap::new();
            for (n, v) in &req.trailers {
                map.append(name(n), value(v));
            }
            let _ = send.send_trailers(map);
        }
    }
    // As on HTTP/1, the wait for the response starts when it is read.
    let deadline = Instant::now() + RESPONSE_WAIT;
    obs.response = read_response(&mut response, interim, deadline).await;
    if let (Some(split), Ok(r)) = (timing, &obs.response) {
        obs.streamed = streamed(r, split);
    }
    // Done with the case's stream: one left open (an unfinished body) is
    // reset (CANCEL) when its handles go.
    drop(send);
    drop(response);
    obs.after = probe(&mut client).await;
    obs
}

/// The http::Request h2 sends as `req`'s HEADERS.
fn build(req: &H2Request) -> Request<()> {
    let method = Method::from_bytes(req.method.as_bytes()).expect("a method h2 can send");
    let uri: Uri = match (&req.authority, &req.path) {
        // CONNECT: :authority only.
        (Some(a), p) if p.is_empty() => a.parse(),
        // `OPTIONS *`: h2 sends an empty path of an OPTIONS request as `*`.
        (Some(a), p) if p == "*" => format!("http://{a}").parse(),
        (Some(a), p) => format!("http://{a}{p}").parse(),
        // No authority: h2 sends :scheme and :path only (it takes a
        // relative URI from an HTTP/1.1 request, see below).
        (None, p) => p.parse(),
    }
    .expect("a URI h2 can send");
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        // HTTP/1.1 lets h2 send a request without :authority (missing_host).
        .version(if req.authority.is_some() {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        })
        .body(())
        .expect("a request");
    for (n, v) in &req.headers {
        request.headers_mut().append(name(n), value(v));
    }
    request
}

fn name(n: &str) -> HeaderName {
    HeaderName::from_bytes(n.as_bytes()).expect("a field name h2 can send")
}

fn value(v: &str) -> HeaderValue {
    HeaderValue::from_bytes(v.as_bytes()).expect("a field value h2 can send")
}

/// (name, value) of fields, as received (lower-case names).
fn fields(map: &HeaderMap) -> Fields {
    map.iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Sends `data` as the stream's flow control allows; false once the
/// stream takes no more (reset, or no window before `deadline`).
async fn send_data(
    send: &mut SendStream<Bytes>,
    data: &[u8],
    end: bool,
    deadline: Instant,
) -> bool {
    let mut data = Bytes::copy_from_slice(data);
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let capacity = match timeout_at(deadline, poll_fn(|cx| send.poll_capacity(cx))).await {
            Ok(Some(Ok(n))) => n,
            _ => return false,
        };
        if capacity == 0 {
            continue;
        }
        let chunk = data.split_to(capacity.min(data.len()));
        if send.send_data(chunk, end && data.is_empty()).is_err() {
            return false;
        }
    }
    true
}

/// The final response (interim heads first) and its body and trailers.
async fn read_response(
    response: &mut ResponseFuture,
    mut interim: Vec<Interim>,
    deadline: Instant,
) -> Result<H2Resp, (Stop, Vec<Interim>)> {
    enum Got {
        Interim(http::Response<()>),
        Final(http::Response<h2::RecvStream>),
    }
    let head = loop {
        let next = poll_fn(|cx| match response.poll_informational(cx) {
            Poll::Ready(Some(Ok(r))) => Poll::Ready(Ok(Got::Interim(r))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Err(e)),
            // The final head is next (or the stream ended without one).
            Poll::Ready(None) | Poll::Pending => {
                match std::pin::Pin::new(&mut *response).poll(cx) {
                    Poll::Ready(r) => Poll::Ready(r.map(Got::Final)),
                    Poll::Pending => Poll::Pending,
                }
            }
        });
        match timeout_at(deadline, next).await {
            Ok(Ok(Got::Interim(r))) => interim.push((r.status().as_u16(), fields(r.headers()))),
            Ok(Ok(Got::Final(r))) => break r,
            Ok(Err(e)) => return Err((Stop::of(&e), interim)),
            Err(_) => return Err((Stop::stalled("no response head"), interim)),
        }
    };
    let head_at = Instant::now();
    let (parts, mut body) = head.into_parts();
    let mut resp = H2Resp {
        interim,
        status: parts.status.as_u16(),
        headers: fields(&parts.headers),
        body: Vec::new(),
        trailers: Vec::new(),
        stop: None,
        head_at,
        arrivals: Vec::new(),
    };
    loop {
        match timeout_at(deadline, body.data()).await {
            Ok(Some(Ok(chunk))) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                resp.body.extend_from_slice(&chunk);
                resp.arrivals.push((resp.body.len(), Instant::now()));
            }
            Ok(Some(Err(e))) => {
                resp.stop = Some(Stop::of(&e));
                return Ok(resp);
            }
            Ok(None) => break,
            Err(_) => {
                resp.stop = Some(Stop::stalled("the body"));
                return Ok(resp);
            }
        }
    }
    match timeout_at(deadline, body.trailers()).await {
        Ok(Ok(Some(t))) => resp.trailers = fields(&t),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => resp.stop = Some(Stop::of(&e)),
        Err(_) => resp.stop = Some(Stop::stalled("the trailers")),
    }
    Ok(resp)
}

/// Whether the first part of a paused response came before the pause
/// ended, as `run` measures it on HTTP/1.
fn streamed(r: &H2Resp, split: Split) -> Option<(bool, String)> {
    let at = |i: usize| r.arrivals.iter().find(|(len, _)| *len > i).map(|(_, t)| *t);
    let first = match split {
        Split::Head => Some(r.head_at),
        Split::Body(k) => k.checked_sub(1).and_then(at),
    }?;
    let last = r.body.len().checked_sub(1).and_then(at)?;
    let gap = last.duration_since(first);
    Some((
        gap >= Duration::from_millis(PAUSE_MS / 2),
        format!("the first part came {} ms before the rest", gap.as_millis()),
    ))
}

/// Whether the connection carries a next stream: a GET no route takes
/// (the proxy's own 404) on the same connection.
async fn probe(client: &mut SendRequest<Bytes>) -> String {
    let deadline = Instant::now() + PROBE_WAIT;
    let ready = match timeout_at(deadline, poll_fn(|cx| client.poll_ready(cx))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("closed ({})", Stop::of(&e).detail)),
        Err(_) => Err("no stream could be opened within the wait".to_string()),
    };
    if let Err(e) = ready {
        return e;
    }
    let request = Request::get(format!("http://a{PROBE_PATH}"))
        .body(())
        .expect("a request");
    let response = match client.send_request(request, true) {
        Ok((response, _)) => response,
        Err(e) => return format!("closed ({})", Stop::of(&e).detail),
    };
    match timeout_at(deadline, response).await {
        Ok(Ok(r)) if r.status() == 404 => "open".into(),
        Ok(Ok(r)) => format!("next stream answered {}", r.status().as_u16()),
        Ok(Err(e)) => format!("closed ({})", Stop::of(&e).detail),
        Err(_) => format!(
            "open, but a next stream got no answer within {} ms",
            PROBE_WAIT.as_millis()
        ),
    }
}
