//! Per-request state: one [`RequestCtx`] per request, created by Pingora in
//! `new_ctx` and dropped after `logging`, which is what releases the
//! in-flight guard however the request ended.

use std::sync::Arc;
use std::time::Instant;

use super::route::RouteRuntime;
use crate::upstream::load::InflightGuard;

pub struct RequestCtx {
    pub started: Instant,
    /// Set in `request_filter`; `None` means no route matched (404).
    pub route: Option<Arc<RouteRuntime>>,
    /// Backends already tried for this request, by index, in order.
    pub tried: Vec<usize>,
    /// The current attempt's hold on its backend.
    pub inflight: Option<InflightGuard>,
    /// Status of an answer switchyard made itself (errors, 404), for logging.
    pub own_status: Option<u16>,
}

impl RequestCtx {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            route: None,
            tried: Vec::new(),
            inflight: None,
            own_status: None,
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
