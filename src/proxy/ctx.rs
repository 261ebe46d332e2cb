//! Per-request state: one [`RequestCtx`] per request, created by Pingora in
//! `new_ctx` and dropped after `logging`, which is what releases the
//! in-flight count of the current attempt however the request ended.

use std::sync::Arc;
use std::time::Instant;

use super::route::RouteRuntime;
use crate::filters::rate_limit::Decision;
use crate::policy::body_limit::Allowance;
use crate::policy::Slot;
use crate::upstream::Attempt;

pub struct RequestCtx {
    pub started: Instant,
    /// The listener's site as the request found it (Pingora's path; the
    /// forwarder passes its site along instead): one generation from the
    /// request's start to its end, whatever a reload swaps meanwhile.
    pub site: Option<Arc<super::Site>>,
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
    /// The next try, chosen when the current one failed in a way
    /// `retry_on` retries ([`super::retry::next_try`]); Pingora's path.
    pub next: Option<super::retry::Next>,
    /// The request id (`server.request_id`): its header name and value.
    pub request_id: Option<(http::HeaderName, http::HeaderValue)>,
    /// The route's `max_inflight` slot, held to the request's end.
    pub slot: Option<Slot>,
    /// The client IP the request is judged by (Pingora's path; see
    /// [`crate::policy::client_ip`]).
    pub client_ip: Option<std::net::IpAddr>,
    /// What is left of `max_body_bytes` for a body that streams (Pingora's path).
    pub body_allowance: Option<Allowance>,
    /// The route's `timeout` runs out at this instant.
    pub deadline: Option<Instant>,
    /// The response body's encoder, on Pingora's path, when it is
    /// compressed ([`crate::compress::pingora`]).
    pub compress: Option<crate::compress::pingora::BodyEncoder>,
    /// Every usable backend was at `max_conns` (and the queue, if any, full
    /// or waited out): the 503 carries `Retry-After: 1` (Pingora's path).
    pub overloaded: bool,
}

impl RequestCtx {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            site: None,
            route: None,
            tried: Vec::new(),
            attempt: None,
            upstream_status: None,
            own_status: None,
            rate: None,
            set_cookie: None,
            again: false,
            next: None,
            request_id: None,
            slot: None,
            client_ip: None,
            body_allowance: None,
            deadline: None,
            compress: None,
            overloaded: false,
        }
    }
}

impl RequestCtx {
    /// The headers on one of switchyard's own answers: `extra`, then the
    /// request id.
    pub fn answer_headers<'a>(&'a self, extra: &'a [(&'a str, String)]) -> Vec<(&'a str, String)> {
        let mut all = extra.to_vec();
        if let Some((name, value)) = &self.request_id {
            all.push((
                name.as_str(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
        all
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
