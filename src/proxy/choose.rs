//! Which backend an attempt goes to: the sticky cookie's backend when it is
//! still usable, otherwise the upstream's policy (with the consistent-hash key
//! when the policy needs one). Runs once per attempt, on both HTTP engines
//! (`upstream_peer`, the forwarder's `reach`). A backend at `max_conns` is
//! skipped, the sticky one included; when every usable backend is full the
//! request waits in the upstream's queue and both steps run again once a
//! slot frees.

use std::borrow::Cow;
use std::net::IpAddr;

use pingora::http::RequestHeader;

use super::ctx::RequestCtx;
use super::route::RouteRuntime;
use crate::config::Policy;
use crate::filters::sticky::{self, StickyKey};
use crate::upstream::hash_key::key_or_client_ip;
use crate::upstream::{Attempt, NoRoom, Unavailable, Upstream};

/// Picks this attempt's backend, waiting in the upstream's queue while
/// every usable backend is full. On a sticky route, a valid cookie naming a
/// usable backend pins it; otherwise the policy chooses and `ctx.set_cookie`
/// is set so the client is pinned to the new choice.
pub async fn choose(
    route: &RouteRuntime,
    req: &RequestHeader,
    client_ip: Option<IpAddr>,
    key: &StickyKey,
    ctx: &mut RequestCtx,
) -> Result<Attempt, Unavailable> {
    let Some(upstream) = route.upstream.as_ref() else {
        return Err(Unavailable::NoBackend);
    };
    if ctx.tried.is_empty() {
        // The retry budget's measure of traffic.
        upstream.first_try();
    }
    upstream
        .wait_for(|| choose_now(upstream, route, req, client_ip, key, ctx))
        .await
}

/// [`choose`] without waiting: `Err(NoRoom::Full)` when every usable
/// backend is at its `max_conns`.
pub fn choose_now(
    upstream: &Upstream,
    route: &RouteRuntime,
    req: &RequestHeader,
    client_ip: Option<IpAddr>,
    key: &StickyKey,
    ctx: &mut RequestCtx,
) -> Result<Attempt, NoRoom> {
    let Some(sticky_cfg) = &route.sticky else {
        return upstream.select_or_full(&hash_key(upstream, req, client_ip), &ctx.tried);
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
        return Ok(attempt);
    }
    let attempt = upstream.select_or_full(&hash_key(upstream, req, client_ip), &ctx.tried)?;
    let backend = upstream.backend(attempt.index);
    let token = key.token(&upstream.spec.name, attempt.index, &backend.addr);
    ctx.set_cookie = Some(sticky::set_cookie_value(
        &sticky_cfg.cookie,
        &token,
        sticky_cfg.max_age,
    ));
    Ok(attempt)
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
