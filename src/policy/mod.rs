//! Route policies: what a request must pass after routing and before a
//! backend is chosen, decided here once for every engine (the HTTP/1
//! forwarder, HTTP/2 streams and Pingora's path only call [`admit`] and
//! carry out its answer). The order (SPEC "Route policies"):
//!
//! ```text
//! max_uri_bytes (while the head is read: 414)
//!   → routing (404)
//!   → redirect (its status + Location; no backend contacted)
//!   → allow / deny on the client IP (403)
//!   → max_body_bytes (413 when Content-Length says so; a streamed body is
//!     cut at the limit: body_limit)
//!   → max_inflight (503 + Retry-After: 1; the slot is held to the end)
//!   → rate limit (429) → backend choice; `timeout` (504) covers every try
//!     up to the response head
//! ```
//!
//! Header rules (`request_headers`, `response_headers`) and the request id
//! are applied by the engines where heads are written, from the same types
//! ([`header_rules`], [`request_id`]).

pub mod body_limit;
pub mod cidr;
pub mod client_ip;
pub mod header_rules;
pub mod inflight;
pub mod redirect;
pub mod request_id;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::HOST;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;

pub use cidr::Cidr;
pub use header_rules::HeaderRules;
pub use inflight::{InflightLimit, Slot};
pub use redirect::Redirect;
pub use request_id::RequestIdSettings;

/// A route's policies, as it runs.
#[derive(Debug, Default)]
pub struct RoutePolicy {
    pub redirect: Option<Redirect>,
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
    /// 0 = no limit.
    pub max_body_bytes: u64,
    pub inflight: Option<InflightLimit>,
    pub timeout: Option<Duration>,
    pub request_headers: Option<HeaderRules>,
    pub response_headers: Option<Arc<HeaderRules>>,
}

/// An answer switchyard makes instead of forwarding.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn plain(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
        }
    }
}

/// What a request to `policy`'s route must pass before its backend is
/// chosen. `scheme` is the listener's; `client_ip` the request's (see
/// [`client_ip`]); `body_len` its announced body length (`None`: it
/// streams without one). `Ok` carries the request's `max_inflight` slot.
pub fn admit(
    policy: &RoutePolicy,
    req: &RequestHeader,
    scheme: &str,
    client_ip: Option<IpAddr>,
    body_len: Option<u64>,
) -> Result<Option<Slot>, Refusal> {
    if let Some(redirect) = &policy.redirect {
        let authority = req
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let pq = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let location = redirect.location(scheme, authority, pq);
        return Err(Refusal {
            status: redirect.status,
            headers: vec![("Location", location)],
        });
    }
    if !policy.allow.is_empty() || !policy.deny.is_empty() {
        let allowed = match client_ip {
            Some(ip) => {
                (policy.allow.is_empty() || Cidr::any_contains(&policy.allow, ip))
                    && !Cidr::any_contains(&policy.deny, ip)
            }
            // No address to judge (not a TCP client): only a deny list
            // lets it through.
            None => policy.allow.is_empty(),
        };
        if !allowed {
            return Err(Refusal::plain(403));
        }
    }
    if policy.max_body_bytes > 0 && body_len.is_some_and(|n| n > policy.max_body_bytes) {
        return Err(Refusal::plain(413));
    }
    match &policy.inflight {
        None => Ok(None),
        Some(limit) => match limit.try_acquire() {
            Some(slot) => Ok(Some(slot)),
            None => Err(Refusal {
                status: 503,
                headers: vec![("Retry-After", "1".to_string())],
            }),
        },
    }
}

/// The request's id, when the server gives requests one: the client's own
/// when trusted ([`RequestIdSettings::id_for`]), else a new one.
pub fn request_id(
    settings: Option<&RequestIdSettings>,
    req: &RequestHeader,
) -> Option<(HeaderName, HeaderValue)> {
    let settings = settings?;
    let id = settings.id_for(req.headers.get(&settings.header));
    Some((settings.header.clone(), id))
}

/// The client IP of a request that came from `peer` (see [`client_ip`]).
pub fn client_ip_of(peer: Option<IpAddr>, trusted: &[Cidr], req: &RequestHeader) -> Option<IpAddr> {
    if trusted.is_empty() {
        return peer;
    }
    let chain = req
        .headers
        .get_all(crate::proxy::headers::X_FORWARDED_FOR)
        .iter()
        .map(|v| v.as_bytes());
    client_ip::resolve(peer, trusted, chain)
}

/// The backend's header lines (`Name: value\r\n` each) with the request
/// id set and the route's `request_headers` rules applied; borrowed as
/// they are when there is neither.
pub fn request_fields<'f>(
    fields: &'f [u8],
    policy: &RoutePolicy,
    id: Option<&(HeaderName, HeaderValue)>,
) -> Cow<'f, [u8]> {
    if id.is_none() && policy.request_headers.is_none() {
        return Cow::Borrowed(fields);
    }
    // One pass: the id replaces the client's lines of its name, then the
    // rules act on everything (the id included).
    let rules = policy.request_headers.as_ref();
    let drops = |n: &[u8]| {
        let id_named = id.is_some_and(|(name, _)| n.eq_ignore_ascii_case(name.as_str().as_bytes()));
        let ruled = rules.is_some_and(|r| r.drops(n));
        id_named || ruled
    };
    let id_line = id
        .filter(|(name, _)| !rules.is_some_and(|r| r.drops(name.as_str().as_bytes())))
        .map(|(name, value)| (name, value));
    let rule_lines = rules.into_iter().flat_map(|r| r.lines());
    let mut out = fields.to_vec();
    header_rules::rewrite_fields(&mut out, drops, id_line.into_iter().chain(rule_lines));
    Cow::Owned(out)
}

/// The same on a request head (Pingora's path).
pub fn apply_to_request(
    req: &mut RequestHeader,
    policy: &RoutePolicy,
    id: Option<&(HeaderName, HeaderValue)>,
) -> pingora::Result<()> {
    if let Some((name, value)) = id {
        req.insert_header(name.clone(), value.clone())?;
    }
    match &policy.request_headers {
        Some(rules) => rules.apply_to(req),
        None => Ok(()),
    }
}

/// The announced body length of a request head (Pingora's path): 0 when it
/// has neither `Content-Length` nor `Transfer-Encoding`, `None` when its
/// length is not known up front.
pub fn announced_body_len(req: &RequestHeader) -> Option<u64> {
    if req.headers.contains_key(http::header::TRANSFER_ENCODING) {
        return None;
    }
    match req.headers.get(http::header::CONTENT_LENGTH) {
        Some(v) => v.to_str().ok().and_then(|s| s.trim().parse().ok()),
        None => Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, target: &str) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        r.insert_header("Host", host).unwrap();
        r
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn redirect_comes_first_and_names_the_new_url() {
        let policy = RoutePolicy {
            redirect: Some(Redirect {
                scheme: Some("https"),
                host: None,
                port: None,
                path: None,
                strip_query: false,
                status: 308,
            }),
            deny: vec!["0.0.0.0/0".parse().unwrap()],
            ..Default::default()
        };
        let refused = admit(
            &policy,
            &req("a.example", "/x?y"),
            "http",
            ip("1.2.3.4"),
            Some(0),
        );
        assert_eq!(
            refused.unwrap_err(),
            Refusal {
                status: 308,
                headers: vec![("Location", "https://a.example/x?y".into())]
            }
        );
    }

    #[test]
    fn allow_then_deny_then_body_then_inflight() {
        let policy = RoutePolicy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            deny: vec!["10.1.2.3".parse().unwrap()],
            max_body_bytes: 100,
            inflight: Some(InflightLimit::new(1)),
            ..Default::default()
        };
        let r = req("a", "/");
        let status =
            |ip_s: &str, len| admit(&policy, &r, "http", ip(ip_s), len).map_err(|e| e.status);
        assert_eq!(status("192.0.2.1", Some(0)).unwrap_err(), 403);
        assert_eq!(status("10.1.2.3", Some(0)).unwrap_err(), 403);
        assert_eq!(status("10.0.0.5", Some(101)).unwrap_err(), 413);
        let slot = status("10.0.0.5", Some(100)).unwrap();
        assert!(slot.is_some());
        let refused = admit(&policy, &r, "http", ip("10.0.0.5"), None).unwrap_err();
        assert_eq!(refused.status, 503);
        assert_eq!(refused.headers, [("Retry-After", "1".to_string())]);
        drop(slot);
        assert!(status("10.0.0.5", None).is_ok());
    }

    #[test]
    fn the_backend_gets_the_id_then_the_rules_in_one_pass() {
        let rules = HeaderRules {
            set: vec![(
                HeaderName::from_static("x-env"),
                HeaderValue::from_static("prod"),
            )],
            add: Vec::new(),
            remove: vec![HeaderName::from_static("x-debug")],
        };
        let policy = RoutePolicy {
            request_headers: Some(rules),
            ..Default::default()
        };
        let id = (
            HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("abc"),
        );
        let fields = b"Host: a\r\nX-Request-Id: theirs\r\nX-Debug: 1\r\nX-Env: dev\r\n";
        let out = request_fields(fields, &policy, Some(&id));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "Host: a\r\nx-request-id: abc\r\nx-env: prod\r\n"
        );
        // A rule that removes the id's header wins over it.
        let policy = RoutePolicy {
            request_headers: Some(HeaderRules {
                remove: vec![HeaderName::from_static("x-request-id")],
                ..Default::default()
            }),
            ..Default::default()
        };
        let out = request_fields(fields, &policy, Some(&id));
        assert!(!std::str::from_utf8(&out).unwrap().contains("request-id"));
        // Nothing to do: the fields as they are, not copied.
        let plain = RoutePolicy::default();
        assert!(matches!(
            request_fields(fields, &plain, None),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn body_lengths_are_read_from_the_head() {
        let mut r = req("a", "/");
        assert_eq!(announced_body_len(&r), Some(0));
        r.insert_header("Content-Length", "12").unwrap();
        assert_eq!(announced_body_len(&r), Some(12));
        r.insert_header("Transfer-Encoding", "chunked").unwrap();
        assert_eq!(announced_body_len(&r), None);
    }
}
