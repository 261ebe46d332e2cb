//! The request as the backend gets it and the response head as the client
//! gets it, on Pingora's path (the forwarder writes the same from the wire:
//! [`crate::h1::head`]); and the target normalised before routing.

use std::borrow::Cow;
use std::net::IpAddr;

use http::uri::{PathAndQuery, Uri};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{Error, ErrorType, Result};

use super::{headers, RequestCtx, RouteRuntime};
use crate::router::{absolute_form_authority, normalize_path, strip_prefix};

/// The request the backend gets (SPEC "Headers to backends"): the route's
/// prefix stripped when it says so, `TE: trailers` kept, `X-Forwarded-*` set.
/// Hop-by-hop headers are already gone (Pingora's upstream policy, or
/// [`headers::strip_request_hop_by_hop`] on the HTTP/1 path).
pub(crate) fn rewrite_request(
    route: Option<&RouteRuntime>,
    client: &RequestHeader,
    upstream: &mut RequestHeader,
    client_ip: Option<IpAddr>,
    scheme: &'static str,
) -> Result<()> {
    if let Some(target) = upstream_target(route, upstream) {
        set_path_and_query(upstream, &target)?;
    }
    headers::restore_te_trailers(client, upstream)?;
    headers::set_forwarding(upstream, client_ip, scheme)
}

/// The request-target's length as the client sent it (HTTP/2: `:path`).
pub(crate) fn target_len(req: &RequestHeader) -> usize {
    req.uri.path_and_query().map_or(0, |pq| pq.as_str().len())
}

/// The target the backend gets when it is not the client's: the route's
/// prefix stripped, when the route says so.
pub(crate) fn upstream_target(route: Option<&RouteRuntime>, req: &RequestHeader) -> Option<String> {
    let route = route.filter(|r| r.strip_prefix)?;
    let pq = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    Some(strip_prefix(&route.path_prefix, pq))
}

/// The response head the client gets: hop-by-hop headers out, then the
/// sticky cookie and the `RateLimit-*` headers this request earned.
pub(crate) fn rewrite_response(resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
    headers::strip_response_hop_by_hop(resp);
    // Interim (1xx) heads pass as they are; the additions go on the final one.
    if resp.status.is_informational() {
        return Ok(());
    }
    headers::ResponseAdditions::take(ctx)?.apply(resp)
}

/// Turns an absolute-form target into origin-form with its authority as
/// Host (RFC 9112 §3.2.2), and removes dot-segments from the path.
pub(crate) fn to_origin_form(req: &mut RequestHeader) -> Result<()> {
    let authority = absolute_form_authority(req).map(str::to_owned);
    if let Some(authority) = &authority {
        req.insert_header(http::header::HOST, authority)?;
    }
    let pq = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let (path, query) = match pq.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pq, None),
    };
    let normalized = normalize_path(if path.is_empty() { "/" } else { path });
    if authority.is_none() && !path.is_empty() && matches!(normalized, Cow::Borrowed(_)) {
        // Already origin form and normal: the usual request, left as it is.
        return Ok(());
    }
    let rebuilt = match query {
        Some(q) => format!("{normalized}?{q}"),
        None => normalized.into_owned(),
    };
    if authority.is_some() || rebuilt != pq {
        set_path_and_query(req, &rebuilt)?;
    }
    Ok(())
}

/// Sets the request's target (400 if it is no valid one).
fn set_path_and_query(req: &mut RequestHeader, pq: &str) -> Result<()> {
    let pq: PathAndQuery = pq
        .parse()
        .map_err(|_| Error::explain(ErrorType::HTTPStatus(400), "bad request target"))?;
    req.set_uri(Uri::from(pq));
    Ok(())
}
