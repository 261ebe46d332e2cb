//! Per-request state: one [`RequestCtx`] per request, created by Pingora in
//! `new_ctx` and dropped after `logging`, which is what releases the
//! in-flight count of the current attempt however the request ended.

use std::sync::Arc;
use std::time::Instant;

use super::route::RouteRuntime;
use crate::filters::rate_limit::Decision;
use crate::upstream::Attempt;

pub struct RequestCtx {
    pub started: Instant,
    /// Set in `request_filter`; `None` means no route matched (404).
    pub route: Option<Arc<RouteRuntime>>,
    /// Backends already tried for this request, by index, in order.
    pub tried: Vec<usize>,
    /// The current try: in-flight count and breaker permit.
    pub attempt: Option<Attempt>,
    /// Status of the backend's response headers, once they arrived.
    pub upstream_status: Option<u16>,
    /// Status of an answer switchyard made itself (errors, 404, 429).
    pub own_status: Option<u16>,
    /// The route's rate limit decision, for the `RateLimit-*` headers.
    pub rate: Option<Decision>,
    /// A `Set-Cookie` value to add to the response (sticky routes).
    pub set_cookie: Option<String>,
    /// The current try's reused backend connection broke before any answer
    /// (the backend had closed it while idle): the next try goes to the
    /// same backend, with the same attempt, on another connection.
    pub again: bool,
    /// The response body's encoder, on Pingora's path, when it is
    /// compressed ([`crate::compress::pingora`]).
    pub compress: Option<crate::compress::pingora::BodyEncoder>,
}

impl RequestCtx {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            route: None,
            tried: Vec::new(),
            attempt: None,
            upstream_status: None,
            own_status: None,
            rate: None,
            set_cookie: None,
            again: false,
            compress: None,
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
