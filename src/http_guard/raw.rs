//! Checks on the raw bytes of a request head, for what Pingora's parser
//! normalises away before the application could see it.
//!
//! - A head with both `Content-Length` and `Transfer-Encoding`: Pingora
//!   drops the length (RFC 9112 §6.3 allows it), so the parsed request no
//!   longer shows the ambiguity; the SPEC wants 400.
//! - A bare LF line ending (a `\n` without `\r`): RFC 9112 §2.2 lets a
//!   recipient accept it, which is exactly the kind of parser disagreement
//!   request smuggling feeds on; the SPEC wants 400.

/// What [`check`] learnt of a head it let through.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// The head has a `Transfer-Encoding` line: its body is chunked (any
    /// other final coding is refused by Pingora's parser).
    pub transfer_encoding: bool,
}

/// Why this head must be refused with 400, if it must; else its [`Shape`].
/// `head` ends with its blank line. (One pass over the line ends: this runs
/// for every request.)
pub fn check(head: &[u8]) -> Result<Shape, &'static str> {
    let (mut length, mut coding) = (false, false);
    let mut line_start = 0;
    for end in memchr::memchr_iter(b'\n', head) {
        if end == 0 || head[end - 1] != b'\r' {
            return Err("bare LF line ending");
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
    if length && coding {
        return Err("both Content-Length and Transfer-Encoding");
    }
    Ok(Shape {
        transfer_encoding: coding,
    })
}

/// Why this head must be refused with 400, if it must.
pub fn problem(head: &[u8]) -> Option<&'static str> {
    check(head).err()
}

/// How long the request-target at the front of `data` is, as far as it has
/// arrived: the bytes after the method's space up to the next space or line
/// end (or the end of `data`). Blank lines before the request line are
/// skipped, as by [`super::Prefixed::head_end`].
pub fn target_len(data: &[u8]) -> usize {
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(data.len());
    let line = &data[start..];
    let Some(space) = memchr::memchr(b' ', line) else {
        return 0;
    };
    let target = &line[space + 1..];
    memchr::memchr3(b' ', b'\r', b'\n', target).unwrap_or(target.len())
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
    fn the_target_is_measured_as_it_arrives() {
        assert_eq!(target_len(b"GET /abc HTTP/1.1\r\n"), 4);
        assert_eq!(target_len(b"\r\nGET /abcdef"), 7);
        assert_eq!(target_len(b"GET"), 0);
        assert_eq!(target_len(b"GET /a?b=c\r\n"), 6);
    }

    #[test]
    fn a_transfer_encoding_is_noted() {
        let shape = check(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(shape.map(|s| s.transfer_encoding), Ok(true));
        let shape = check(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(shape.map(|s| s.transfer_encoding), Ok(false));
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
