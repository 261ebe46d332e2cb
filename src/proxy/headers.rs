//! Header rewriting between client and backend (SPEC "Headers to backends").
//!
//! To the backend: the client's Host kept; `X-Forwarded-For` gets the socket
//! peer appended to any chain the client sent; `X-Forwarded-Proto` and
//! `X-Forwarded-Host` are set by us, replacing client values. Hop-by-hop
//! headers (RFC 9110 §7.6.1) are dropped in both directions: on requests by
//! Pingora's standard upstream policy (we only restore `TE: trailers`), on
//! responses here.
//!
//! The rules are written once, on raw names and values ([`is_hop_by_hop`],
//! [`forwarded_for`], [`wants_trailers`]), and applied by both request paths:
//! to Pingora's header maps below, and to heads on the wire by the HTTP/1
//! forwarder ([`crate::h1::head`]).

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, TE};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::policy::HeaderRules;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// Dropped from responses (besides those `Connection` names).
pub const RESPONSE_HOP_BY_HOP: [&str; 4] =
    ["connection", "keep-alive", "proxy-connection", "upgrade"];
/// Dropped from requests, as Pingora's standard upstream policy does.
pub const REQUEST_HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// The hop-by-hop rule: `name` is one of `fixed`, or a token of one of the
/// message's `Connection` values.
#[inline]
pub fn is_hop_by_hop(name: &[u8], fixed: &[&str], connection: &[&[u8]]) -> bool {
    fixed
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
        || connection.iter().any(|v| has_token(v, name))
}

/// A `Connection` value that may name headers: anything but the usual
/// plain `keep-alive` or `close`, which name none (this saves a scan of
/// every header line against it).
pub fn nominates(value: &[u8]) -> bool {
    !(value.eq_ignore_ascii_case(b"keep-alive") || value.eq_ignore_ascii_case(b"close"))
}

/// `value` is a comma-separated list with `token` in it (any case).
#[inline]
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    // The usual value is the one token (`Connection: keep-alive`).
    if value.eq_ignore_ascii_case(token) {
        return true;
    }
    if !value.contains(&b',') {
        return value.trim_ascii().eq_ignore_ascii_case(token);
    }
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The `X-Forwarded-For` value for the backend: the chain the client sent
/// (each value that is visible ASCII), then the peer: "a, b, peer".
pub fn forwarded_for<'v>(chain: impl IntoIterator<Item = &'v [u8]>, peer: IpAddr) -> Vec<u8> {
    let mut value = Vec::new();
    for v in chain.into_iter().filter(|v| visible_ascii(v)) {
        value.extend_from_slice(v);
        value.extend_from_slice(b", ");
    }
    write_ip(&mut value, peer);
    value
}

/// `ip` as text, IPv4 without the formatting machinery (this runs per
/// request).
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.extend_from_slice(&text[..len]);
        }
        IpAddr::V6(_) => out.extend_from_slice(ip.to_string().as_bytes()),
    }
}

/// The client's `TE` values name `trailers`, which RFC 9110 §10.1.4 lets
/// through (the rest of `TE` is hop-by-hop).
pub fn wants_trailers<'v>(te: impl IntoIterator<Item = &'v [u8]>) -> bool {
    te.into_iter().any(|v| has_token(v, b"trailers"))
}

/// What `http::HeaderValue::to_str` accepts.
pub fn visible_ascii(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (32..127).contains(&b))
}

/// Sets the forwarding headers on the request to the backend. (The Host
/// value is shared and the proto is static: only X-Forwarded-For is built.)
pub fn set_forwarding(
    req: &mut RequestHeader,
    client_ip: Option<IpAddr>,
    proto: &'static str,
) -> pingora::Result<()> {
    let host = req.headers.get(HOST).cloned();
    if let Some(ip) = client_ip {
        let chain = req.headers.get_all(X_FORWARDED_FOR).iter();
        let value = forwarded_for(chain.map(HeaderValue::as_bytes), ip);
        let value = HeaderValue::from_bytes(&value).map_err(|_| {
            pingora::Error::explain(pingora::ErrorType::InvalidHTTPHeader, "x-forwarded-for")
        })?;
        req.insert_header(X_FORWARDED_FOR, value)?;
    }
    req.insert_header(X_FORWARDED_PROTO, HeaderValue::from_static(proto))?;
    match host {
        Some(h) => req.insert_header(X_FORWARDED_HOST, h)?,
        None => {
            req.remove_header(X_FORWARDED_HOST);
        }
    }
    Ok(())
}

/// Names of the hop-by-hop headers present in `headers`, found in one pass
/// over the names, so the usual request, which has none, costs no lookups.
fn hop_by_hop(headers: &http::HeaderMap, fixed: &[&str]) -> Vec<HeaderName> {
    let connection: Vec<&[u8]> = headers
        .get_all(CONNECTION)
        .iter()
        .map(HeaderValue::as_bytes)
        .filter(|v| nominates(v))
        .collect();
    let mut names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_hop_by_hop(k.as_str().as_bytes(), fixed, &connection))
        .cloned()
        .collect();
    names.dedup();
    names
}

/// Pingora's standard upstream policy already drops the request's hop-by-hop
/// headers (those named in `Connection`, `Keep-Alive`, `Proxy-Connection`,
/// `TE`, `Upgrade` except for WebSocket) before our filter runs. It drops `TE`
/// whole; RFC 9110 §10.1.4 lets `TE: trailers` through, so put that back when
/// the client sent it.
pub fn restore_te_trailers(
    client: &RequestHeader,
    upstream: &mut RequestHeader,
) -> pingora::Result<()> {
    if wants_trailers(client.headers.get_all(TE).iter().map(HeaderValue::as_bytes)) {
        upstream.insert_header(TE, "trailers")?;
    }
    Ok(())
}

/// The response head as an HTTP/1 client gets it, as the forwarder writes
/// it: the status line is ours (HTTP/1.1 whatever the backend spoke, RFC
/// 9110 §6.2; a missing reason phrase is the usual one), and an HTTP/1.0
/// client (`req`), which cannot read chunked encoding (RFC 9112 §6.1), gets
/// no `Transfer-Encoding`: the body is sent as it is decoded and ends when
/// the connection closes.
pub fn fit_http1_client(req: http::Version, resp: &mut ResponseHeader) -> pingora::Result<()> {
    resp.set_version(http::Version::HTTP_11);
    if resp.get_reason_phrase() == Some("") {
        resp.set_reason_phrase(None)?;
    }
    if req == http::Version::HTTP_10 {
        resp.remove_header(&http::header::TRANSFER_ENCODING);
    }
    Ok(())
}

/// The response's body ends only when the backend closes: it has a
/// `Transfer-Encoding` whose last coding is not chunked (RFC 9112 §6.3).
pub fn ends_at_close(resp: &ResponseHeader) -> bool {
    let mut codings = resp.headers.get_all(http::header::TRANSFER_ENCODING).iter();
    codings
        .next_back()
        .is_some_and(|v| !last_coding_is_chunked(v.as_bytes()))
}

/// A `Transfer-Encoding` value whose last coding is `chunked`.
pub fn last_coding_is_chunked(v: &[u8]) -> bool {
    v.rsplit(|b| *b == b',')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Drops hop-by-hop headers from the backend's response, except on a 101
/// (the tunnel needs `Connection`/`Upgrade`).
pub fn strip_response_hop_by_hop(resp: &mut ResponseHeader) {
    if resp.status == http::StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    for name in hop_by_hop(&resp.headers, &RESPONSE_HOP_BY_HOP) {
        resp.remove_header(&name);
    }
}

/// What the client's response gains from its request (SPEC): the sticky
/// cookie, appended, and the `RateLimit-*` headers, replacing any the
/// backend sent. Both paths add exactly these.
#[derive(Default)]
pub struct ResponseAdditions {
    set_cookie: Option<HeaderValue>,
    rate: Option<[HeaderValue; 2]>,
    /// The route's `response_headers`.
    rules: Option<Arc<HeaderRules>>,
    request_id: Option<(http::HeaderName, HeaderValue)>,
    /// The request's compression offer, on a `compress` route: for the
    /// forwarder's head writer ([`crate::h1::head::response`]).
    pub compress: Option<crate::compress::Offer>,
}

const RATE_LIMIT: [&str; 2] = ["RateLimit-Limit", "RateLimit-Remaining"];

impl ResponseAdditions {
    /// Takes the cookie and the rate decision out of `ctx`, with the
    /// route's response header rules and the request id.
    pub fn take(ctx: &mut super::RequestCtx) -> pingora::Result<Self> {
        let invalid =
            |_| pingora::Error::explain(pingora::ErrorType::InvalidHTTPHeader, "response addition");
        let set_cookie = match ctx.set_cookie.take() {
            Some(c) => Some(HeaderValue::try_from(c).map_err(invalid)?),
            None => None,
        };
        let rate = ctx
            .rate
            .as_ref()
            .map(|d| [HeaderValue::from(d.limit), HeaderValue::from(d.remaining)]);
        let rules = ctx
            .route
            .as_ref()
            .and_then(|r| r.policy.response_headers.clone());
        Ok(Self {
            set_cookie,
            rate,
            rules,
            request_id: ctx.request_id.clone(),
            compress: None,
        })
    }

    /// Whether any backend line may give way ([`Self::replaces`]): most
    /// responses have nothing to add.
    #[inline]
    pub fn replaces_any(&self) -> bool {
        self.rate.is_some() || self.request_id.is_some() || self.rules.is_some()
    }

    /// Calls `f` with each added header, in order: the route's rules, then
    /// ours.
    #[inline]
    pub fn each_field(&self, mut f: impl FnMut(&[u8], &[u8])) {
        if let Some(rules) = &self.rules {
            for (name, value) in rules.lines() {
                f(name.as_str().as_bytes(), value.as_bytes());
            }
        }
        if let Some(c) = &self.set_cookie {
            f(b"Set-Cookie", c.as_bytes());
        }
        if let Some(rate) = &self.rate {
            for (name, value) in RATE_LIMIT.into_iter().zip(rate) {
                f(name.as_bytes(), value.as_bytes());
            }
        }
        if let Some((name, value)) = &self.request_id {
            f(name.as_str().as_bytes(), value.as_bytes());
        }
    }

    /// The backend's header `name` gives way: to one of ours, or to the
    /// route's rules (`set`, `remove`).
    pub fn replaces(&self, name: &[u8]) -> bool {
        let ours = |r: &str| name.eq_ignore_ascii_case(r.as_bytes());
        (self.rate.is_some() && RATE_LIMIT.iter().any(|r| ours(r)))
            || self
                .request_id
                .as_ref()
                .is_some_and(|(n, _)| ours(n.as_str()))
            || self.rules.as_ref().is_some_and(|r| r.drops(name))
    }

    /// Adds them to a response head on the Pingora path.
    pub fn apply(&self, resp: &mut ResponseHeader) -> pingora::Result<()> {
        if let Some(rules) = &self.rules {
            rules.apply_to(resp)?;
        }
        if let Some(c) = &self.set_cookie {
            resp.append_header("Set-Cookie", c)?;
        }
        if let Some(rate) = &self.rate {
            for (name, value) in RATE_LIMIT.into_iter().zip(rate) {
                resp.insert_header(name, value)?;
            }
        }
        if let Some((name, value)) = &self.request_id {
            resp.insert_header(name.clone(), value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn appends_to_forwarded_for_and_replaces_proto_and_host() {
        let mut r = req(&[
            ("Host", "app.example"),
            ("X-Forwarded-For", "1.1.1.1"),
            ("X-Forwarded-For", "2.2.2.2"),
            ("X-Forwarded-Proto", "gopher"),
            ("X-Forwarded-Host", "evil.example"),
        ]);
        set_forwarding(&mut r, Some("10.0.0.9".parse().unwrap()), "http").unwrap();
        assert_eq!(r.headers["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 10.0.0.9");
        assert_eq!(r.headers.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(r.headers["x-forwarded-proto"], "http");
        assert_eq!(r.headers["x-forwarded-host"], "app.example");
        assert_eq!(r.headers["host"], "app.example");
    }

    #[test]
    fn ip_addresses_are_written_as_text() {
        for ip in ["0.0.0.0", "1.20.255.9", "100.10.1.0", "::1", "2001:db8::7"] {
            let mut out = Vec::new();
            write_ip(&mut out, ip.parse().unwrap());
            assert_eq!(out, ip.as_bytes());
        }
    }

    #[test]
    fn te_trailers_survives_and_other_te_does_not() {
        let client = req(&[("TE", "gzip, trailers")]);
        let mut up = req(&[]);
        restore_te_trailers(&client, &mut up).unwrap();
        assert_eq!(up.headers["te"], "trailers");
        let client = req(&[("TE", "gzip")]);
        let mut up = req(&[]);
        restore_te_trailers(&client, &mut up).unwrap();
        assert!(!up.headers.contains_key("te"));
    }

    #[test]
    fn drops_hop_by_hop_response_headers() {
        let mut r = ResponseHeader::build(200, None).unwrap();
        for (k, v) in [
            ("Connection", "X-Private"),
            ("X-Private", "1"),
            ("Keep-Alive", "5"),
            ("X-Kept", "1"),
        ] {
            r.append_header(k, v).unwrap();
        }
        strip_response_hop_by_hop(&mut r);
        assert!(!r.headers.contains_key("x-private"));
        assert!(!r.headers.contains_key("keep-alive"));
        assert!(!r.headers.contains_key("connection"));
        assert_eq!(r.headers["x-kept"], "1");
    }
}
