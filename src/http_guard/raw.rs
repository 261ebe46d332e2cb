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
    pub content_length: Length,
    /// The head has an `Upgrade` line: after a 101 the connection is a tunnel.
    pub upgrade: bool,
}

/// A head's `Content-Length`, as far as this check reads it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    #[default]
    Absent,
    /// One line of plain digits.
    Is(u64),
    /// Several lines, or not plain digits (Pingora's parser judges those).
    Unclear,
}

impl Shape {
    /// How many bytes this request takes, its head of `head_len` bytes
    /// included, when that is known before its body arrives.
    pub fn request_len(&self, head_len: usize) -> Option<u64> {
        if self.transfer_encoding || self.upgrade {
            return None;
        }
        match self.content_length {
            Length::Absent => Some(head_len as u64),
            Length::Is(n) => (head_len as u64).checked_add(n),
            Length::Unclear => None,
        }
    }
}

/// Why this head must be refused with 400, if it must; else its [`Shape`].
/// `head` ends with its blank line. (One pass over the line ends: this runs
/// for every request.)
pub fn check(head: &[u8]) -> Result<Shape, &'static str> {
    let mut shape = Shape::default();
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
                if name.eq_ignore_ascii_case(b"content-length") {
                    shape.content_length = match shape.content_length {
                        Length::Absent => {
                            digits(&line[colon + 1..]).map_or(Length::Unclear, Length::Is)
                        }
                        _ => Length::Unclear,
                    };
                }
                // A list of tokens: bytes past ASCII make it unreadable,
                // and the two engines would read it differently.
                if name.eq_ignore_ascii_case(b"connection") && !line[colon + 1..].is_ascii() {
                    return Err("non-ASCII Connection value");
                }
                shape.transfer_encoding |= name.eq_ignore_ascii_case(b"transfer-encoding");
                shape.upgrade |= name.eq_ignore_ascii_case(b"upgrade");
            }
        }
        line_start = end + 1;
    }
    if shape.transfer_encoding && shape.content_length != Length::Absent {
        return Err("both Content-Length and Transfer-Encoding");
    }
    Ok(shape)
}

/// A header value of plain decimal digits (around optional white space).
fn digits(value: &[u8]) -> Option<u64> {
    crate::h1::head::plain_number(value.trim_ascii())
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
        assert!(problem(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\xf3\r\n\r\n").is_some());
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
    fn a_request_length_is_known_without_coding_or_upgrade() {
        let len = |head: &[u8]| check(head).unwrap().request_len(head.len());
        assert_eq!(len(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Some(27));
        assert_eq!(
            len(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
            Some(52)
        );
        assert_eq!(
            len(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            None
        );
        assert_eq!(len(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), None);
        assert_eq!(
            len(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
            None
        );
        assert_eq!(
            len(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            None
        );
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
