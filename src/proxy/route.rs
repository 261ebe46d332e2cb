//! A route as the proxy uses it: the configured route plus its upstream, its
//! rate limiter and sticky settings, and pre-resolved metric handles.

use std::sync::Arc;
use std::time::Instant;

use prometheus::{Histogram, IntCounter};

use crate::admin::status_counters::StatusCounters;
use crate::admin::Metrics;
use crate::config::{Compress, Route, Sticky};
use crate::filters::rate_limit::Store;
use crate::upstream::idle::IdleConns;
use crate::upstream::Upstream;

pub struct RouteRuntime {
    pub name: String,
    pub path_prefix: String,
    pub strip_prefix: bool,
    pub upstream: Arc<Upstream>,
    pub rate_limit: Option<Store>,
    pub sticky: Option<Sticky>,
    /// `compress`: `None` costs the request nothing.
    pub compress: Option<Arc<Compress>>,
    pub duration: Histogram,
    pub rate_limited: IntCounter,
    /// `switchyard_http_requests_total` by status.
    pub requests: StatusCounters,
    /// `switchyard_backend_requests_total`, by backend index.
    pub backend_requests: Vec<IntCounter>,
    /// `switchyard_upstream_retries_total`.
    pub retries: IntCounter,
    /// Idle keep-alive connections to the upstream's backends, for the
    /// HTTP/1 forwarder; shared by the listener's routes to that upstream.
    pub idle: Arc<IdleConns>,
}

impl RouteRuntime {
    pub fn new(
        listener: &str,
        route: &Route,
        upstream: Arc<Upstream>,
        idle: Arc<IdleConns>,
        metrics: &Metrics,
    ) -> Self {
        let duration =
            metrics
                .http_duration
                .with_label_values(&[listener, &route.name, &route.upstream]);
        let rate_limited = metrics
            .rate_limited
            .with_label_values(&[listener, &route.name]);
        let spec = &upstream.spec;
        let backend_requests = spec
            .backends
            .iter()
            .map(|b| {
                metrics
                    .backend_requests
                    .with_label_values(&[&spec.name, &b.addr])
            })
            .collect();
        let retries = metrics.upstream_retries.with_label_values(&[&spec.name]);
        let requests =
            StatusCounters::new(&metrics.http_requests, listener, &route.name, &spec.name);
        Self {
            name: route.name.clone(),
            path_prefix: route.path_prefix.clone(),
            strip_prefix: route.strip_prefix,
            upstream,
            rate_limit: route.rate_limit.as_ref().map(|rl| {
                Store::new(
                    rl,
                    listener,
                    &route.name,
                    &metrics.rate_limit_store_errors,
                    Instant::now(),
                )
            }),
            sticky: route.sticky.clone(),
            compress: route.compress.clone(),
            duration,
            rate_limited,
            requests,
            backend_requests,
            retries,
            idle,
        }
    }
}
