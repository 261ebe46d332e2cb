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
//!       │               ├─ none selectable, first attempt ──▶ 503
//!       │               └─ none left after connect failures ─▶ 502
//! fail_to_connect ── report the failure; retry elsewhere while `retries` allow
//! request_body_filter ── max_body_bytes on a streamed body ──▶ 413
//! upstream_request_filter ── X-Forwarded-*, strip_prefix, TE: trailers,
//!                    request id, request_headers rules
//! upstream_response_filter ── note the backend's status
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
mod rewrite;
mod route;

pub use ctx::RequestCtx;
pub(crate) use rewrite::{
    rewrite_request, rewrite_response, target_len, to_origin_form, upstream_target,
};
pub use route::RouteRuntime;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use crate::access_log::AccessLog;
use crate::admin::status_counters::StatusCounters;
use crate::admin::Metrics;
use crate::compress;
use crate::config::UpstreamSpec;
use crate::filters::sticky::StickyKey;
use crate::policy::body_limit::Allowance;
use crate::policy::{self, Cidr, RequestIdSettings};
use crate::proxy_protocol::ConnAddrs;
use crate::router::{request_host, Router};
use crate::upstream::Ended;

/// What a listener's proxy knows: its routes and how to answer. Shared by
/// the Pingora dispatcher below and the HTTP/1 forwarder ([`crate::h1`]).
pub struct Site {
    pub listener: String,
    pub router: Router<Arc<RouteRuntime>>,
    pub metrics: Arc<Metrics>,
    /// `https` when the listener terminates TLS.
    pub scheme: &'static str,
    /// Signs and checks sticky cookies; one per process.
    pub sticky_key: Arc<StickyKey>,
    /// `server.access_log`, when set.
    pub access_log: Option<Arc<AccessLog>>,
    /// `switchyard_http_requests_total` for requests no route matched.
    pub unrouted: StatusCounters,
    /// `server.max_uri_bytes`: HTTP/1 heads are measured while they arrive
    /// ([`crate::http_guard`]); HTTP/2 requests in `request_filter`.
    pub max_uri_bytes: usize,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
    /// `server.request_id`, when requests get an id.
    pub request_id: Option<RequestIdSettings>,
}

pub struct HttpProxy {
    site: Arc<Site>,
}

impl HttpProxy {
    pub fn new(site: Arc<Site>) -> Self {
        Self { site }
    }
}

impl std::ops::Deref for HttpProxy {
    type Target = Site;

    fn deref(&self) -> &Site {
        &self.site
    }
}

#[async_trait]
impl ProxyHttp for HttpProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.request_id = policy::request_id(self.request_id.as_ref(), session.req_header());
        ctx.client_ip = policy::client_ip_of(
            client_ip(session),
            &self.trusted_proxies,
            session.req_header(),
        );
        if let Some(why) = framing::ambiguity(session.req_header()) {
            log::debug!("refusing request: {why}");
            return refuse(session, ctx, 400, &[]).await;
        }
        if target_len(session.req_header()) > self.max_uri_bytes {
            return refuse(session, ctx, 414, &[]).await;
        }
        let req = session.req_header_mut();
        to_origin_form(req)?;
        let host = request_host(req);
        let Some(route) = self.router.find(&host, req.uri.path()) else {
            return refuse(session, ctx, 404, &[]).await;
        };
        ctx.route = Some(Arc::clone(route));
        let body_len = policy::announced_body_len(session.req_header());
        let admitted = policy::admit(
            &route.policy,
            session.req_header(),
            self.scheme,
            ctx.client_ip,
            body_len,
        );
        match admitted {
            Ok(slot) => ctx.slot = slot,
            Err(refusal) => return refuse(session, ctx, refusal.status, &refusal.headers).await,
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
                let addrs = proxy_addrs(session, &upstream.spec);
                return Ok(Box::new(peer::build(&upstream.spec, backend, addrs, left)));
            }
        }
        // The previous try (if any) was reported in fail_to_connect.
        ctx.attempt = None;
        let Some(attempt) = choose::choose(
            &route,
            session.req_header(),
            ctx.client_ip,
            &self.sticky_key,
            ctx,
        ) else {
            let (code, why) = if ctx.tried.is_empty() {
                (503, "no backend is selectable")
            } else {
                (502, "connect failed on every backend tried")
            };
            return Err(Error::explain(ErrorType::HTTPStatus(code), why));
        };
        if !ctx.tried.is_empty() {
            route.retries.inc();
        }
        let backend = upstream.backend(attempt.index);
        if let Some(c) = route.backend_requests.get(attempt.index) {
            c.inc();
        }
        ctx.tried.push(attempt.index);
        ctx.attempt = Some(attempt);
        let addrs = proxy_addrs(session, &upstream.spec);
        Ok(Box::new(peer::build(&upstream.spec, backend, addrs, left)))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let retries = ctx
            .route
            .as_ref()
            .and_then(|r| r.upstream.as_ref())
            .map_or(0, |u| u.spec.retries as usize);
        log::warn!("connect to {} failed: {e}", peer._address);
        // A connect error counts against the backend's breaker (SPEC) and
        // toward its gateway failures.
        let upstream = ctx.route.as_ref().and_then(|r| r.upstream.as_ref());
        if let (Some(upstream), Some(attempt)) = (upstream, ctx.attempt.take()) {
            upstream.report(attempt, Ended::ConnectFailure);
        }
        // Nothing was sent yet, so another backend is always safe to try.
        if ctx.tried.len() <= retries {
            e.set_retry(true);
        }
        e
    }

    /// A request whose reused backend connection broke before any answer
    /// goes once more to the same backend, when it has no body to replay:
    /// the backend closed the idle connection, it did not fail. The same
    /// rule as the HTTP/1 forwarder's; every other failure is final here
    /// (only connect failures are retried, in `fail_to_connect`).
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let stale = client_reused
            && ctx.upstream_status.is_none()
            && session.response_written().is_none()
            && session.as_mut().is_body_empty();
        e.set_retry(stale);
        ctx.again = stale;
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        rewrite_request(
            ctx.route.as_deref(),
            session.req_header(),
            upstream_request,
            client_ip(session),
            self.scheme,
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
        if !upstream_response.status.is_informational() {
            ctx.upstream_status = Some(upstream_response.status.as_u16());
            if let Some(attempt) = &mut ctx.attempt {
                attempt.head_arrived();
            }
        }
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
            respond::answer(session, code, &ctx.answer_headers(&[])).await;
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
        self.settle(ctx, status, ended(ctx.upstream_status, e));
        if let Some(log) = &self.access_log {
            let req = session.req_header();
            let sent = session.body_bytes_sent();
            access::record(log, req, ctx.client_ip, ctx, &self.listener, status, sent);
        }
    }
}

impl Site {
    /// The end of a request on either path: how the attempt ended, to the
    /// breaker and outlier detection (`None`: only the client failed, which
    /// says nothing about the backend), then the request counted under its
    /// final `status`.
    pub(crate) fn settle(&self, ctx: &mut RequestCtx, status: u16, ended: Option<Ended>) {
        let upstream = ctx.route.as_ref().and_then(|r| r.upstream.as_ref());
        if let (Some(upstream), Some(attempt)) = (upstream, ctx.attempt.take()) {
            match ended {
                Some(ended) => upstream.report(attempt, ended),
                None => drop(attempt),
            }
        }
        match &ctx.route {
            Some(r) => {
                r.requests.inc(status);
                r.duration.observe(ctx.started.elapsed().as_secs_f64());
            }
            None => self.unrouted.inc(status),
        }
    }
}

/// Answers `code` (with `extra` headers and the request id) and ends the
/// request: `request_filter`'s `Ok(true)`.
async fn refuse(
    session: &mut Session,
    ctx: &mut RequestCtx,
    code: u16,
    extra: &[(&'static str, String)],
) -> Result<bool> {
    ctx.own_status = Some(code);
    respond::answer(session, code, &ctx.answer_headers(extra)).await;
    Ok(true)
}

/// How a finished attempt ended, as the forwarder reports it too: the
/// backend's answer when it came whole (a 5xx one also when the client then
/// failed), a timeout or a reset (malformed or cut-short answers included)
/// when the error is on the backend's side. `None` when only the client
/// failed (it went away): that says nothing about the backend.
fn ended(upstream_status: Option<u16>, e: Option<&Error>) -> Option<Ended> {
    let backend_error = e.filter(|e| *e.esource() == pingora::ErrorSource::Upstream);
    match (upstream_status, backend_error) {
        (_, Some(e)) => Some(match e.etype() {
            ErrorType::ReadTimedout | ErrorType::WriteTimedout => Ended::Timeout,
            ErrorType::ConnectTimedout | ErrorType::ConnectRefused | ErrorType::ConnectNoRoute => {
                Ended::ConnectFailure
            }
            _ => Ended::Reset,
        }),
        (Some(s), None) if s >= 500 || e.is_none() => Some(Ended::Answered(s)),
        _ => None,
    }
}

/// The client's socket IP (never a header).
fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The client connection's addresses when the upstream sends PROXY headers
/// (the client is the PROXY source on a `proxy_protocol` listener).
fn proxy_addrs(session: &Session, spec: &UpstreamSpec) -> Option<ConnAddrs> {
    spec.send_proxy_protocol?;
    Some(ConnAddrs {
        client: *session.client_addr()?.as_inet()?,
        local: *session.server_addr()?.as_inet()?,
    })
}
