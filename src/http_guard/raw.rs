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
/// blank line.
pub fn problem(head: &[u8]) -> Option<&'static str> {
    if head
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
    {
        return Some("bare LF line ending");
    }
    let mut length = false;
    let mut coding = false;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = &line[..colon];
        length |= name.eq_ignore_ascii_case(b"content-length");
        coding |= name.eq_ignore_ascii_case(b"transfer-encoding");
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
