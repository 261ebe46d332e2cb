//! Heads between HTTP/2 and the HTTP/1 text the forwarder works in.
//!
//! To the backend: the fields an HTTP/1.1 backend gets for an HTTP/2
//! request, by the same rules as for an HTTP/1 client
//! ([`crate::h1::head::request`]): `Host` from `:authority`, hop-by-hop
//! fields out, `TE: trailers` kept, `X-Forwarded-*` set, split `Cookie`
//! fields joined (RFC 9113 §8.2.3). To the client: the HTTP/1 head the
//! forwarder made from the backend's response, as an HTTP/2 HEADERS frame
//! (connection-specific fields, which HTTP/2 forbids, left out).

use std::mem::MaybeUninit;
use std::net::IpAddr;

use http::header::{COOKIE, HOST, TE};
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;

use crate::h1::head::HeadOut;

use crate::proxy::headers::{
    self, REQUEST_HOP_BY_HOP, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO,
};

/// Most fields a response head may have (the backend's, then ours).
const MAX_FIELDS: usize = 128;

/// Fields an HTTP/2 message must not carry (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// The header lines (each CRLF-ended) an HTTP/1.1 backend gets for `req`,
/// an HTTP/2 request already in origin form with `Host` set from its
/// `:authority`. `chunked`: its body follows in chunks.
pub fn backend_fields(
    req: &RequestHeader,
    client_ip: Option<IpAddr>,
    scheme: &str,
    chunked: bool,
) -> Vec<u8> {
    let h = &req.headers;
    let mut out = Vec::with_capacity(256 + 64 * h.len());
    let host = h.get(HOST).map(HeaderValue::as_bytes);
    if let Some(host) = host {
        field(&mut out, b"host", host);
    }
    let mut cookies = h.get_all(COOKIE).iter();
    if let Some(first) = cookies.next() {
        let mut joined = first.as_bytes().to_vec();
        for c in cookies {
            joined.extend_from_slice(b"; ");
            joined.extend_from_slice(c.as_bytes());
        }
        field(&mut out, b"cookie", &joined);
    }
    for (name, value) in h {
        let name = name.as_str().as_bytes();
        let ours = [X_FORWARDED_FOR, X_FORWARDED_PROTO, X_FORWARDED_HOST]
            .iter()
            .any(|x| name == x.as_bytes());
        let placed = name == b"host" || name == b"cookie";
        if !ours && !placed && !headers::is_hop_by_hop(name, &REQUEST_HOP_BY_HOP, &[]) {
            field(&mut out, name, value.as_bytes());
        }
    }
    if chunked {
        field(&mut out, b"transfer-encoding", b"chunked");
    }
    if headers::wants_trailers(h.get_all(TE).iter().map(HeaderValue::as_bytes)) {
        field(&mut out, b"te", b"trailers");
    }
    if let Some(ip) = client_ip {
        let chain = h.get_all(X_FORWARDED_FOR).iter().map(HeaderValue::as_bytes);
        let value = headers::forwarded_for(chain, ip);
        field(&mut out, X_FORWARDED_FOR.as_bytes(), &value);
    }
    field(&mut out, X_FORWARDED_PROTO.as_bytes(), scheme.as_bytes());
    if let Some(host) = host {
        field(&mut out, X_FORWARDED_HOST.as_bytes(), host);
    }
    out
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The HTTP/2 response for a whole HTTP/1 head (through its blank line) at
/// the start of `text`, and the head's length (a body may follow it).
/// `None` if it cannot be one (it was made here, so that is a bug, answered
/// by resetting the stream).
pub fn response(text: &[u8]) -> Option<(http::Response<()>, usize)> {
    let mut lines = [const { MaybeUninit::uninit() }; MAX_FIELDS];
    let mut parsed = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut parsed, text, &mut lines) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let mut fields = Fields::with_room(0);
    fields.status(parsed.code?, "");
    for line in parsed.headers.iter() {
        fields.field(line.name.as_bytes(), line.value);
    }
    Some((fields.into_response()?, len))
}

/// A response head as an HTTP/2 stream sends it, written straight by
/// [`crate::h1::head::response`]: the status and the fields, those HTTP/2
/// forbids left out. A status or field `http` refuses spoils it (the
/// stream is then reset).
pub struct Fields {
    resp: http::Response<()>,
    spoiled: bool,
}

impl HeadOut for Fields {
    fn with_room(_len: usize) -> Self {
        Self {
            resp: http::Response::new(()),
            spoiled: false,
        }
    }

    fn status(&mut self, code: u16, _reason: &str) {
        match http::StatusCode::from_u16(code) {
            Ok(s) => *self.resp.status_mut() = s,
            Err(_) => self.spoiled = true,
        }
    }

    fn field(&mut self, name: &[u8], value: &[u8]) {
        if CONNECTION_SPECIFIC
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c.as_bytes()))
        {
            return;
        }
        match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            (Ok(n), Ok(v)) => {
                self.resp.headers_mut().append(n, v);
            }
            _ => self.spoiled = true,
        }
    }
}

impl Fields {
    /// The response, unless a status or field spoiled it.
    pub fn into_response(self) -> Option<http::Response<()>> {
        (!self.spoiled).then_some(self.resp)
    }
}

/// The trailer fields in `lines` (CRLF-ended trailer lines of a chunked
/// body) as an HTTP/2 trailer block; `None` when there are none to send
/// (connection-specific fields and unparsable lines are left out).
pub fn trailers(lines: &[u8]) -> Option<http::HeaderMap> {
    if lines.is_empty() {
        return None;
    }
    let block = [lines, b"\r\n"].concat();
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let httparse::Status::Complete((_, parsed)) =
        httparse::parse_headers(&block, &mut fields).ok()?
    else {
        return None;
    };
    let mut map = http::HeaderMap::new();
    for f in parsed {
        if CONNECTION_SPECIFIC
            .iter()
            .any(|c| f.name.eq_ignore_ascii_case(c))
        {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(f.name.as_bytes()),
            HeaderValue::from_bytes(f.value),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h2_request(pairs: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/p?q", None).unwrap();
        for (k, v) in pairs {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn the_backend_gets_host_first_cookies_joined_and_forwarding_last() {
        let req = h2_request(&[
            ("host", "a.test"),
            ("cookie", "a=1"),
            ("accept", "*/*"),
            ("cookie", "b=2"),
            ("te", "trailers"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "spoofed"),
        ]);
        let ip = "127.0.0.1".parse().ok();
        let text = String::from_utf8(backend_fields(&req, ip, "https", true)).unwrap();
        assert_eq!(
            text,
            "host: a.test\r\ncookie: a=1; b=2\r\naccept: */*\r\ntransfer-encoding: chunked\r\n\
             te: trailers\r\nx-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: https\r\n\
             x-forwarded-host: a.test\r\n"
        );
    }

    #[test]
    fn a_response_head_loses_connection_specific_fields() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-A: 1\r\nX-A: 2\r\n\r\n";
        let (resp, len) = response(head).unwrap();
        assert_eq!(len, head.len());
        assert_eq!(resp.status(), 200);
        let names: Vec<_> = resp.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "x-a"]);
        assert_eq!(resp.headers().get_all("x-a").iter().count(), 2);
    }

    #[test]
    fn trailer_lines_become_a_trailer_block() {
        let map = trailers(b"X-Sum: 5\r\nGrpc-Status: 0\r\nConnection: x\r\n").unwrap();
        assert_eq!(map.get("x-sum").unwrap(), "5");
        assert_eq!(map.get("grpc-status").unwrap(), "0");
        assert!(map.get("connection").is_none());
        assert!(trailers(b"").is_none());
    }

    #[test]
    fn an_answer_with_a_body_says_where_the_head_ends() {
        let wire = b"HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n";
        let (resp, len) = response(wire).unwrap();
        assert_eq!(resp.status(), 404);
        assert_eq!(&wire[len..], b"404 Not Found\n");
    }
}
