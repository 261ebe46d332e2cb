//! Which host a request is for: the authority of an absolute-form target
//! (RFC 9112 §3.2.2), else the Host header. Port and trailing dot removed,
//! lower-cased.
//!
//! Pingora keeps an absolute-form target only in the raw request line (the
//! parsed `Uri` holds the path), and has already rejected a request whose Host
//! differs from that authority, so the two never disagree here.

use std::borrow::Cow;

use pingora::http::RequestHeader;

/// The authority of an absolute-form request target (`http://a.example/p`).
pub fn absolute_form_authority(req: &RequestHeader) -> Option<&str> {
    if let Some(a) = req.uri.authority() {
        return Some(a.as_str());
    }
    let raw = req.raw_path();
    if raw.starts_with(b"/") {
        // Origin form, the usual request: no authority.
        return None;
    }
    let raw = std::str::from_utf8(raw).ok()?;
    let rest = raw
        .split_once("://")
        .filter(|(scheme, _)| !scheme.contains('/'))?
        .1;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

/// The routing host of `req`, or `""` when the request names none.
pub fn request_host(req: &RequestHeader) -> String {
    let raw = match absolute_form_authority(req) {
        Some(a) => a,
        None => req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    };
    normalize_host(raw).into_owned()
}

/// `API.Example.com.:8080` → `api.example.com`; `[::1]:80` → `[::1]`.
/// Borrowed when `raw`'s host part is already lower case.
pub fn normalize_host(raw: &str) -> Cow<'_, str> {
    let raw = raw.rsplit_once('@').map_or(raw, |(_, h)| h);
    let host = if raw.starts_with('[') {
        match raw.find(']') {
            Some(i) => &raw[..=i],
            None => raw,
        }
    } else {
        raw.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_port_case_and_dot() {
        assert_eq!(normalize_host("API.Example.COM:8080"), "api.example.com");
        assert_eq!(normalize_host("example.com."), "example.com");
        assert_eq!(normalize_host("[::1]:8080"), "[::1]");
        assert_eq!(normalize_host(""), "");
    }

    #[test]
    fn absolute_form_wins_over_host_header() {
        let mut req = RequestHeader::build("GET", b"http://Target.example:81/p", None).unwrap();
        req.insert_header("Host", "other.example").unwrap();
        assert_eq!(request_host(&req), "target.example");
        let mut req = RequestHeader::build("GET", b"/p", None).unwrap();
        req.insert_header("Host", "other.example:8080").unwrap();
        assert_eq!(request_host(&req), "other.example");
    }
}
