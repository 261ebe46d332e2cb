//! Request framing checks Pingora leaves to the application (SPEC: malformed
//! or ambiguous requests are answered 400 and nothing is forwarded).
//!
//! Pingora already rejects malformed `Content-Length` values, differing
//! duplicates, unknown or non-final transfer codings, HTTP/1.0 with
//! `Transfer-Encoding`, bare CR, NUL, obsolete line folding and duplicate
//! `Host`. It *accepts*, and we reject here, the ambiguous rest:
//! `Content-Length` together with `Transfer-Encoding` (RFC 9112 §6.3 lets a
//! server drop the length; a proxy that does so can be desynchronised from a
//! backend that does not), `chunked` named more than once, a repeated
//! `Content-Length` even with equal values, and an HTTP/1.1 request without
//! `Host` (RFC 9112 §3.2: "MUST respond with a 400").

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::Version;
use pingora::http::RequestHeader;

use crate::router::absolute_form_authority;

/// Why `req` must be refused with 400, if it must.
pub fn ambiguity(req: &RequestHeader) -> Option<&'static str> {
    let h = &req.headers;
    let lengths = h.get_all(CONTENT_LENGTH).iter().count();
    let codings: Vec<&[u8]> = h
        .get_all(TRANSFER_ENCODING)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if lengths > 0 && !codings.is_empty() {
        return Some("both Content-Length and Transfer-Encoding");
    }
    if lengths > 1 {
        return Some("repeated Content-Length");
    }
    let chunked = codings
        .iter()
        .flat_map(|v| v.split(|b| *b == b','))
        .filter(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        .count();
    if chunked > 1 {
        return Some("chunked applied more than once");
    }
    if req.version == Version::HTTP_11
        && !h.contains_key(HOST)
        && absolute_form_authority(req).is_none()
    {
        return Some("HTTP/1.1 request without Host");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let host = ("Host", "a");
        assert!(ambiguity(&req(&[
            host,
            ("Content-Length", "5"),
            ("Transfer-Encoding", "chunked")
        ]))
        .is_some());
        assert!(ambiguity(&req(&[
            host,
            ("Content-Length", "5"),
            ("Content-Length", "5")
        ]))
        .is_some());
        assert!(ambiguity(&req(&[
            host,
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "chunked")
        ]))
        .is_some());
        assert!(ambiguity(&req(&[host, ("Transfer-Encoding", "chunked, Chunked")])).is_some());
        assert!(ambiguity(&req(&[])).is_some(), "no Host");
    }

    #[test]
    fn ordinary_requests_pass() {
        let host = ("Host", "a");
        assert_eq!(ambiguity(&req(&[host])), None);
        assert_eq!(ambiguity(&req(&[host, ("Content-Length", "5")])), None);
        assert_eq!(
            ambiguity(&req(&[host, ("Transfer-Encoding", "gzip, chunked")])),
            None
        );
    }
}
