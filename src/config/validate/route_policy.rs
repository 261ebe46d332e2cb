//! Route policies and the server/listener keys that go with them:
//! `redirect`, `request_headers` / `response_headers`, `allow` / `deny` /
//! `trusted_proxies`, `server.request_id`.

use std::num::NonZeroUsize;

use http::{HeaderName, HeaderValue};

use super::super::model::*;
use super::super::path::YamlPath;
use super::super::problem::Problems;
use super::super::raw::*;
use super::nonzero_duration;
use crate::policy::header_rules::OWNED;
use crate::policy::redirect::STATUSES;

pub(super) fn redirect(r: RawRedirect, path: &YamlPath, p: &mut Problems) -> Option<Redirect> {
    let scheme = match r.scheme.as_deref() {
        None => None,
        Some("http") => Some("http"),
        Some("https") => Some("https"),
        Some(s) => {
            p.error(&path.key("scheme"), format!("unknown scheme \"{s}\""))
                .hint("valid schemes: http, https");
            None
        }
    };
    let host = r.host.filter(|h| {
        let ok = !h.is_empty() && h.parse::<http::uri::Authority>().is_ok() && !h.contains([':', '@']);
        if !ok {
            p.error(&path.key("host"), format!("\"{h}\" is not a host name"))
                .hint("write a name without scheme or port, e.g. www.example.com; the port has its own key");
        }
        ok
    });
    let port = match r.port {
        None => None,
        Some(n) if (1..=65535).contains(&n) => Some(n as u16),
        Some(n) => {
            p.error(&path.key("port"), format!("{n} is not a port (1-65535)"));
            None
        }
    };
    let redirect_path = r.path.filter(|s| {
        let ok = s.starts_with('/') && s.parse::<http::uri::PathAndQuery>().is_ok() && !s.contains(['?', '#']);
        if !ok {
            p.error(&path.key("path"), format!("\"{s}\" is not a path"))
                .hint("write a path starting with /, without query or fragment (the request's query is kept unless strip_query)");
        }
        ok
    });
    let status = match r.status {
        None => 308,
        Some(s) if s <= 999 && STATUSES.contains(&(s as u16)) => s as u16,
        Some(s) => {
            p.error(&path.key("status"), format!("{s} is not a redirect status"))
                .hint("valid statuses: 301, 302, 303, 307, 308");
            308
        }
    };
    Some(Redirect {
        scheme,
        host,
        port,
        path: redirect_path,
        strip_query: r.strip_query.unwrap_or(false),
        status,
    })
}

pub(super) fn header_rules(
    r: RawHeaderRules,
    path: &YamlPath,
    p: &mut Problems,
) -> Option<HeaderRules> {
    let mut rules = HeaderRules::default();
    for (key, list) in [("set", r.set), ("add", r.add)] {
        for (name, value) in list.unwrap_or_default() {
            let at = path.key(key).key(&name);
            let name = header_name(&name, &at, p);
            let text = value.to_text();
            let value = match HeaderValue::from_str(&text) {
                Ok(v) => Some(v),
                Err(_) => {
                    p.error(&at, "not a valid header value")
                        .hint("visible ASCII characters and spaces only, no line breaks");
                    None
                }
            };
            if let (Some(n), Some(v)) = (name, value) {
                match key {
                    "set" => rules.set.push((n, v)),
                    _ => rules.add.push((n, v)),
                }
            }
        }
    }
    for (i, name) in r.remove.unwrap_or_default().iter().enumerate() {
        if let Some(n) = header_name(name, &path.key("remove").index(i), p) {
            rules.remove.push(n);
        }
    }
    Some(rules)
}

/// A header name a rule may touch.
fn header_name(name: &str, path: &YamlPath, p: &mut Problems) -> Option<HeaderName> {
    let Ok(parsed) = HeaderName::from_bytes(name.as_bytes()) else {
        p.error(path, format!("\"{name}\" is not a header name"))
            .hint("use letters, digits and - (a token, RFC 9110 §5.1)");
        return None;
    };
    if OWNED.contains(&parsed.as_str()) {
        p.error(path, format!("{name} is switchyard's to set"))
            .hint("Host, Content-Length, Transfer-Encoding and Connection keep routing and framing right; rules cannot change them");
        return None;
    }
    Some(parsed)
}

/// A list of address ranges (`allow`, `deny`, `trusted_proxies`).
pub(super) fn cidrs(list: Option<Vec<String>>, path: &YamlPath, p: &mut Problems) -> Vec<Cidr> {
    let mut out = Vec::new();
    for (i, s) in list.unwrap_or_default().iter().enumerate() {
        match s.parse::<Cidr>() {
            Ok(c) => out.push(c),
            Err(e) => {
                p.error(&path.index(i), e.to_string()).hint(
                    "write an address range like 10.0.0.0/8 or 2001:db8::/32, or one address",
                );
            }
        }
    }
    out
}

pub(super) fn request_id(
    r: RawRequestId,
    path: &YamlPath,
    p: &mut Problems,
) -> Option<RequestIdSettings> {
    let name = r.header.unwrap_or_else(|| "X-Request-Id".to_string());
    let header = header_name(&name, &path.key("header"), p)?;
    Some(RequestIdSettings {
        header,
        trust_incoming: r.trust_incoming.unwrap_or(false),
    })
}

pub(super) fn max_inflight(
    n: Option<u64>,
    path: &YamlPath,
    p: &mut Problems,
) -> Option<NonZeroUsize> {
    match n {
        None => None,
        Some(0) => {
            p.error(path, "must be at least 1")
                .hint("leave it out for no limit");
            None
        }
        Some(n) => NonZeroUsize::new(n as usize),
    }
}

pub(super) fn timeout(
    t: Option<&String>,
    path: &YamlPath,
    p: &mut Problems,
) -> Option<std::time::Duration> {
    t.map(|t| nonzero_duration(Some(t), std::time::Duration::from_secs(30), path, p))
}
