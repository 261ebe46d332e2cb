//! The HTTP proxy: a thin Pingora [`ProxyHttp`] dispatcher. Each phase is a
//! few lines that call into the router, the upstream group or the header and
//! response helpers; per-request state lives in [`RequestCtx`].
//!
//! ```text
//! request_filter ─── request id; client IP (trusted_proxies);
//!       │             ambiguous framing ──▶ 400; normalize target,
//!       │             route by host+path ──▶ 404 if none
//!       │             route policies (crate::policy::admit): redirect,
//!       │             403, 413, 503 max_inflight
//!       │             rate limit ──▶ 429 + Retry-After if over
//! upstream_peer ──── sticky backend, else the policy: an Attempt (in-flight
//!       │            guard + breaker permit) on a backend not tried yet
//!       │               ├─ every usable one at max_conns: wait in the
//!       │               │  queue; full / timed out ──▶ 503 + Retry-After
//!       │               ├─ none selectable, first attempt ──▶ 503
//!       │               └─ none left after connect failures ─▶ 502
//! fail_to_connect ── report the failure; retry elsewhere per retry_on
//!                    (crate::proxy::retry), the pause in upstream_peer
//! request_body_filter ── max_body_bytes on a streamed body ──▶ 413
//! upstream_request_filter ── X-Forwarded-*, strip_prefix, TE: trailers,
//!                    request id, request_headers rules
//! upstream_response_filter ── note the backend's status and Retry-After;
//!                    a 502/503/504 in retry_on ──▶ retry elsewhere
//! error_while_proxy ── stale pooled connection ──▶ once more; reset or
//!                    timeout before the head in retry_on ──▶ elsewhere
//! response_filter ── hop-by-hop out; response_headers rules, Set-Cookie
//!                    (sticky), RateLimit-*, request id;
//!                    Connection: close from SIGQUIT/SIGTERM on;
//!                    compress: Content-Encoding, Vary (crate::compress)
//! response_body_filter ── compress: each backend read, flushed
//! fail_to_proxy ──── error → 502/503/504/400 with a short text body
//! logging ────────── report the outcome to the breaker; metrics; access log;
//!                    ctx drops → in-flight count released
//! ```

pub(crate) mod access;
pub(crate) mod choose;
mod ctx;
pub mod drain;
pub(crate) mod framing;
pub(crate) mod headers;
pub(crate) mod limit;
mod peer;
pub(crate) mod respond;
pub(crate) mod retry;
mod rewrite;
mod route;
mod settle;
mod site;

pub use ctx::RequestCtx;
pub(crate) use rewrite::{
    rewrite_request, rewrite_response, target_len, to_origin_form, upstream_target,
};
pub use route::RouteRuntime;
pub use site::{Site, SiteSlot};

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use crate::compress;
use crate::config::RetryReason;
use crate::filters::sticky::StickyKey;
use crate::policy;
use crate::policy::body_limit::Allowance;
use crate::router::request_host;
use crate::upstream::{Ended, Unavailable};
use retry::Next;

pub struct HttpProxy {
    slot: Arc<SiteSlot>,
    /// Signs sticky cookies: one per process, the same in every generation.
    sticky_key: Arc<StickyKey>,
}

impl HttpProxy {
    pub fn new(slot: Arc<SiteSlot>) -> Self {
        let sticky_key = Arc::clone(&slot.load().sticky_key);
        Self { slot, sticky_key }
    }
}

/// The site the request started with.
fn site_of(ctx: &RequestCtx) -> Result<Arc<Site>> {
    ctx.site
        .clone()
        .ok_or_else(|| Error::explain(ErrorType::InternalError, "request without a site"))
}

#[async_trait]
impl ProxyHttp for HttpProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        let mut ctx = RequestCtx::new();
        ctx.site = Some(self.slot.load_full());
        ctx
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let site = site_of(ctx)?;
        ctx.request_id = policy::request_id(site.request_id.as_ref(), session.req_header());
        ctx.client_ip = policy::client_ip_of(
            respond::client_ip(session),
            &site.trusted_proxies,
            session.req_header(),
        );
        if let Some(why) = framing::ambiguity(session.req_header()) {
            log::debug!("refusing request: {why}");
            return respond::refuse(session, ctx, 400, &[]).await;
        }
        if target_len(session.req_header()) > site.max_uri_bytes {
            return respond::refuse(session, ctx, 414, &[]).await;
        }
        let req = session.req_header_mut();
        to_origin_form(req)?;
        let host = request_host(req);
        let Some(route) = site.router.find(&host, req.uri.path()) else {
            return respond::refuse(session, ctx, 404, &[]).await;
        };
        ctx.route = Some(Arc::clone(route));
        let body_len = policy::announced_body_len(session.req_header());
        let admitted = policy::admit(
            &route.policy,
            session.req_header(),
            site.scheme,
            ctx.client_ip,
            body_len,
        );
        match admitted {
            Ok(slot) => ctx.slot = slot,
            Err(refusal) => {
                return respond::refuse(session, ctx, refusal.status, &refusal.headers).await
            }
        }
        if route.policy.max_body_bytes > 0 && body_len.is_none() {
            ctx.body_allowance = Some(Allowance::new(route.policy.max_body_bytes));
        }
        ctx.deadline = route.policy.timeout.map(|t| ctx.started + t);
        if limit::over_limit(session, route, ctx).await {
            return Ok(true);
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(allowance), Some(data)) = (&mut ctx.body_allowance, body.as_ref()) else {
            return Ok(());
        };
        if allowance.take(data.len() as u64) {
            return Ok(());
        }
        // The chunk that passes the limit is not sent: the backend
        // connection is dropped with the request incomplete.
        Err(Error::explain(
            ErrorType::HTTPStatus(413),
            "request body over max_body_bytes",
        ))
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let route = ctx.route.clone().ok_or_else(|| {
            Error::explain(ErrorType::InternalError, "upstream_peer without a route")
        })?;
        let Some(upstream) = &route.upstream else {
            // (A route without an upstream redirects: admitted never.)
            return Err(Error::explain(
                ErrorType::HTTPStatus(503),
                "route has no upstream",
            ));
        };
        // A retry decided after the last try failed: its pause first.
        if ctx.next.is_some() {
            let retry = ctx.tried.len();
            tokio::time::sleep(retry::pause(retry, ctx.deadline)).await;
        }
        let left = match ctx.deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(Error::explain(ErrorType::HTTPStatus(504), "route timeout")),
            },
            None => None,
        };
        if std::mem::take(&mut ctx.again) {
            if let Some(attempt) = &ctx.attempt {
                let backend = upstream.backend(attempt.index);
                let addrs = peer::proxy_addrs(session, &upstream.spec);
                return Ok(Box::new(peer::build(&upstream.spec, backend, addrs, left)));
            }
        }
        // The previous try (if any) was reported when its retry was decided.
        ctx.attempt = None;
        let sticky_key = Arc::clone(&self.sticky_key);
        let client_ip = ctx.client_ip;
        let chosen = match ctx.next.take() {
            Some(Next::Chosen(attempt)) => Ok(attempt),
            _ => {
                let chosen =
                    choose::choose(&route, session.req_header(), client_ip, &sticky_key, ctx);
                // A wait in the queue counts against the route's `timeout` too.
                match left {
                    None => chosen.await,
                    Some(left) => match tokio::time::timeout(left, chosen).await {
                        Ok(chosen) => chosen,
                        Err(_) => {
                            return Err(Error::explain(ErrorType::HTTPStatus(504), "route timeout"))
                        }
                    },
                }
            }
        };
        let attempt = match chosen {
            Ok(attempt) => attempt,
            Err(Unavailable::Overloaded) => {
                ctx.overloaded = true;
                return Err(Error::explain(
                    ErrorType::HTTPStatus(503),
                    "every backend is at max_conns",
                ));
            }
            Err(Unavailable::NoBackend) => {
                let (code, why) = if ctx.tried.is_empty() {
                    (503, "no backend is selectable")
                } else {
                    (502, "connect failed on every backend tried")
                };
                return Err(Error::explain(ErrorType::HTTPStatus(code), why));
            }
        };
        let backend = upstream.backend(attempt.index);
        if let Some(c) = route.backend_requests.get(attempt.index) {
            c.inc();
        }
        ctx.tried.push(attempt.index);
        ctx.attempt = Some(attempt);
        let addrs = peer::proxy_addrs(session, &upstream.spec);
        Ok(Box::new(peer::build(&upstream.spec, backend, addrs, left)))
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        log::warn!("connect to {} failed: {e}", peer._address);
        // A connect error counts against the backend's breaker (SPEC) and
        // toward its gateway failures.
        let route = ctx.route.clone();
        let upstream = route.as_ref().and_then(|r| r.upstream.as_ref());
        if let (Some(upstream), Some(attempt)) = (upstream, ctx.attempt.take()) {
            upstream.report(attempt, Ended::ConnectFailure);
        }
        // Nothing was sent yet: any method may go to another backend.
        if let Some(route) = &route {
            let reason = RetryReason::ConnectFailure;
            let (req, ip) = (session.req_header(), ctx.client_ip);
            ctx.next = retry::next_try(route, req, ip, &self.sticky_key, ctx, reason, true);
            e.set_retry(ctx.next.is_some());
        }
        e
    }

    /// After the connection was made, before a response head reached the
    /// client: a reused backend connection that broke before any answer
    /// goes once more to the same backend, when the request has no body
    /// (the backend closed the idle connection, it did not fail; the same
    /// rule as the HTTP/1 forwarder's). A reset or timeout goes to another
    /// backend when `retry_on` says so ([`retry`]); so does a 502/503/504,
    /// whose retry `upstream_response_filter` already decided.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if ctx.next.is_some() {
            e.set_retry(true);
            return e;
        }
        let before_head = ctx.upstream_status.is_none() && session.response_written().is_none();
        let stale = client_reused && before_head && session.as_mut().is_body_empty();
        ctx.again = stale;
        if stale {
            e.set_retry(true);
            return e;
        }
        let route = ctx.route.clone();
        if let (Some(route), Some(reason), true) = (&route, retry::reason_of(&e), before_head) {
            let replay = retry::session_replayable(session);
            let (req, ip) = (session.req_header(), ctx.client_ip);
            ctx.next = retry::next_try(route, req, ip, &self.sticky_key, ctx, reason, replay);
            if ctx.next.is_some() {
                retry::report_failed_try(ctx, retry::ended_of(reason));
            }
        }
        e.set_retry(ctx.next.is_some());
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let scheme = ctx.site.as_ref().map_or("http", |s| s.scheme);
        rewrite_request(
            ctx.route.as_deref(),
            session.req_header(),
            upstream_request,
            respond::client_ip(session),
            scheme,
        )?;
        match &ctx.route {
            Some(route) => {
                policy::apply_to_request(upstream_request, &route.policy, ctx.request_id.as_ref())
            }
            None => Ok(()),
        }
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // A 101 only answers a request that asked to switch protocols;
        // anything else is a broken backend (502), as on the forwarder.
        if upstream_response.status == http::StatusCode::SWITCHING_PROTOCOLS
            && !session.as_ref().is_upgrade_req()
        {
            return Err(Error::explain(
                ErrorType::HTTPStatus(502),
                "101 to a request that asked for no upgrade",
            ));
        }
        if upstream_response.status.is_informational() {
            return Ok(());
        }
        if let Some(attempt) = &mut ctx.attempt {
            attempt.head_arrived();
        }
        let status = upstream_response.status.as_u16();
        if !matches!(status, 429 | 502..=504) {
            ctx.upstream_status = Some(status);
            return Ok(());
        }
        let retry_after = upstream_response.headers.get(http::header::RETRY_AFTER);
        let retry_after = retry_after.map(|v| v.as_bytes());
        if retry::at_response_head(session, ctx, &self.sticky_key, status, retry_after) {
            return Err(Error::explain(
                ErrorType::HTTPStatus(status),
                "backend answered a status retry_on retries",
            ));
        }
        ctx.upstream_status = Some(status);
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Draining (SIGTERM) or handing over (SIGQUIT): a request that was
        // already in flight is answered with `Connection: close`, so its
        // keep-alive client reconnects (to the new process) instead of
        // racing the close of an idle connection.
        if session.is_process_shutting_down() || drain::handing_over() {
            session.set_keepalive(None);
        }
        // A body that ends at the backend's close ends the client's
        // connection too: say so, as the forwarder does.
        if headers::ends_at_close(upstream_response) {
            session.set_keepalive(None);
        }
        // Pingora turns keep-alive off when a head is written before the
        // request body is done, an interim `100 Continue` included; only a
        // final answer that early should cost the connection.
        let interim = upstream_response.status.is_informational();
        session.set_close_on_response_before_downstream_finish(!interim);
        // Before the HTTP/1 fit: an HTTP/1.0 client's compressed body then
        // loses its chunking too and ends at the close.
        if let Some(rules) = ctx.route.as_ref().and_then(|r| r.compress.clone()) {
            let offer = compress::Offer::for_request(&rules, session.req_header());
            ctx.compress = compress::pingora::apply(&offer, upstream_response)?;
        }
        if !session.as_ref().is_http2() {
            headers::fit_http1_client(session.req_header().version, upstream_response)?;
        }
        rewrite_response(upstream_response, ctx)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(encoder) = &mut ctx.compress {
            encoder.filter(body, end_of_stream)?;
        }
        Ok(None)
    }

    /// A compressed body that ends with (unannounced) trailers from an
    /// HTTP/2 backend: the end of its stream takes their place.
    async fn response_trailer_filter(
        &self,
        _session: &mut Session,
        _trailers: &mut http::HeaderMap,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Bytes>> {
        match &mut ctx.compress {
            Some(encoder) => encoder.finish(),
            None => Ok(None),
        }
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = respond::status_for(e);
        // An interim (1xx) head passed on is not an answer: the final one
        // still has to be sent.
        let answered = session
            .response_written()
            .is_some_and(|r| !r.status.is_informational());
        if code > 0 && !answered {
            let retry_after = [("Retry-After", "1".to_string())];
            let extra: &[(&str, String)] = if code == 503 && ctx.overloaded {
                &retry_after
            } else {
                &[]
            };
            respond::answer(session, code, &ctx.answer_headers(extra)).await;
            ctx.own_status = Some(code);
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .or(ctx.own_status)
            .unwrap_or(499);
        let Some(site) = ctx.site.clone() else {
            return;
        };
        site.settle(ctx, status, settle::ended(ctx.upstream_status, e));
        if let Some(log) = &site.access_log {
            let req = session.req_header();
            let sent = session.body_bytes_sent();
            access::record(log, req, ctx.client_ip, ctx, &site.listener, status, sent);
        }
    }
}
