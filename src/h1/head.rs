//! Request and response heads on the wire: parsed with `httparse` into
//! Pingora's header types (so routing, selection and header rewriting are
//! the same code as on the Pingora path), and written back in HTTP/1.1 form.

use http::header::{CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderValue, Method};
use pingora::http::{RequestHeader, ResponseHeader};

/// Most header lines a head may have here; a longer one goes to Pingora.
const MAX_HEADERS: usize = 96;

/// A client request this path can forward: its head, and its body length.
pub struct Request {
    pub header: RequestHeader,
    pub body_len: u64,
    /// The client asked to close after this request.
    pub close: bool,
}

/// Parses a complete request head. `None` means "not for this path": the
/// request is handed to Pingora unchanged, which forwards it or answers the
/// status the SPEC names. Declined: anything but HTTP/1.1, CONNECT, upgrades,
/// `Expect`, `Transfer-Encoding` bodies, any `Content-Length` but one plain
/// number, no or several `Host`, targets not in origin form, and anything
/// `httparse` or `http` refuses.
pub fn request(head: &[u8]) -> Option<Request> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut lines);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let (method, path, version) = (parsed.method?, parsed.path?, parsed.version?);
    if version != 1 || method == Method::CONNECT.as_str() || !path.starts_with('/') {
        return None;
    }
    let mut header =
        RequestHeader::build(method, path.as_bytes(), Some(parsed.headers.len())).ok()?;
    let (mut hosts, mut body_len, mut close) = (0, None, false);
    for line in parsed.headers.iter() {
        let value = HeaderValue::from_bytes(line.value).ok()?;
        let name = bytes::Bytes::copy_from_slice(line.name.as_bytes());
        let field = line.name;
        if field.eq_ignore_ascii_case(HOST.as_str()) {
            hosts += 1;
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
            close |= has_token(line.value, b"close");
        }
        header.append_header(name, value).ok()?;
    }
    if hosts != 1 {
        return None;
    }
    Some(Request {
        header,
        body_len: body_len.unwrap_or(0),
        close,
    })
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

/// A backend's response head.
pub struct Response {
    pub header: ResponseHeader,
    pub framing: Framing,
    /// The connection can carry another request after this response.
    pub reusable: bool,
    /// Length of the head in the buffer it was parsed from.
    pub head_len: usize,
}

/// What reading a response head found.
pub enum Parsed {
    Partial,
    Done(Box<Response>),
    /// Not a response this proxy can pass on (502).
    Malformed,
}

/// Parses the response head at the start of `buf`, for a request that was
/// `head_request` (HEAD responses have no body whatever they say).
pub fn response(buf: &[u8], head_request: bool) -> Parsed {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut lines);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Malformed,
    };
    let (Some(code), Some(version)) = (parsed.code, parsed.version) else {
        return Parsed::Malformed;
    };
    let Ok(mut header) = ResponseHeader::build(code, Some(parsed.headers.len())) else {
        return Parsed::Malformed;
    };
    if let Some(reason) = parsed.reason.filter(|r| !r.is_empty()) {
        let _ = header.set_reason_phrase(Some(reason));
    }
    let (mut length, mut chunked, mut coded) = (None, false, false);
    let mut keep_alive = version == 1;
    for line in parsed.headers.iter() {
        let Ok(value) = HeaderValue::from_bytes(line.value) else {
            return Parsed::Malformed;
        };
        let name = line.name;
        if name.eq_ignore_ascii_case(CONTENT_LENGTH.as_str()) {
            match (plain_number(line.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Malformed,
            }
        } else if name.eq_ignore_ascii_case(TRANSFER_ENCODING.as_str()) {
            coded = true;
            chunked = last_coding_is_chunked(line.value);
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(line.value, b"close") {
                keep_alive = false;
            } else if has_token(line.value, b"keep-alive") && version == 0 {
                keep_alive = true;
            }
        }
        if header
            .append_header(bytes::Bytes::copy_from_slice(name.as_bytes()), value)
            .is_err()
        {
            return Parsed::Malformed;
        }
    }
    let status = header.status.as_u16();
    let framing = if head_request || status == 204 || status == 304 || status < 200 {
        Framing::Empty
    } else if coded {
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3), which
        // must then not be passed on.
        header.remove_header(&CONTENT_LENGTH);
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Parsed::Done(Box::new(Response {
        header,
        framing,
        reusable: keep_alive && framing != Framing::UntilClose,
        head_len,
    }))
}

/// The request line and headers for the backend.
pub fn write_request(req: &RequestHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.raw_path());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    req.header_to_h1_wire(out);
    out.extend_from_slice(b"\r\n");
}

/// The status line and headers for the client.
pub fn write_response(resp: &ResponseHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(resp.status.as_str().as_bytes());
    out.push(b' ');
    let reason = resp
        .get_reason_phrase()
        .or(resp.status.canonical_reason())
        .unwrap_or("");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    resp.header_to_h1_wire(out);
    out.extend_from_slice(b"\r\n");
}

/// Digits only (no sign, no spaces, no list): the one accepted form.
fn plain_number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn last_coding_is_chunked(v: &[u8]) -> bool {
    v.rsplit(|b| *b == b',')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_request_is_taken() {
        let r = request(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\n").unwrap();
        assert_eq!(r.header.uri.path(), "/a");
        assert_eq!(r.header.headers["x-y"], "z");
        assert_eq!(r.body_len, 0);
        assert!(!r.close);
        let r = request(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body_len, 5);
        assert!(r.close);
    }

    #[test]
    fn unusual_requests_are_left_to_pingora() {
        for head in [
            &b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"[..],
            b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        ] {
            assert!(request(head).is_none(), "{}", String::from_utf8_lossy(head));
        }
    }

    fn done(buf: &[u8], head: bool) -> Response {
        match response(buf, head) {
            Parsed::Done(r) => *r,
            _ => panic!("not parsed: {}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let r = done(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false);
        assert_eq!(
            (r.framing, r.reusable, r.head_len),
            (Framing::Length(3), true, 38)
        );
        let r = done(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true);
        assert_eq!(r.framing, Framing::Empty);
        let r = done(b"HTTP/1.1 204 No Content\r\n\r\n", false);
        assert_eq!(r.framing, Framing::Empty);
        let r = done(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            false,
        );
        assert_eq!(r.framing, Framing::Chunked);
        assert!(!r.header.headers.contains_key("content-length"));
        let r = done(b"HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!((r.framing, r.reusable), (Framing::UntilClose, false));
        let r = done(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(!r.reusable);
        let r = done(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert!(!r.reusable);
        assert!(matches!(
            response(b"HTTP/1.1 200 OK\r\nContent-Le", false),
            Parsed::Partial
        ));
        assert!(matches!(
            response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            ),
            Parsed::Malformed
        ));
    }

    #[test]
    fn heads_are_written_in_http_1_1_form() {
        let r = request(b"GET /p HTTP/1.1\r\nHost: x\r\nX-Case: 1\r\n\r\n").unwrap();
        let mut out = Vec::new();
        write_request(&r.header, &mut out);
        assert_eq!(out, b"GET /p HTTP/1.1\r\nHost: x\r\nX-Case: 1\r\n\r\n");
        let resp = done(
            b"HTTP/1.1 404 Gone Fishing\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        let mut out = Vec::new();
        write_response(&resp.header, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Gone Fishing\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
