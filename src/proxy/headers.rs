//! Header rewriting between client and backend (SPEC "Headers to backends").
//!
//! To the backend: the client's Host kept; `X-Forwarded-For` gets the socket
//! peer appended to any chain the client sent; `X-Forwarded-Proto` and
//! `X-Forwarded-Host` are set by us, replacing client values. Hop-by-hop
//! headers (RFC 9110 §7.6.1) are dropped in both directions: on requests by
//! Pingora's standard upstream policy (we only restore `TE: trailers`), on
//! responses here.

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, TE};
use pingora::http::{RequestHeader, ResponseHeader};

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// Sets the forwarding headers on the request to the backend. (The Host
/// value is shared and the proto is static: only X-Forwarded-For is built.)
pub fn set_forwarding(
    req: &mut RequestHeader,
    client_ip: Option<std::net::IpAddr>,
    proto: &'static str,
) -> pingora::Result<()> {
    let host = req.headers.get(HOST).cloned();
    if let Some(ip) = client_ip {
        // Any (visible-ASCII) chain the client sent, then the peer: "a, b, peer".
        let mut value = Vec::new();
        let chain = req.headers.get_all(X_FORWARDED_FOR).iter();
        for v in chain.filter(|v| v.to_str().is_ok()) {
            value.extend_from_slice(v.as_bytes());
            value.extend_from_slice(b", ");
        }
        value.extend_from_slice(ip.to_string().as_bytes());
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

/// Names of the hop-by-hop headers present in `headers`: those in `fixed`
/// and those listed in `Connection`. Found in one pass over the names, so
/// the usual request, which has none, costs no map lookups.
fn hop_by_hop(headers: &http::HeaderMap, fixed: &[&str]) -> Vec<HeaderName> {
    let nominated: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| fixed.contains(&k.as_str()) || nominated.iter().any(|n| n == k.as_str()))
        .cloned()
        .collect();
    names.dedup();
    names
}

/// Dropped from responses (besides those `Connection` names).
const RESPONSE_HOP_BY_HOP: [&str; 4] = ["connection", "keep-alive", "proxy-connection", "upgrade"];
/// Dropped from requests, as Pingora's standard upstream policy does.
const REQUEST_HOP_BY_HOP: [&str; 10] = [
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

/// Drops the request's hop-by-hop headers on the HTTP/1 path ([`crate::h1`]),
/// as Pingora's standard upstream policy does on its own: those named in
/// `Connection`, then `Connection`, `Keep-Alive`, `Proxy-Connection`,
/// `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade` and `HTTP2-Settings`.
pub fn strip_request_hop_by_hop(req: &mut RequestHeader) {
    for name in hop_by_hop(&req.headers, &REQUEST_HOP_BY_HOP) {
        req.remove_header(&name);
    }
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
    let wants_trailers = client
        .headers
        .get_all(TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    if wants_trailers {
        upstream.insert_header(TE, "trailers")?;
    }
    Ok(())
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
    fn drops_hop_by_hop_request_headers() {
        let mut r = req(&[
            ("Host", "a"),
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "1"),
            ("Keep-Alive", "5"),
            ("TE", "trailers"),
            ("Proxy-Authorization", "Basic x"),
            ("X-Kept", "1"),
        ]);
        strip_request_hop_by_hop(&mut r);
        let names: Vec<_> = r.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["host", "x-kept"]);
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
