//! The bytes `consistent_hash` hashes for a request, per the upstream's
//! `hash_key`.
//!
//! | `hash_key` | bytes |
//! |---|---|
//! | `client_ip` | the socket peer's address octets (4 for IPv4, 16 for IPv6; an IPv4-mapped IPv6 peer counts as IPv4), never a header |
//! | `path` | the request path, without the query |
//! | `uri` | path and query, as sent (an absolute-form target's scheme and authority are left out) |
//! | `header:NAME` | the first `NAME` header's value |
//! | `cookie:NAME` | the value of the first cookie `NAME` across all `Cookie` headers |
//! | `query:NAME` | the raw (still percent-encoded) value of the first `NAME` query parameter |
//!
//! Values are taken as they are at the time of the call; the proxy calls this
//! in `upstream_peer`, after the path was normalized.
//!
//! A missing or empty value gives `None` from [`key_bytes`]. The proxy then
//! hashes the client IP instead ([`key_or_client_ip`]), so a client without
//! the header, cookie or parameter still sticks to one backend rather than
//! all such clients piling onto the one that owns the empty key. Only when
//! the peer has no IP either (a Unix socket) is the empty key hashed.

use std::borrow::Cow;
use std::net::IpAddr;

use pingora::http::RequestHeader;

use crate::config::HashKey;

/// The configured key's bytes for this request; `None` when the value is
/// missing or empty.
pub fn key_bytes<'a>(
    key: &HashKey,
    req: &'a RequestHeader,
    client_ip: Option<IpAddr>,
) -> Option<Cow<'a, [u8]>> {
    let bytes: Cow<'a, [u8]> = match key {
        HashKey::ClientIp => Cow::Owned(ip_bytes(client_ip?)),
        HashKey::Path => Cow::Borrowed(req.uri.path().as_bytes()),
        HashKey::Uri => {
            let pq = req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path(), |pq| pq.as_str());
            Cow::Borrowed(pq.as_bytes())
        }
        HashKey::Header(name) => Cow::Borrowed(req.headers.get(name.as_str())?.as_bytes()),
        HashKey::Cookie(name) => Cow::Borrowed(cookie(req, name)?),
        HashKey::Query(name) => Cow::Borrowed(query_param(req.uri.query()?, name)?.as_bytes()),
    };
    (!bytes.is_empty()).then_some(bytes)
}

/// What the proxy hashes: the configured key, or the client IP when that is
/// missing (see the module doc), or nothing at all without either.
pub fn key_or_client_ip<'a>(
    key: &HashKey,
    req: &'a RequestHeader,
    client_ip: Option<IpAddr>,
) -> Cow<'a, [u8]> {
    key_bytes(key, req, client_ip)
        .or_else(|| client_ip.map(|ip| Cow::Owned(ip_bytes(ip))))
        .unwrap_or(Cow::Borrowed(&[]))
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// RFC 6265 §5.4 `Cookie: a=1; b=2`, possibly split over several headers
/// (HTTP/2 does). Names match exactly; surrounding whitespace is trimmed.
fn cookie<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|h| h.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
}

/// `a=1&b=2`: the first `name` parameter's raw value (`b` alone is empty).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|param| match param.split_once('=') {
            Some((n, v)) if n == name => Some(v),
            None if param == name => Some(""),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    fn key(k: &HashKey, r: &RequestHeader) -> Option<Vec<u8>> {
        key_bytes(k, r, Some("10.0.0.7".parse().unwrap())).map(Cow::into_owned)
    }

    fn some(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn client_ip_is_the_peer_in_canonical_form() {
        let r = req("/", &[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(key(&HashKey::ClientIp, &r), Some(vec![10, 0, 0, 7]));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(
            key_bytes(&HashKey::ClientIp, &r, Some(mapped))
                .unwrap()
                .as_ref(),
            [10, 0, 0, 7]
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            key_bytes(&HashKey::ClientIp, &r, Some(v6)).unwrap().len(),
            16
        );
        assert_eq!(key_bytes(&HashKey::ClientIp, &r, None), None);
    }

    #[test]
    fn path_and_uri() {
        let r = req("/a/b?x=1&y=2", &[]);
        assert_eq!(key(&HashKey::Path, &r), some("/a/b"));
        assert_eq!(key(&HashKey::Uri, &r), some("/a/b?x=1&y=2"));
        let absolute = req("http://example.com/p?q=1", &[]);
        assert_eq!(key(&HashKey::Path, &absolute), some("/p"));
        assert_eq!(key(&HashKey::Uri, &absolute), some("/p?q=1"));
    }

    #[test]
    fn header_first_value() {
        let r = req(
            "/",
            &[("x-user", "alice"), ("x-user", "bob"), ("x-empty", "")],
        );
        assert_eq!(key(&HashKey::Header("x-user".into()), &r), some("alice"));
        assert_eq!(key(&HashKey::Header("x-missing".into()), &r), None);
        assert_eq!(key(&HashKey::Header("x-empty".into()), &r), None);
    }

    #[test]
    fn cookie_across_headers() {
        let r = req(
            "/",
            &[
                ("cookie", "a=1; sid=xyz ;b=2"),
                ("cookie", "c=3; sid=later"),
            ],
        );
        let k = |n: &str| key(&HashKey::Cookie(n.into()), &r);
        assert_eq!(k("sid"), some("xyz"));
        assert_eq!(k("c"), some("3"));
        assert_eq!(k("b"), some("2"));
        assert_eq!(k("SID"), None, "names are case-sensitive");
        assert_eq!(k("missing"), None);
        let r = req("/", &[("cookie", "flag; sid=; x=a=b")]);
        let k = |n: &str| key(&HashKey::Cookie(n.into()), &r);
        assert_eq!(k("flag"), None);
        assert_eq!(k("sid"), None);
        assert_eq!(k("x"), some("a=b"));
        assert_eq!(key(&HashKey::Cookie("sid".into()), &req("/", &[])), None);
    }

    #[test]
    fn query_raw_value() {
        let r = req("/p?user=al%20ice&user=bob&flag&e=&x=a=b", &[]);
        let k = |n: &str| key(&HashKey::Query(n.into()), &r);
        assert_eq!(k("user"), some("al%20ice"));
        assert_eq!(k("x"), some("a=b"));
        assert_eq!(k("flag"), None);
        assert_eq!(k("e"), None);
        assert_eq!(k("missing"), None);
        assert_eq!(key(&HashKey::Query("user".into()), &req("/p", &[])), None);
    }

    #[test]
    fn missing_key_falls_back_to_the_client_ip() {
        let r = req("/p", &[("x-user", "alice")]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            key_or_client_ip(&HashKey::Header("x-user".into()), &r, Some(ip)).as_ref(),
            b"alice"
        );
        assert_eq!(
            key_or_client_ip(&HashKey::Cookie("sid".into()), &r, Some(ip)).as_ref(),
            [192, 0, 2, 1]
        );
        assert_eq!(
            key_or_client_ip(&HashKey::Query("u".into()), &r, None).as_ref(),
            b""
        );
    }
}
