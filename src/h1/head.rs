//! Request and response heads on the wire, parsed with `httparse` and
//! rewritten in the same pass: the backend's request head and the client's
//! response head are written straight from the received bytes, by the same
//! header rules as the Pingora path ([`crate::proxy::headers`]). The
//! client's request is also kept as Pingora's `RequestHeader`, so routing,
//! selection, rate limits and the access log are the same code on both paths.

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::net::IpAddr;

use http::header::{CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderValue, Method};
use pingora::http::RequestHeader;

use crate::compress::{self, Coding, Edit};
use crate::proxy::headers::{
    self, ResponseAdditions, REQUEST_HOP_BY_HOP, RESPONSE_HOP_BY_HOP, X_FORWARDED_FOR,
    X_FORWARDED_HOST, X_FORWARDED_PROTO,
};
use crate::router::normalize_host;

/// Most header lines a head may have here; a longer one goes to Pingora.
/// (Left uninitialised until parsed: zeroing 3 KiB per head showed up.)
const MAX_HEADERS: usize = 96;

/// A client request this path can forward (`'h`: its head's buffer).
pub struct Request<'h> {
    /// The request as received, for routing, selection and the log: method
    /// and target; its header map is empty until [`with_headers`] fills it.
    pub header: RequestHeader,
    /// Its host for routing (see [`crate::router::request_host`]).
    pub host: Cow<'h, str>,
    pub body_len: u64,
    /// The client asked to close after this request.
    pub close: bool,
    /// The header lines the backend gets, each ending in CRLF: the client's
    /// less hop-by-hop and forwarding headers, then `TE: trailers` if asked
    /// for and `X-Forwarded-*` (SPEC "Headers to backends").
    pub fields: Vec<u8>,
}

/// Parses a complete request head. `None` means "not for this path": the
/// request is handed to Pingora unchanged, which forwards it or answers the
/// status the SPEC names. Declined: anything but HTTP/1.1, CONNECT, upgrades,
/// `Expect`, `Transfer-Encoding` bodies, any `Content-Length` but one plain
/// number, no or several `Host`, targets not in origin form, and anything
/// `httparse` or `http` refuses. `client_ip` and `scheme` are for the
/// forwarding headers.
pub fn request<'h>(head: &'h [u8], client_ip: Option<IpAddr>, scheme: &str) -> Option<Request<'h>> {
    let mut lines = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    match parsed.parse_with_uninit_headers(head, &mut lines) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let (method, path, version) = (parsed.method?, parsed.path?, parsed.version?);
    if version != 1 || method == Method::CONNECT.as_str() || !path.starts_with('/') {
        return None;
    }
    // Built as `http` parts, without headers (see `with_headers`) and with no
    // case map: the backend's head is written from the received bytes.
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = Method::from_bytes(method.as_bytes()).ok()?;
    let (mut host, mut body_len, mut close) = (None, None, false);
    let (mut connection, mut te, mut chain) = (Vec::new(), Vec::new(), Vec::new());
    for line in parsed.headers.iter() {
        let field = line.name;
        if field.eq_ignore_ascii_case(HOST.as_str()) {
            if host.replace(line.value).is_some() {
                return None;
            }
        } else if field.eq_ignore_ascii_case(CONTENT_LENGTH.as_str()) {
            if body_len.is_some() {
                return None;
            }
            body_len = Some(plain_number(line.value)?);
        } else if field.eq_ignore_ascii_case(TRANSFER_ENCODING.as_str())
            || field.eq_ignore_ascii_case(UPGRADE.as_str())
            || field.eq_ignore_ascii_case(EXPECT.as_str())
        {
            return None;
        } else if field.eq_ignore_ascii_case("connection") {
            close |= headers::has_token(line.value, b"close");
            if headers::nominates(line.value) {
                connection.push(line.value);
            }
        } else if field.eq_ignore_ascii_case("te") {
            te.push(line.value);
        } else if field.eq_ignore_ascii_case(X_FORWARDED_FOR) {
            chain.push(line.value);
        }
    }
    let mut header = RequestHeader::from(parts);
    header.set_raw_path(path.as_bytes()).ok()?;
    let host = host?;
    // As `router::request_host` reads it: a visible-ASCII value, or none.
    let routing = match std::str::from_utf8(host) {
        Ok(h) if headers::visible_ascii(host) => normalize_host(h),
        _ => Cow::Borrowed(""),
    };
    let mut fields = Vec::with_capacity(head.len() + 96);
    for line in parsed.headers.iter() {
        let name = line.name.as_bytes();
        let ours = [X_FORWARDED_FOR, X_FORWARDED_PROTO, X_FORWARDED_HOST]
            .iter()
            .any(|x| name.eq_ignore_ascii_case(x.as_bytes()));
        if !ours && !headers::is_hop_by_hop(name, &REQUEST_HOP_BY_HOP, &connection) {
            field(&mut fields, name, line.value);
        }
    }
    if headers::wants_trailers(te) {
        field(&mut fields, b"te", b"trailers");
    }
    if let Some(ip) = client_ip {
        field(
            &mut fields,
            X_FORWARDED_FOR.as_bytes(),
            &headers::forwarded_for(chain, ip),
        );
    }
    field(&mut fields, X_FORWARDED_PROTO.as_bytes(), scheme.as_bytes());
    field(&mut fields, X_FORWARDED_HOST.as_bytes(), host);
    Some(Request {
        header,
        host: routing,
        body_len: body_len.unwrap_or(0),
        close,
        fields,
    })
}

/// `header` with the header map of `head`, the head it was parsed from.
/// Building the map costs an allocation or two per header line, so it is
/// only done for requests whose route reads headers (`None` if `http`
/// refuses a name or value: the request is then left to Pingora).
pub fn with_headers(header: RequestHeader, head: &[u8]) -> Option<RequestHeader> {
    let mut lines = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    parsed.parse_with_uninit_headers(head, &mut lines).ok()?;
    let mut map = http::HeaderMap::with_capacity(parsed.headers.len());
    for line in parsed.headers.iter() {
        let name = http::HeaderName::from_bytes(line.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(line.value).ok()?;
        map.try_append(name, value).ok()?;
    }
    let target = header.raw_path().to_vec();
    let mut parts: http::request::Parts = header.into();
    parts.headers = map;
    let mut header = RequestHeader::from(parts);
    header.set_raw_path(&target).ok()?;
    Some(header)
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: HEAD, 204, 304.
    Empty,
    Length(u64),
    Chunked,
    /// Until the backend closes; the client connection closes after it.
    UntilClose,
}

/// Where the client's response head is written as [`response`] makes it:
/// HTTP/1 text (`Vec<u8>`), or an HTTP/2 stream's fields
/// ([`crate::http2`]).
pub trait HeadOut {
    /// An empty head, with room for about `len` bytes of fields.
    fn with_room(len: usize) -> Self;
    /// The status line; always written first.
    fn status(&mut self, code: u16, reason: &str);
    /// One header field.
    fn field(&mut self, name: &[u8], value: &[u8]);
}

/// HTTP/1 text: the status line and CRLF-ended header lines, without the
/// blank line.
impl HeadOut for Vec<u8> {
    fn with_room(len: usize) -> Self {
        Vec::with_capacity(len)
    }

    fn status(&mut self, code: u16, reason: &str) {
        self.extend_from_slice(b"HTTP/1.1 ");
        self.extend_from_slice(&[
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
            b' ',
        ]);
        self.extend_from_slice(reason.as_bytes());
        self.extend_from_slice(b"\r\n");
    }

    fn field(&mut self, name: &[u8], value: &[u8]) {
        field(self, name, value);
    }
}

/// A backend's response head, and the client's made from it.
pub struct Response<H = Vec<u8>> {
    pub status: u16,
    pub framing: Framing,
    /// The connection can carry another request after this response.
    pub reusable: bool,
    /// Length of the head in the buffer it was parsed from.
    pub head_len: usize,
    /// A body without length or coding, to be sent on in chunks
    /// ([`super::body::Output::Chunked`]); the head says so.
    pub rechunk: bool,
    /// The body is to be compressed with it (a `compress` route's
    /// response; the head says so, see [`crate::compress`]).
    pub coding: Option<Coding>,
    /// The client's head but for `Connection` (and, as text, the blank
    /// line): the status, the backend's fields less hop-by-hop ones (and
    /// `Content-Length` beside `Transfer-Encoding`), then the additions.
    pub head: H,
}

/// What reading a response head found.
pub enum Parsed<H = Vec<u8>> {
    Partial,
    Done(Box<Response<H>>),
    /// Not a response this proxy can pass on (502).
    Malformed,
}

/// Parses the response head at the start of `buf`, for a request that was
/// `head_request` (HEAD responses have no body whatever they say), and
/// writes the client's head from it with `additions`.
pub fn response<H: HeadOut>(
    buf: &[u8],
    head_request: bool,
    additions: &ResponseAdditions,
) -> Parsed<H> {
    let mut lines = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let head_len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut lines) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Malformed,
    };
    let (Some(status), Some(version)) = (parsed.code, parsed.version) else {
        return Parsed::Malformed;
    };
    if !(100..=999).contains(&status) {
        return Parsed::Malformed;
    }
    let (mut length, mut chunked, mut coded) = (None, false, false);
    let mut keep_alive = version == 1;
    let mut connection = Vec::new();
    let mut dated = false;
    for line in parsed.headers.iter() {
        let name = line.name;
        dated |= name.eq_ignore_ascii_case("date");
        if name.eq_ignore_ascii_case(CONTENT_LENGTH.as_str()) {
            match (plain_number(line.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Malformed,
            }
        } else if name.eq_ignore_ascii_case(TRANSFER_ENCODING.as_str()) {
            coded = true;
            chunked = headers::last_coding_is_chunked(line.value);
        } else if name.eq_ignore_ascii_case("connection") {
            if headers::nominates(line.value) {
                connection.push(line.value);
            }
            if headers::has_token(line.value, b"close") {
                keep_alive = false;
            } else if headers::has_token(line.value, b"keep-alive") && version == 0 {
                keep_alive = true;
            }
        }
    }
    let framing = if head_request || status == 204 || status == 304 || status < 200 {
        Framing::Empty
    } else if coded && chunked {
        Framing::Chunked
    } else if coded {
        Framing::UntilClose
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    // Interim (1xx) heads are passed on as they are; what the request
    // earned (cookie, rate-limit headers) goes on the final one.
    let final_head = status >= 200;
    let replacing = final_head && additions.replaces_any();
    // On a `compress` route: whether the body is compressed, and `Vary`.
    let mut compressing = additions.compress.as_ref().map(|offer| {
        let fields = parsed.headers.iter().map(|l| (l.name.as_bytes(), l.value));
        offer.decide(status, fields)
    });
    let mut head = H::with_room(head_len + 128);
    let reason = match parsed.reason.filter(|r| !r.is_empty()) {
        Some(r) => r,
        None => http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
    };
    head.status(status, reason);
    for line in parsed.headers.iter() {
        let name = line.name.as_bytes();
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3), which
        // must then not be passed on.
        let overridden = coded && name.eq_ignore_ascii_case(CONTENT_LENGTH.as_str().as_bytes());
        // The additions replace the backend's lines of their names.
        let replaced = replacing && additions.replaces(name);
        let dropped = overridden
            || replaced
            || headers::is_hop_by_hop(name, &RESPONSE_HOP_BY_HOP, &connection);
        if dropped {
            continue;
        }
        match compressing
            .as_mut()
            .map_or(Edit::Keep, |d| compress::edit_field(d, name, line.value))
        {
            Edit::Keep => head.field(name, line.value),
            Edit::Drop => {}
            Edit::Replace(value) => head.field(name, &value),
        }
    }
    // No length, no coding: the body ends when the backend closes. The
    // client gets it in chunks and keeps its connection, as on Pingora's path.
    let rechunk = framing == Framing::UntilClose && !coded;
    if rechunk {
        head.field(b"Transfer-Encoding", b"chunked");
    }
    // A response forwarded without a Date gets one (RFC 9110 §6.6.1), as
    // Pingora's path sets it on every response.
    if !dated && final_head {
        let now = pingora::protocols::http::date::get_cached_date();
        head.field(b"Date", now.as_bytes());
    }
    if let Some(decision) = &compressing {
        // A body that had a length now goes in chunks.
        let chunk = matches!(framing, Framing::Length(_));
        for (name, value) in compress::added_fields(decision, chunk) {
            head.field(name, value);
        }
    }
    if final_head {
        additions.each_field(|name, value| head.field(name, value));
    }
    Parsed::Done(Box::new(Response {
        status,
        framing,
        reusable: keep_alive && framing != Framing::UntilClose,
        head_len,
        rechunk,
        coding: compressing.and_then(|d| d.coding),
        head,
    }))
}

/// One header line, CRLF-ended.
fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The request head for the backend: its request line, then `fields`.
pub fn write_request(method: &Method, target: &[u8], fields: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    out.extend_from_slice(fields);
    out.extend_from_slice(b"\r\n");
}

/// Digits only (no sign, no spaces, no list): the one accepted form.
pub(crate) fn plain_number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    // 19 digits cannot overflow a u64.
    v.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests;
