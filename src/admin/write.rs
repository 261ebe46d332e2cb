//! The admin write API: runtime changes to backends without editing the
//! config file.
//!
//! ```text
//! POST /upstreams/{upstream}/backends/{addr}/drain     weight 0: sticky clients still served
//! POST /upstreams/{upstream}/backends/{addr}/disable   no requests at all, as if down
//! POST /upstreams/{upstream}/backends/{addr}/enable    back to the configured weight
//! PUT  /upstreams/{upstream}/backends/{addr}/weight    body: an integer 0-1000
//! ```
//!
//! Order of checks: no `admin.token_file` configured → 403; missing or wrong
//! `Authorization: Bearer` → 401 (compared in constant time, never logged);
//! unknown path → 404; wrong method → 405; unknown upstream or backend →
//! 404; bad body → 400. `{addr}` is the configured `addr`, as is or
//! percent-encoded (`%5B::1%5D:8080`).

use http::{Method, StatusCode};
use pingora::protocols::http::ServerSession;

use crate::config::{AdminToken, MAX_WEIGHT};
use crate::live::Live;
use crate::upstream::admin_state::Change;

/// The largest body a write request may carry (a weight is a few digits).
const MAX_BODY: usize = 64;

/// What the API answers: a status and a one-line text.
pub type Answer = (StatusCode, String);

/// A backend write request's target and action, from its path.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub upstream: String,
    pub addr: String,
    pub action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Drain,
    Disable,
    Enable,
    Weight,
}

impl Action {
    fn method(self) -> Method {
        match self {
            Action::Weight => Method::PUT,
            _ => Method::POST,
        }
    }
}

/// Whether `path` belongs to the write API (so other methods than GET are
/// meant for it).
pub fn is_write_path(path: &str) -> bool {
    path.starts_with("/upstreams/")
}

/// Whether the request carries the write API's token: `Err` with the
/// answer (403 without `token_file`, 401 for a missing or wrong token).
pub fn authorize(session: &ServerSession, token: Option<&AdminToken>) -> Result<(), Answer> {
    let Some(token) = token else {
        return Err(text(
            StatusCode::FORBIDDEN,
            "the write API is off: set admin.token_file",
        ));
    };
    let presented = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    if !presented.is_some_and(|p| constant_time_eq(p, token.0.as_bytes())) {
        return Err(text(
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization: Bearer token",
        ));
    }
    Ok(())
}

/// Answers one write request on the upstreams `live` serves now.
pub async fn handle(session: &mut ServerSession, live: &Live) -> Answer {
    let token = live
        .current()
        .config
        .admin
        .as_ref()
        .and_then(|a| a.token.clone());
    if let Err(answer) = authorize(session, token.as_ref()) {
        return answer;
    }
    let req = session.req_header();
    let Some(target) = parse_path(req.uri.path()) else {
        return text(
            StatusCode::NOT_FOUND,
            "try POST /upstreams/{upstream}/backends/{addr}/drain|disable|enable or PUT .../weight",
        );
    };
    if req.method != target.action.method() {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("use {}", target.action.method()),
        );
    }
    let change = match target.action {
        Action::Drain => Change::Drain,
        Action::Disable => Change::Disable,
        Action::Enable => Change::Enable,
        Action::Weight => match read_body(session).await.as_deref().and_then(parse_weight) {
            Some(w) => Change::Weight(w),
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("the body must be an integer 0-{MAX_WEIGHT}"),
                )
            }
        },
    };
    // No reload in between: the change lands on the upstream that serves.
    let _one = live.writing();
    let generation = live.current();
    let Some(upstream) = generation.upstreams.get(&target.upstream) else {
        return text(
            StatusCode::NOT_FOUND,
            &format!("no upstream \"{}\"", target.upstream),
        );
    };
    let Some(index) = upstream.backend_index(&target.addr) else {
        return text(
            StatusCode::NOT_FOUND,
            &format!(
                "upstream \"{}\" has no backend \"{}\" (use its configured addr)",
                target.upstream, target.addr
            ),
        );
    };
    match upstream.apply(index, change) {
        Ok(o) => text(
            StatusCode::OK,
            &format!(
                "{} {}: {} weight {}",
                target.upstream,
                target.addr,
                o.state.name(),
                o.effective_weight()
            ),
        ),
        Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// The credentials of an `Authorization: Bearer <token>` value (the scheme
/// is case-insensitive, RFC 9110).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

fn text(status: StatusCode, msg: &str) -> Answer {
    (status, format!("{msg}\n"))
}

/// The request body, if it fits in [`MAX_BODY`] and arrives whole.
async fn read_body(session: &mut ServerSession) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await.ok()? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return None;
        }
    }
    Some(body)
}

/// A weight body: an integer 0-1000, surrounding whitespace allowed.
pub fn parse_weight(body: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(body).ok()?.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let w: u64 = s.parse().ok()?;
    (w <= MAX_WEIGHT).then_some(w as u16)
}

/// `/upstreams/{upstream}/backends/{addr}/{action}`, each segment
/// percent-decoded. Segments are split before decoding, so `%2F` cannot
/// forge one.
pub fn parse_path(path: &str) -> Option<Target> {
    let mut parts = path.strip_prefix('/')?.split('/');
    let (Some("upstreams"), Some(upstream), Some("backends"), Some(addr), Some(action), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let action = match action {
        "drain" => Action::Drain,
        "disable" => Action::Disable,
        "enable" => Action::Enable,
        "weight" => Action::Weight,
        _ => return None,
    };
    let (upstream, addr) = (percent_decode(upstream)?, percent_decode(addr)?);
    if upstream.is_empty() || addr.is_empty() {
        return None;
    }
    Some(Target {
        upstream,
        addr,
        action,
    })
}

/// `%XX` escapes decoded; `None` for a broken escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Equal contents, in time that depends only on the lengths: every byte is
/// compared, whatever the first difference, so a timing probe learns nothing
/// about how much of a guessed token was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret "));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(
            !constant_time_eq(b"\0", b""),
            "padding must not make lengths equal"
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abcdef"), None);
        assert_eq!(bearer(b"Bearer"), None);
    }

    fn target(upstream: &str, addr: &str, action: Action) -> Option<Target> {
        Some(Target {
            upstream: upstream.into(),
            addr: addr.into(),
            action,
        })
    }

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path("/upstreams/api/backends/10.0.0.5:8080/drain"),
            target("api", "10.0.0.5:8080", Action::Drain)
        );
        assert_eq!(
            parse_path("/upstreams/api/backends/[::1]:8080/weight"),
            target("api", "[::1]:8080", Action::Weight)
        );
        assert_eq!(
            parse_path("/upstreams/a%20b/backends/%5B%3A%3A1%5D%3A8080/enable"),
            target("a b", "[::1]:8080", Action::Enable)
        );
        assert_eq!(
            parse_path("/upstreams/api/backends/h:1/disable"),
            target("api", "h:1", Action::Disable)
        );
    }

    #[test]
    fn rejects_other_paths() {
        for p in [
            "/upstreams/api/backends/h:1/explode",
            "/upstreams/api/backends/h:1/drain/",
            "/upstreams/api/backends/h:1",
            "/upstreams/api/servers/h:1/drain",
            "/upstreams//backends/h:1/drain",
            "/upstreams/api/backends//drain",
            "/upstreams/api/backends/%zz/drain",
            "/upstreams/api/backends/%4/drain",
            "/upstreams/api/backends/%ff/drain",
            "upstreams/api/backends/h:1/drain",
        ] {
            assert_eq!(parse_path(p), None, "{p}");
        }
    }

    #[test]
    fn escaped_slash_stays_in_its_segment() {
        assert_eq!(
            parse_path("/upstreams/a%2Fb/backends/h:1/drain"),
            target("a/b", "h:1", Action::Drain)
        );
    }

    #[test]
    fn parses_weights() {
        assert_eq!(parse_weight(b"0"), Some(0));
        assert_eq!(parse_weight(b"1000\n"), Some(1000));
        assert_eq!(parse_weight(b" 7 "), Some(7));
        for bad in [
            &b""[..],
            b"1001",
            b"-1",
            b"+5",
            b"1.5",
            b"ten",
            b"99999999999999999999",
            b"\xff",
        ] {
            assert_eq!(parse_weight(bad), None, "{bad:?}");
        }
    }
}
