//! A listener's site: its router and how it answers, as one generation of
//! the live config ([`crate::live`]) made it. Both HTTP engines load it once
//! per request and keep it to the request's end.

use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::admin::status_counters::StatusCounters;
use crate::admin::Metrics;
use crate::filters::sticky::StickyKey;
use crate::policy::{Cidr, RequestIdSettings};
use crate::router::Router;

use super::RouteRuntime;

/// What a listener's proxy knows: its routes and how to answer. Shared by
/// the Pingora dispatcher ([`super::HttpProxy`]) and the HTTP/1 forwarder ([`crate::h1`]).
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
    /// HTTP/2 streams may take the forwarder's pipeline: `forwarder` is on
    /// and every route's backends are plain HTTP/1.1 ([`crate::http2`]).
    pub h2_front: bool,
    /// Some route's upstream sends PROXY headers: HTTP/2 connections look
    /// their addresses up.
    pub proxy_out: bool,
}

/// A listener's current [`Site`], replaced whole by a reload
/// ([`crate::live`]); each request loads it once and keeps it to its end.
pub type SiteSlot = arc_swap::ArcSwap<Site>;
