//! The HTTP/1 forwarder: plain HTTP/1.1 requests to plain HTTP/1.1 backends,
//! forwarded without Pingora's per-request proxy machinery.
//!
//! Pingora's HTTP/1 proxy path costs about 80,000 instructions per request
//! before any switchyard code runs (a 14 KiB future built and copied per
//! request, a second task, a `getpeername` per pooled connection, header
//! maps rebuilt for every filter); a minimal tokio proxy needs a tenth of
//! that. So the common request takes this path, and everything else still
//! goes to Pingora, unchanged:
//!
//! ```text
//! HeadGuard has a complete head ──▶ head::request: HTTP/1.1, origin form,
//!        │                           one Host, no body or Content-Length,
//!        │                           no Upgrade/Expect/Transfer-Encoding?
//!        │                        ──▶ router: a route, to an h1, non-TLS upstream?
//!        │  any "no" ────────────────────────────────────▶ Pingora (as before)
//!        ▼
//! rate limit (429) ─ choose backend (same code as Pingora's upstream_peer)
//!   ─ idle connection or connect (connect_timeout; retries on failure)
//!   ─ request head (+ body, streamed) ─ response head (read_timeout; 502/504)
//!   ─ response head rewritten (same code as response_filter) ─ body streamed
//!   ─ connection back to the idle pool if the response ended cleanly
//!   ─ breaker outcome, metrics, access log (same code as `logging`)
//! ```
//!
//! Routing, selection, header rewriting, breaker outcomes, metrics and the
//! access log are the same functions the Pingora dispatcher calls; only the
//! wire work is here ([`head`] for heads, [`body`] for bodies). The exchange
//! with the backend (`exchange.rs`, `forward`) is generic over its client
//! (`client.rs`): an HTTP/1 connection here, an HTTP/2 stream from
//! [`crate::http2`].

pub(crate) mod answer;
pub mod body;
pub(crate) mod client;
mod exchange;
pub mod head;
pub(crate) mod within;

pub(crate) use exchange::{forward, Request, RequestBody};

use std::sync::Arc;
use std::time::Duration;

use pingora::server::ShutdownWatch;

use crate::config::{Policy, UpstreamProtocol};
use crate::http_guard::Prefixed;
use crate::policy::{self, Cidr};
use crate::proxy::{self, RouteRuntime, Site, SiteSlot};

/// What became of a request offered to the forwarder.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    /// Not taken: nothing was read or written; give it to Pingora.
    Declined,
    /// Answered; the connection may carry the next request.
    KeepAlive,
    /// Answered (or failed); close the connection.
    Close,
}

/// One per HTTP listener.
pub struct Forwarder {
    /// Loaded once per request: the request keeps that generation.
    slot: Arc<SiteSlot>,
    /// Longest wait for a client's request body or a write to it.
    client_timeout: Duration,
}

impl Forwarder {
    pub fn new(slot: Arc<SiteSlot>, client_timeout: Duration) -> Self {
        Self {
            slot,
            client_timeout,
        }
    }

    /// Forwards the request whose head (`head_len` bytes) is buffered in
    /// `client`, or declines it untouched.
    pub async fn serve(
        &self,
        client: &mut Prefixed,
        head_len: usize,
        shutdown: &ShutdownWatch,
    ) -> Served {
        let site = self.slot.load_full();
        let peer = client.peer_ip();
        let scheme = site.scheme;
        let Some(req) = head::request(client.head(head_len), peer, scheme) else {
            return Served::Declined;
        };
        // (`head::request` declined every framing `framing::ambiguity`
        // refuses, and every target but origin form.)
        let head::Request {
            mut header,
            host,
            body_len,
            close,
            fields,
        } = req;
        if proxy::to_origin_form(&mut header).is_err() {
            return Served::Declined;
        }
        let Some(route) = site.router.find(&host, header.uri.path()) else {
            return Served::Declined;
        };
        if !forwardable(route) {
            return Served::Declined;
        }
        // A trusted proxy's X-Forwarded-For names the client.
        let trusted = &site.trusted_proxies;
        let behind_proxy = peer.is_some_and(|ip| Cidr::any_contains(trusted, ip));
        if behind_proxy || reads_headers(&site, route) {
            match head::with_headers(header, client.head(head_len)) {
                Some(h) => header = h,
                None => return Served::Declined,
            }
        }
        let client_ip = match behind_proxy {
            true => policy::client_ip_of(peer, trusted, &header),
            false => peer,
        };
        client.consume(head_len);
        let body = if body_len == 0 {
            RequestBody::None
        } else {
            RequestBody::Length(body_len)
        };
        let sends_proxy = route
            .upstream
            .as_ref()
            .and_then(|u| u.spec.send_proxy_protocol);
        let proxy_addrs = match sends_proxy {
            None => None,
            Some(_) => client.conn_addrs(),
        };
        let request = Request {
            route,
            req: &header,
            fields: &fields,
            body,
            client_ip,
            proxy_addrs,
        };
        let keep = forward(&site, request, client, self.client_timeout, close, shutdown).await;
        if keep {
            Served::KeepAlive
        } else {
            Served::Close
        }
    }
}

/// Whether anything this request meets reads its headers: the access log
/// (Host), a rate limit (its key), a sticky cookie, a consistent-hash key,
/// a redirect (Host), a client's own request id, compression
/// (Accept-Encoding). Only then is the request's header map built.
fn reads_headers(site: &Site, route: &RouteRuntime) -> bool {
    site.access_log.is_some()
        || route.rate_limit.is_some()
        || route.sticky.is_some()
        || route.policy.redirect.is_some()
        || site.request_id.as_ref().is_some_and(|r| r.trust_incoming)
        || route
            .upstream
            .as_ref()
            .is_some_and(|u| u.spec.policy == Policy::ConsistentHash)
        || route.compress.is_some()
}

/// Routes whose upstream this path can reach: plain HTTP/1.1 backends (TLS
/// and HTTP/2 backends use Pingora's connectors), or none (a redirect).
pub(crate) fn forwardable(route: &RouteRuntime) -> bool {
    route.upstream.as_ref().is_none_or(|u| {
        let spec = &u.spec;
        spec.tls.is_none() && spec.protocol == UpstreamProtocol::Http1
    })
}
