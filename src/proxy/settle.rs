//! The end of a request on either engine: how its last attempt ended, told
//! to the circuit breaker and outlier detection, and the request counted
//! under its status.

use pingora::{Error, ErrorType};

use super::ctx::RequestCtx;
use super::Site;
use crate::upstream::Ended;

impl Site {
    /// The end of a request on either path: how the attempt ended, to the
    /// breaker and outlier detection (`None`: only the client failed, which
    /// says nothing about the backend), then the request counted under its
    /// final `status`.
    pub(crate) fn settle(&self, ctx: &mut RequestCtx, status: u16, ended: Option<Ended>) {
        let upstream = ctx.route.as_ref().and_then(|r| r.upstream.as_ref());
        if let (Some(upstream), Some(attempt)) = (upstream, ctx.attempt.take()) {
            match ended {
                Some(ended) => upstream.report(attempt, ended),
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

/// How a finished attempt ended, as the forwarder reports it too: the
/// backend's answer when it came whole (a 5xx one also when the client then
/// failed), a timeout or a reset (malformed or cut-short answers included)
/// when the error is on the backend's side. `None` when only the client
/// failed (it went away): that says nothing about the backend.
pub(super) fn ended(upstream_status: Option<u16>, e: Option<&Error>) -> Option<Ended> {
    let backend_error = e.filter(|e| *e.esource() == pingora::ErrorSource::Upstream);
    match (upstream_status, backend_error) {
        (_, Some(e)) => Some(match e.etype() {
            ErrorType::ReadTimedout | ErrorType::WriteTimedout => Ended::Timeout,
            ErrorType::ConnectTimedout | ErrorType::ConnectRefused | ErrorType::ConnectNoRoute => {
                Ended::ConnectFailure
            }
            _ => Ended::Reset,
        }),
        (Some(s), None) if s >= 500 || e.is_none() => Some(Ended::Answered(s)),
        _ => None,
    }
}
