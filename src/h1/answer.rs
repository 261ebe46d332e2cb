//! Answers the forwarder makes itself, byte for byte what the Pingora path
//! sends ([`crate::proxy::respond`]): the status, a short `text/plain` body
//! naming it, any extra headers (429's `Retry-After`), the date, and the
//! connection closed after it.

use crate::proxy::respond;

/// The whole response for `code`.
pub fn bytes(code: u16, extra: &[(&str, String)]) -> Vec<u8> {
    let reason = respond::reason(code);
    let body = respond::body_for(code);
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    let date = pingora::protocols::http::date::get_cached_date();
    out.push_str("Date: ");
    out.push_str(date.to_str().unwrap_or_default());
    out.push_str("\r\nConnection: close\r\n\r\n");
    out.push_str(&body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_status_and_closes() {
        let wire = String::from_utf8(super::bytes(429, &[("Retry-After", "2".into())])).unwrap();
        assert!(wire.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(wire.contains("\r\nRetry-After: 2\r\n"));
        assert!(wire.contains(" GMT\r\nConnection: close\r\n"), "{wire}");
        assert!(wire.contains("\r\nDate: "), "{wire}");
        assert!(wire.ends_with("\r\n\r\n429 Too Many Requests\n"));
    }
}
