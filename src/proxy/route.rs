//! A route as the proxy uses it: the configured route plus its upstream, its
//! policies, rate limiter and sticky settings, and pre-resolved metric handles.

use std::sync::Arc;
use std::time::Instant;

use prometheus::{Histogram, IntCounter};

use crate::admin::status_counters::StatusCounters;
use crate::admin::Metrics;
use crate::config::{Compress, RetryReason, Route, Sticky};
use crate::filters::rate_limit::Store;
use crate::policy::{InflightLimit, RoutePolicy};
use crate::upstream::idle::IdleConns;
use crate::upstream::Upstream;

pub struct RouteRuntime {
    pub name: String,
    pub path_prefix: String,
    pub strip_prefix: bool,
    /// `None` for a route that only redirects.
    pub upstream: Option<Arc<Upstream>>,
    pub policy: RoutePolicy,
    /// Shared with the previous generation's route of the same name while
    /// its `rate_limit` is unchanged (a reload keeps the buckets).
    pub rate_limit: Option<Arc<Store>>,
    pub sticky: Option<Sticky>,
    /// `compress`: `None` costs the request nothing.
    pub compress: Option<Arc<Compress>>,
    pub duration: Histogram,
    pub rate_limited: IntCounter,
    /// `switchyard_http_requests_total` by status.
    pub requests: StatusCounters,
    /// `switchyard_backend_requests_total`, by backend index.
    pub backend_requests: Vec<IntCounter>,
    /// `switchyard_upstream_retries_total`, by [`RetryReason::index`].
    pub retries: Vec<IntCounter>,
    /// `switchyard_retry_budget_exhausted_total`.
    pub budget_exhausted: IntCounter,
    /// Idle keep-alive connections to the upstream's backends, for the
    /// HTTP/1 forwarder; shared by the listener's routes to that upstream.
    pub idle: Arc<IdleConns>,
}

impl RouteRuntime {
    /// `max_body_bytes` is the server's, for a route that sets none;
    /// `store` the rate-limit store to keep (else a new one is made).
    pub fn new(
        listener: &str,
        route: &Route,
        upstream: Option<Arc<Upstream>>,
        idle: Arc<IdleConns>,
        metrics: &Metrics,
        max_body_bytes: u64,
        store: Option<Arc<Store>>,
    ) -> Self {
        let upstream_name = upstream.as_ref().map_or("", |u| u.spec.name.as_str());
        let duration =
            metrics
                .http_duration
                .with_label_values(&[listener, &route.name, upstream_name]);
        let rate_limited = metrics
            .rate_limited
            .with_label_values(&[listener, &route.name]);
        let backend_requests = upstream.as_ref().map_or_else(Vec::new, |u| {
            let spec = &u.spec;
            spec.backends
                .iter()
                .map(|b| {
                    metrics
                        .backend_requests
                        .with_label_values(&[&spec.name, &b.addr])
                })
                .collect()
        });
        let retries = RetryReason::ALL
            .iter()
            .map(|r| {
                metrics
                    .upstream_retries
                    .with_label_values(&[upstream_name, r.name()])
            })
            .collect();
        let budget_exhausted = metrics
            .retry_budget_exhausted
            .with_label_values(&[upstream_name]);
        let requests =
            StatusCounters::new(&metrics.http_requests, listener, &route.name, upstream_name);
        let policy = RoutePolicy {
            redirect: route.redirect.clone(),
            allow: route.allow.clone(),
            deny: route.deny.clone(),
            max_body_bytes: route.max_body_bytes.unwrap_or(max_body_bytes),
            inflight: route.max_inflight.map(|n| InflightLimit::new(n.get())),
            timeout: route.timeout,
            request_headers: route.request_headers.clone(),
            response_headers: route.response_headers.clone().map(Arc::new),
        };
        Self {
            name: route.name.clone(),
            path_prefix: route.path_prefix.clone(),
            strip_prefix: route.strip_prefix,
            upstream,
            policy,
            rate_limit: route.rate_limit.as_ref().map(|rl| {
                store.unwrap_or_else(|| {
                    Arc::new(Store::new(
                        rl,
                        listener,
                        &route.name,
                        &metrics.rate_limit_store_errors,
                        Instant::now(),
                    ))
                })
            }),
            sticky: route.sticky.clone(),
            compress: route.compress.clone(),
            duration,
            rate_limited,
            requests,
            backend_requests,
            retries,
            budget_exhausted,
            idle,
        }
    }
}
