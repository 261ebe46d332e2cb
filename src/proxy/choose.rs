//! Which backend an attempt goes to: the sticky cookie's backend when it is
//! still usable, otherwise the upstream's policy (with the consistent-hash key
//! when the policy needs one). Runs in `upstream_peer`, once per attempt.

use std::borrow::Cow;
use std::net::IpAddr;

use pingora::http::RequestHeader;

use super::ctx::RequestCtx;
use super::route::RouteRuntime;
use crate::config::Policy;
use crate::filters::sticky::{self, StickyKey};
use crate::upstream::hash_key::key_or_client_ip;
use crate::upstream::{Attempt, Upstream};

/// Picks this attempt's backend. On a sticky route, a valid cookie naming a
/// usable backend pins it; otherwise the policy chooses and `ctx.set_cookie`
/// is set so the client is pinned to the new choice.
pub fn choose(
    route: &RouteRuntime,
    req: &RequestHeader,
    client_ip: Option<IpAddr>,
    key: &StickyKey,
    ctx: &mut RequestCtx,
) -> Option<Attempt> {
    let upstream = route.upstream.as_ref()?;
    if ctx.tried.is_empty() {
        // The retry budget's measure of traffic.
        upstream.first_try();
    }
    let Some(sticky_cfg) = &route.sticky else {
        return upstream.select(&hash_key(upstream, req, client_ip), &ctx.tried);
    };
    let addrs = || upstream.spec.backends.iter().map(|b| b.addr.as_str());
    let pinned = sticky::cookie(
        req.headers.get_all(http::header::COOKIE),
        &sticky_cfg.cookie,
    )
    .and_then(|token| key.backend_for(&upstream.spec.name, token, addrs()))
    .and_then(|index| upstream.select_pinned(index, &ctx.tried));
    if let Some(attempt) = pinned {
        if ctx.tried.is_empty() {
            ctx.set_cookie = None;
        }
        return Some(attempt);
    }
    let attempt = upstream.select(&hash_key(upstream, req, client_ip), &ctx.tried)?;
    let backend = upstream.backend(attempt.index);
    let token = key.token(&upstream.spec.name, attempt.index, &backend.addr);
    ctx.set_cookie = Some(sticky::set_cookie_value(
        &sticky_cfg.cookie,
        &token,
        sticky_cfg.max_age,
    ));
    Some(attempt)
}

fn hash_key<'a>(
    upstream: &Upstream,
    req: &'a RequestHeader,
    client_ip: Option<IpAddr>,
) -> Cow<'a, [u8]> {
    let spec = &upstream.spec;
    match &spec.hash_key {
        Some(k) if spec.policy == Policy::ConsistentHash => key_or_client_ip(k, req, client_ip),
        _ => Cow::Borrowed(&b""[..]),
    }
}
