//! The access log line for a finished request, gathered in the `logging`
//! phase (or at the end of an HTTP/1 forward) from the request and its context.

use std::net::IpAddr;
use std::time::SystemTime;

use pingora::http::RequestHeader;

use super::RequestCtx;
use crate::access_log::{rfc3339_millis, AccessLog, Entry};
use crate::router::request_host;

/// Logs one line for the request `req` that just ended with `status`,
/// having sent `bytes_sent` body bytes.
pub fn record(
    log: &AccessLog,
    req: &RequestHeader,
    client_ip: Option<IpAddr>,
    ctx: &RequestCtx,
    listener: &str,
    status: u16,
    bytes_sent: usize,
) {
    let elapsed = ctx.started.elapsed();
    let started = SystemTime::now()
        .checked_sub(elapsed)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let host = request_host(req);
    let route = ctx.route.as_deref();
    let backend = route
        .zip(ctx.tried.last())
        .and_then(|(r, &i)| Some(r.upstream.as_ref()?.backend(i).addr.as_str()));
    log.record(&Entry {
        time: rfc3339_millis(started),
        client_ip,
        method: req.method.as_str(),
        host: &host,
        path: req.uri.path_and_query().map_or("/", |pq| pq.as_str()),
        status,
        listener,
        route: route.map(|r| r.name.as_str()),
        upstream: route
            .and_then(|r| r.upstream.as_ref())
            .map(|u| u.spec.name.as_str()),
        request_id: ctx.request_id.as_ref().and_then(|(_, v)| v.to_str().ok()),
        backend,
        duration_ms: elapsed.as_micros() as f64 / 1000.0,
        bytes_sent,
        retries: ctx.tried.len().saturating_sub(1),
    });
}
