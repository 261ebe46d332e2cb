//! Checks on the raw bytes of a request head, for what Pingora's parser
//! normalises away before the application could see it.
//!
//! - A head with both `Content-Length` and `Transfer-Encoding`: Pingora
//!   drops the length (RFC 9112 §6.3 allows it), so the parsed request no
//!   longer shows the ambiguity; the SPEC wants 400.
//! - A bare LF line ending (a `\n` without `\r`): RFC 9112 §2.2 lets a
//!   recipient accept it, which is exactly the kind of parser disagreement
//!   request smuggling feeds on; the SPEC wants 400.

/// Why this head must be refused with 400, if it must. `head` ends with its
/// blank line. (One pass over the line ends: this runs for every request.)
pub fn problem(head: &[u8]) -> Option<&'static str> {
    let (mut length, mut coding) = (false, false);
    let mut line_start = 0;
    for end in memchr::memchr_iter(b'\n', head) {
        if end == 0 || head[end - 1] != b'\r' {
            return Some("bare LF line ending");
        }
        // Header lines: all but the request line.
        if line_start > 0 {
            let line = &head[line_start..end];
            if let Some(colon) = memchr::memchr(b':', line) {
                let name = &line[..colon];
                length |= name.eq_ignore_ascii_case(b"content-length");
                coding |= name.eq_ignore_ascii_case(b"transfer-encoding");
            }
        }
        line_start = end + 1;
    }
    (length && coding).then_some("both Content-Length and Transfer-Encoding")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_ambiguities() {
        assert!(problem(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ntransfer-encoding: chunked\r\n\r\n").is_some());
        assert!(problem(b"GET / HTTP/1.1\nHost: a\n\n").is_some());
        assert!(problem(b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n").is_some());
    }

    #[test]
    fn ordinary_heads_pass() {
        assert_eq!(
            problem(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
            None
        );
        assert_eq!(problem(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Content-Length: 1\r\n\r\n"), None);
    }
}
