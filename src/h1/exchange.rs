//! One request's exchange with a backend, for either client protocol:
//! the route's policies ([`crate::policy::admit`]), the rate limit, the
//! choice of backend (retries per `retry_on`, see [`crate::proxy::retry`],
//! and once more after a stale idle connection), the request head and body
//! to the backend, the response head rewritten and the body streamed back
//! to the [`Client`], the idle connection returned to the pool; then the
//! breaker outcome, metrics and access log ([`forward`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::server::ShutdownWatch;
use tokio::net::TcpStream;

use super::answer;
use super::client::Client;
use super::head;
use crate::compress;
use crate::config::RetryReason;
use crate::policy;
use crate::proxy::retry::Next;
use crate::proxy::{self, choose, headers, RequestCtx, RouteRuntime, Site};
use crate::proxy_protocol::{self, ConnAddrs};
use crate::upstream::{Ended, Unavailable, Upstream};

mod replay;
mod reply;
mod send;

/// The largest response head accepted from a backend.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Room for the first read of a response: its head and a small body.
const RESPONSE_READ: usize = 8 * 1024;

/// Why an exchange with a backend produced no response to pass on.
enum Failed {
    /// A reused idle connection turned out closed before answering; the
    /// request (bodiless) can go again on a new connection.
    Stale,
    /// The backend took longer than `read_timeout`: 504.
    Timeout,
    /// The connection broke before a response head: 502.
    Reset,
    /// The backend answered nonsense, or broke the exchange after an
    /// interim response went to the client: 502.
    Backend,
    /// The client went away (or sent less body than it announced).
    Client,
    /// The request body passed `max_body_bytes`: 413.
    TooLarge,
}

/// How a request's body reaches the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestBody {
    None,
    /// This many bytes, with the request's `Content-Length`.
    Length(u64),
    /// Of a length not known up front (an HTTP/2 stream's DATA frames):
    /// sent in chunks, the request's fields saying `Transfer-Encoding:
    /// chunked`.
    Chunked,
}

/// A request ready for a backend, on either client protocol.
pub(crate) struct Request<'r> {
    pub route: &'r Arc<RouteRuntime>,
    /// The request as routed.
    pub req: &'r pingora::http::RequestHeader,
    /// Its header lines for the backend, each ending in CRLF.
    pub fields: &'r [u8],
    pub body: RequestBody,
    /// The client IP the request is judged by ([`crate::policy::client_ip`]).
    pub client_ip: Option<std::net::IpAddr>,
    /// The client connection's addresses, for the PROXY header of an
    /// upstream with `send_proxy_protocol` (`None` for any other).
    pub proxy_addrs: Option<ConnAddrs>,
}

/// Forwards `request` and passes the response on to `client`; then the
/// breaker outcome, the metrics and the access log, as on Pingora's path.
/// True when the (HTTP/1) client connection may carry the next request.
pub(crate) async fn forward<C: Client>(
    site: &Site,
    request: Request<'_>,
    client: &mut C,
    client_timeout: Duration,
    close: bool,
    shutdown: &ShutdownWatch,
) -> bool {
    let mut ctx = RequestCtx::new();
    let route = request.route;
    ctx.route = Some(Arc::clone(route));
    ctx.request_id = policy::request_id(site.request_id.as_ref(), request.req);
    let body_len = match request.body {
        RequestBody::None => Some(0),
        RequestBody::Length(n) => Some(n),
        RequestBody::Chunked => None,
    };
    let admitted = policy::admit(
        &route.policy,
        request.req,
        site.scheme,
        request.client_ip,
        body_len,
    );
    let (status, outcome, keep, sent) = match (admitted, &route.upstream) {
        (Ok(slot), Some(upstream)) => {
            ctx.slot = slot;
            let fields =
                policy::request_fields(request.fields, &route.policy, ctx.request_id.as_ref());
            let mut exchange = Exchange {
                site,
                route,
                upstream,
                client,
                req: request.req,
                fields: &fields,
                body: request.body,
                client_ip: request.client_ip,
                proxy_addrs: request.proxy_addrs,
                ctx: &mut ctx,
                client_timeout,
                sent: 0,
                body_unfinished: false,
                replayable: false,
                interim_sent: false,
            };
            let (status, outcome, keep) = exchange.run(close, shutdown).await;
            (status, outcome, keep, exchange.sent)
        }
        (Err(refusal), _) => {
            let extra = ctx.answer_headers(&refusal.headers);
            answer(client, refusal.status, &extra, client_timeout).await;
            ctx.own_status = Some(refusal.status);
            (
                refusal.status,
                None,
                false,
                proxy::respond::body_for(refusal.status).len(),
            )
        }
        // (A route without an upstream redirects: never admitted.)
        (Ok(_), None) => {
            answer(client, 503, &ctx.answer_headers(&[]), client_timeout).await;
            ctx.own_status = Some(503);
            (503, None, false, proxy::respond::body_for(503).len())
        }
    };
    site.settle(&mut ctx, status, outcome);
    if let Some(log) = &site.access_log {
        let listener = &site.listener;
        proxy::access::record(
            log,
            request.req,
            request.client_ip,
            &ctx,
            listener,
            status,
            sent,
        );
    }
    keep
}

/// Writes one of switchyard's own answers to `client` (it closes after).
async fn answer<C: Client>(client: &mut C, code: u16, extra: &[(&str, String)], timeout: Duration) {
    let wire = answer::bytes(code, extra);
    let written = client.answer(&wire);
    if let Ok(Err(e)) = tokio::time::timeout(timeout, written).await {
        log::debug!("could not send {code} to the client: {e}");
    }
}

/// How trying the backends ended.
enum Reached<H> {
    /// A backend answered with this head, on `conn`.
    Head {
        conn: TcpStream,
        index: usize,
        resp: Box<head::Response<H>>,
        rest: Vec<u8>,
    },
    /// Answered already: the status, how the attempt ended, keep-alive.
    Done((u16, Option<Ended>, bool)),
}

/// One request on its way through.
struct Exchange<'a, C> {
    site: &'a Site,
    route: &'a Arc<RouteRuntime>,
    upstream: &'a Arc<Upstream>,
    client: &'a mut C,
    /// The request as routed.
    req: &'a pingora::http::RequestHeader,
    /// Its header lines for the backend ([`head::Request::fields`]).
    fields: &'a [u8],
    body: RequestBody,
    client_ip: Option<std::net::IpAddr>,
    proxy_addrs: Option<ConnAddrs>,
    ctx: &'a mut RequestCtx,
    client_timeout: Duration,
    /// Response body bytes sent to the client.
    sent: usize,
    /// The backend answered before the client had sent the whole body: the
    /// client's connection closes after the response.
    body_unfinished: bool,
    /// The request can go to another backend after one saw it: its body
    /// (if any) is kept in the request's wire bytes ([`replay`]).
    replayable: bool,
    /// An interim (1xx) response reached the client: nothing is retried.
    interim_sent: bool,
}

impl<C: Client> Exchange<'_, C> {
    /// The final status, how the attempt ended (for the breaker and outlier
    /// detection), and whether the client connection stays open.
    async fn run(
        &mut self,
        client_close: bool,
        shutdown: &ShutdownWatch,
    ) -> (u16, Option<Ended>, bool) {
        if let Some(status) = self.rate_limited().await {
            return (status, None, false);
        }
        let mut wire = Vec::with_capacity(self.fields.len() + 256);
        let target = proxy::upstream_target(Some(self.route), self.req);
        let target = target
            .as_ref()
            .map_or(self.req.raw_path(), |t| t.as_bytes());
        head::write_request(&self.req.method, target, self.fields, &mut wire);
        if !self.keep_for_replay(&mut wire).await {
            return (499, None, false);
        }
        // The route's `timeout` covers every try, up to the response head.
        let reached = match self.route.policy.timeout {
            None => self.reach(&wire).await,
            Some(t) => {
                let deadline = tokio::time::Instant::from_std(self.ctx.started + t);
                match tokio::time::timeout_at(deadline, self.reach(&wire)).await {
                    Ok(reached) => reached,
                    Err(_) => return self.answer(504, &[], Some(Ended::Timeout)).await,
                }
            }
        };
        match reached {
            Reached::Head {
                conn,
                index,
                resp,
                rest,
            } => {
                self.respond(conn, index, *resp, rest, client_close, shutdown)
                    .await
            }
            Reached::Done(done) => done,
        }
    }

    /// Tries backends until one answers with a response head that is to be
    /// passed on (or none is left to try): connect failures, and per
    /// `retry_on` resets, timeouts and 502/503/504, go to another backend
    /// ([`proxy::retry`]).
    async fn reach(&mut self, wire: &[u8]) -> Reached<C::Head> {
        let mut next: Option<Next> = None;
        loop {
            let chosen = match next.take() {
                Some(Next::Chosen(attempt)) => {
                    self.retry_pause().await;
                    Ok(attempt)
                }
                queued => {
                    if queued.is_some() {
                        self.retry_pause().await;
                    }
                    choose::choose(
                        self.route,
                        self.req,
                        self.client_ip,
                        &self.site.sticky_key,
                        self.ctx,
                    )
                    .await
                }
            };
            let attempt = match chosen {
                Ok(attempt) => attempt,
                Err(Unavailable::Overloaded) => {
                    let retry_after = [("Retry-After", "1".to_string())];
                    return Reached::Done(self.answer(503, &retry_after, None).await);
                }
                Err(Unavailable::NoBackend) => {
                    let code = if self.ctx.tried.is_empty() { 503 } else { 502 };
                    return Reached::Done(self.answer(code, &[], None).await);
                }
            };
            let index = attempt.index;
            if let Some(c) = self.route.backend_requests.get(index) {
                c.inc();
            }
            self.ctx.tried.push(index);
            let addr = self.upstream.backend(index).socket;
            let pooled = self.route.idle.take(index, self.owner());
            let reused = pooled.is_some();
            let conn = match pooled {
                Some(c) => Ok(c),
                None => self.connect(addr).await,
            };
            self.ctx.attempt = Some(attempt);
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => match self.connect_failed(addr, &e) {
                    Some(attempt) => {
                        next = Some(attempt);
                        continue;
                    }
                    None => return Reached::Done(self.answer(502, &[], None).await),
                },
            };
            // Taken once connected: a retry's `choose` sets its own cookie.
            // (Switchyard's own failure: it says nothing of the backend.)
            let Ok(mut additions) = headers::ResponseAdditions::take(self.ctx) else {
                return Reached::Done(self.answer(502, &[], None).await);
            };
            if let Some(rules) = &self.route.compress {
                additions.compress = Some(compress::Offer::for_request(rules, self.req));
            }
            let mut result = self.exchange(&mut conn, wire, &additions).await;
            if matches!(result, Err(Failed::Stale)) && reused {
                // The idle connection was closed under us: once more, fresh.
                match self.connect(addr).await {
                    Ok(c) => {
                        conn = c;
                        result = self.exchange(&mut conn, wire, &additions).await;
                    }
                    // The backend is gone: a connect failure like any other.
                    Err(e) => match self.connect_failed(addr, &e) {
                        Some(attempt) => {
                            next = Some(attempt);
                            continue;
                        }
                        None => return Reached::Done(self.answer(502, &[], None).await),
                    },
                }
            }
            let (reason, code) = match result {
                Ok((resp, rest)) => {
                    if let Some(attempt) = &mut self.ctx.attempt {
                        attempt.head_arrived();
                    }
                    // A 502/503/504 in `retry_on` is discarded (its
                    // connection dropped, so closed) if another try is made.
                    let retried = match RetryReason::for_status(resp.status) {
                        Some(reason) => self.retry(reason),
                        None => None,
                    };
                    if let Some(attempt) = retried {
                        next = Some(attempt);
                        continue;
                    }
                    return Reached::Head {
                        conn,
                        index,
                        resp,
                        rest,
                    };
                }
                Err(Failed::Timeout) => (RetryReason::Timeout, 504),
                // (A fresh connection closed before any answer is a reset.)
                Err(Failed::Reset | Failed::Stale) => (RetryReason::Reset, 502),
                Err(Failed::Backend) => {
                    return Reached::Done(self.answer(502, &[], Some(Ended::Reset)).await)
                }
                // The backend connection is dropped with the request
                // incomplete; the breaker learns nothing of the backend.
                Err(Failed::TooLarge) => return Reached::Done(self.answer(413, &[], None).await),
                Err(Failed::Client) => return Reached::Done((499, None, false)),
            };
            if let Some(attempt) = self.retry(reason) {
                next = Some(attempt);
                continue;
            }
            return Reached::Done(
                self.answer(code, &[], Some(proxy::retry::ended_of(reason)))
                    .await,
            );
        }
    }

    /// A new connection to the backend at `addr`, its PROXY header sent when
    /// the upstream wants one.
    async fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let spec = &self.upstream.spec;
        let header = spec
            .send_proxy_protocol
            .map(|v| proxy_protocol::header(v, self.proxy_addrs));
        proxy_protocol::connect::connect(addr, spec.connect_timeout, header.as_deref()).await
    }

    /// Whose PROXY header the backend connections of this request carry:
    /// they are pooled for that client only.
    fn owner(&self) -> Option<&ConnAddrs> {
        self.upstream.spec.send_proxy_protocol?;
        self.proxy_addrs.as_ref()
    }

    /// Reports the current attempt's failed connect to the breaker; the
    /// next attempt when `retry_on` and the rest allow another backend.
    fn connect_failed(&mut self, addr: SocketAddr, e: &std::io::Error) -> Option<Next> {
        log::warn!("connect to {addr} failed: {e}");
        if let Some(attempt) = self.ctx.attempt.take() {
            self.upstream.report(attempt, Ended::ConnectFailure);
        }
        let (route, req, ip) = (self.route, self.req, self.client_ip);
        let reason = RetryReason::ConnectFailure;
        proxy::retry::next_try(
            route,
            req,
            ip,
            &self.site.sticky_key,
            self.ctx,
            reason,
            true,
        )
    }

    /// The jittered pause before a retry, within the route's `timeout`.
    async fn retry_pause(&self) {
        let deadline = proxy::retry::deadline(self.route, self.ctx.started);
        let pause = proxy::retry::pause(self.ctx.tried.len(), deadline);
        tokio::time::sleep(pause).await;
    }

    /// The route's rate limit: `Some(429)` when it denied (and was answered).
    async fn rate_limited(&mut self) -> Option<u16> {
        let store = self.route.rate_limit.as_ref()?;
        let decision = store
            .check_request(self.client_ip, &self.req.headers, Instant::now())
            .await?;
        if decision.allowed {
            self.ctx.rate = Some(decision);
            return None;
        }
        self.route.rate_limited.inc();
        let extra = [
            ("Retry-After", decision.retry_after_secs().to_string()),
            ("RateLimit-Limit", decision.limit.to_string()),
            ("RateLimit-Remaining", decision.remaining.to_string()),
        ];
        Some(self.answer(429, &extra, None).await.0)
    }

    /// Answers `code` itself (and closes): the status, how the attempt
    /// ended, keep-alive off.
    async fn answer(
        &mut self,
        code: u16,
        extra: &[(&'static str, String)],
        ended: Option<Ended>,
    ) -> (u16, Option<Ended>, bool) {
        self.ctx.own_status = Some(code);
        let extra = self.ctx.answer_headers(extra);
        answer(self.client, code, &extra, self.client_timeout).await;
        (code, ended, false)
    }
}
