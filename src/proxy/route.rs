//! A route as the proxy uses it: the configured route plus its upstream and
//! pre-resolved metric handles.

use std::sync::Arc;

use prometheus::Histogram;

use crate::admin::Metrics;
use crate::config::Route;
use crate::upstream::Upstream;

pub struct RouteRuntime {
    pub name: String,
    pub path_prefix: String,
    pub strip_prefix: bool,
    pub upstream: Arc<Upstream>,
    pub duration: Histogram,
}

impl RouteRuntime {
    pub fn new(listener: &str, route: &Route, upstream: Arc<Upstream>, metrics: &Metrics) -> Self {
        let duration =
            metrics
                .http_duration
                .with_label_values(&[listener, &route.name, &route.upstream]);
        Self {
            name: route.name.clone(),
            path_prefix: route.path_prefix.clone(),
            strip_prefix: route.strip_prefix,
            upstream,
            duration,
        }
    }
}
