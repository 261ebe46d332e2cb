//! The end of a request on either engine: the outcome its last attempt
//! tells the circuit breaker, and the request counted under its status.

use pingora::Error;

use super::ctx::RequestCtx;
use super::Site;
use crate::upstream::breaker::Outcome;

impl Site {
    /// The end of a request on either path: the attempt's outcome to the
    /// breaker (`None`: only the client failed, which says nothing about the
    /// backend), then the request counted under its final `status`.
    pub(crate) fn settle(&self, ctx: &mut RequestCtx, status: u16, outcome: Option<Outcome>) {
        let upstream = ctx.route.as_ref().and_then(|r| r.upstream.as_ref());
        if let (Some(upstream), Some(attempt)) = (upstream, ctx.attempt.take()) {
            match outcome {
                Some(outcome) => upstream.report(attempt, outcome),
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

/// What a finished attempt tells the circuit breaker: a 5xx, or an error on
/// the backend's side (timeout, reset, malformed response), is a failure; an
/// answer below 500 that reached the client is a success. `None` when only
/// the client failed (it went away): that says nothing about the backend.
pub(super) fn outcome(upstream_status: Option<u16>, e: Option<&Error>) -> Option<Outcome> {
    let backend_failed = e.is_some_and(|e| *e.esource() == pingora::ErrorSource::Upstream);
    match upstream_status {
        Some(s) if s >= 500 => Some(Outcome::Failure),
        _ if backend_failed => Some(Outcome::Failure),
        Some(_) if e.is_none() => Some(Outcome::Success),
        _ => None,
    }
}
