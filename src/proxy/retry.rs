//! Retries by policy, decided here for both engines (the HTTP/1 forwarder
//! and Pingora's `ProxyHttp` path); see the README's "Retries".
//!
//! A failed try is retried on a backend not tried yet when its reason is in
//! the upstream's `retry_on`, `retries` are left, the request can be sent
//! again ([`replayable`]: always after a connect failure, otherwise an
//! idempotent method with a known body of at most 64 KiB), nothing of the
//! response reached the client (the engines check that), another backend
//! is selectable, and the upstream's retry budget allows it. The next
//! attempt is chosen *before* the failed one is given up, so a 502/503/504
//! from the last backend left is passed on rather than replaced by
//! switchyard's own 502. Retries wait a jittered pause ([`pause`]).

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use super::choose;
use super::ctx::RequestCtx;
use super::route::RouteRuntime;
use crate::config::RetryReason;
use crate::filters::sticky::StickyKey;
use crate::upstream::{retry_after, Attempt, Ended, NoRoom, Upstream};

/// The backend of a retry that the policy allows.
#[derive(Debug)]
pub enum Next {
    /// Chosen already (before the failed try was given up).
    Chosen(Attempt),
    /// Every usable backend is at `max_conns`: the retry waits in the
    /// upstream's queue like a first try.
    Queued,
}

/// The largest request body kept to be sent again (Pingora's retry buffer
/// holds as much).
pub const MAX_REPLAY_BODY: u64 = 64 * 1024;
/// The first retry's pause is up to this long; each further one doubles it.
const PAUSE_BASE: Duration = Duration::from_millis(10);
/// No pause is longer.
const PAUSE_CAP: Duration = Duration::from_millis(250);

/// Whether the request can be sent to another backend after one saw it:
/// an idempotent method (RFC 9110 §9.2.2), a body of known length up to
/// [`MAX_REPLAY_BODY`] (`body_len`; `None` = not known up front), and no
/// `Expect: 100-continue` (that client waits for a backend to say go before
/// it sends the body, so it cannot be kept first).
pub fn replayable(req: &RequestHeader, body_len: Option<u64>) -> bool {
    use http::Method;
    let idempotent = matches!(
        req.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    idempotent
        && body_len.is_some_and(|n| n <= MAX_REPLAY_BODY)
        && !req.headers.contains_key(http::header::EXPECT)
}

/// The next attempt after a failure for `reason`, if the policy allows a
/// retry (see the module doc); counted in
/// `switchyard_upstream_retries_total{reason}`, or in
/// `switchyard_retry_budget_exhausted_total` when the budget refused it.
/// The failed attempt is left in `ctx.attempt` for the caller.
pub fn next_try(
    route: &RouteRuntime,
    req: &RequestHeader,
    client_ip: Option<IpAddr>,
    key: &StickyKey,
    ctx: &mut RequestCtx,
    reason: RetryReason,
    replayable: bool,
) -> Option<Next> {
    let upstream = route.upstream.as_ref()?;
    let spec = &upstream.spec;
    if !spec.retry_on.has(reason)
        || (reason != RetryReason::ConnectFailure && !replayable)
        || ctx.tried.len() > spec.retries as usize
    {
        return None;
    }
    // A sticky route's choice sets the cookie for the new backend: put
    // the old one back if that try is not made after all.
    let cookie = route.sticky.as_ref().and(ctx.set_cookie.clone());
    let next = match choose::choose_now(upstream, route, req, client_ip, key, ctx) {
        Ok(attempt) => Next::Chosen(attempt),
        Err(NoRoom::Full) if upstream.queue().is_some() => Next::Queued,
        Err(_) => return None,
    };
    if !upstream.retry_allowed() {
        route.budget_exhausted.inc();
        if route.sticky.is_some() {
            ctx.set_cookie = cookie;
        }
        return None;
    }
    if let Some(counter) = route.retries.get(reason.index()) {
        counter.inc();
    }
    Some(next)
}

/// The pause before retry number `retry` (1 for the first): full jitter,
/// uniform in `[0, 10 ms × 2^(retry-1)]`, at most 250 ms, and ending
/// before `deadline` (the route's `timeout`) so the try still has time.
pub fn pause(retry: usize, deadline: Option<Instant>) -> Duration {
    let shift = retry.saturating_sub(1).min(8) as u32;
    let cap = (PAUSE_BASE * (1 << shift)).min(PAUSE_CAP);
    let pause = cap.mul_f64(rand::random::<f64>());
    match deadline {
        Some(d) => pause.min(d.saturating_duration_since(Instant::now()) / 2),
        None => pause,
    }
}

/// The route's `timeout` deadline for a request that started at `started`.
pub fn deadline(route: &RouteRuntime, started: Instant) -> Option<Instant> {
    route.policy.timeout.map(|t| started + t)
}

/// The retry reason of an error from a try after its connection was made
/// and before a response head (Pingora's path): the backend's timeout or
/// a broken connection. `None` for anything else (a malformed response,
/// the client's side).
pub fn reason_of(e: &Error) -> Option<RetryReason> {
    if *e.esource() != ErrorSource::Upstream {
        return None;
    }
    match e.etype() {
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => Some(RetryReason::Timeout),
        ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError => {
            Some(RetryReason::Reset)
        }
        _ => None,
    }
}

/// `honor_retry_after`: a 429 or 503 from backend `index` carrying a
/// parseable `Retry-After` keeps new requests off it that long.
pub fn note_retry_after(upstream: &Upstream, index: usize, status: u16, value: Option<&[u8]>) {
    if !upstream.spec.honor_retry_after || !(status == 429 || status == 503) {
        return;
    }
    if let Some(hold) = value.and_then(|v| retry_after::parse(v, SystemTime::now())) {
        if !hold.is_zero() {
            upstream.hold_off(index, hold);
        }
    }
}

/// The value of header `name` in a raw HTTP/1 response head (the
/// forwarder's; only read for the rare 429/503).
pub fn raw_header<'h>(head: &'h [u8], name: &str) -> Option<&'h [u8]> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut fields);
    resp.parse(head).ok()?;
    resp.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Pingora's path, at a backend's final response head with `status`
/// (429 or 502..=504): notes its `Retry-After`, then, for a 502/503/504 in
/// `retry_on`, chooses the next try ([`next_try`]) and reports the failed
/// one. True when the answer is to be discarded for that try (its
/// connection is then closed, never pooled); false: it is passed on.
pub fn at_response_head(
    session: &mut Session,
    ctx: &mut RequestCtx,
    key: &StickyKey,
    status: u16,
    retry_after: Option<&[u8]>,
) -> bool {
    let Some(route) = ctx.route.clone() else {
        return false;
    };
    if let (Some(upstream), Some(attempt)) = (&route.upstream, &ctx.attempt) {
        note_retry_after(upstream, attempt.index, status, retry_after);
    }
    let Some(reason) = RetryReason::for_status(status) else {
        return false;
    };
    let replay = session_replayable(session);
    let (req, ip) = (session.req_header(), ctx.client_ip);
    ctx.next = next_try(&route, req, ip, key, ctx, reason, replay);
    if ctx.next.is_none() {
        return false;
    }
    report_failed_try(ctx, ended_of(reason));
    true
}

/// How a try that failed for `reason` ended, for the breaker and outlier
/// detection.
pub fn ended_of(reason: RetryReason) -> Ended {
    match reason {
        RetryReason::ConnectFailure => Ended::ConnectFailure,
        RetryReason::Reset => Ended::Reset,
        RetryReason::Timeout => Ended::Timeout,
        RetryReason::Status502 => Ended::Answered(502),
        RetryReason::Status503 => Ended::Answered(503),
        RetryReason::Status504 => Ended::Answered(504),
    }
}

/// The current (failed) try's end to its backend's breaker and outlier
/// detection, before the request moves on to [`RequestCtx::next`].
pub fn report_failed_try(ctx: &mut RequestCtx, ended: Ended) {
    let upstream = ctx.route.as_ref().and_then(|r| r.upstream.as_ref());
    if let (Some(upstream), Some(attempt)) = (upstream, ctx.attempt.take()) {
        upstream.report(attempt, ended);
    }
}

/// Whether the request can go to another backend after one saw it
/// ([`replayable`]), its body still whole in Pingora's retry buffer.
pub fn session_replayable(session: &mut Session) -> bool {
    let req = session.req_header();
    replayable(req, crate::policy::announced_body_len(req))
        && !session.as_ref().retry_buffer_truncated()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, expect: bool) -> RequestHeader {
        let mut r = RequestHeader::build(method, b"/", None).unwrap();
        if expect {
            r.insert_header("Expect", "100-continue").unwrap();
        }
        r
    }

    #[test]
    fn only_idempotent_small_known_bodies_replay() {
        assert!(replayable(&req("GET", false), Some(0)));
        assert!(replayable(&req("PUT", false), Some(MAX_REPLAY_BODY)));
        assert!(!replayable(&req("PUT", false), Some(MAX_REPLAY_BODY + 1)));
        assert!(!replayable(&req("PUT", false), None));
        assert!(!replayable(&req("POST", false), Some(0)));
        assert!(!replayable(&req("PATCH", false), Some(0)));
        assert!(!replayable(&req("PUT", true), Some(10)));
    }

    #[test]
    fn pauses_grow_and_stay_capped() {
        for retry in 1..20 {
            let cap = (PAUSE_BASE * (1 << (retry - 1).min(8))).min(PAUSE_CAP);
            for _ in 0..50 {
                assert!(pause(retry, None) <= cap);
            }
        }
        let soon = Instant::now() + Duration::from_millis(4);
        assert!(pause(5, Some(soon)) <= Duration::from_millis(2));
    }

    #[test]
    fn finds_a_raw_header() {
        let head = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nretry-after: 2\r\n\r\n";
        assert_eq!(raw_header(head, "Retry-After"), Some(&b"2"[..]));
        assert_eq!(raw_header(head, "Date"), None);
        assert_eq!(raw_header(b"garbage", "Date"), None);
    }
}
