//! The rate limit step of `request_filter`: ask the route's store, answer
//! 429 when it denies, keep the decision for the `RateLimit-*` response
//! headers when it allows.

use std::time::Instant;

use pingora::proxy::Session;

use super::ctx::RequestCtx;
use super::respond;
use super::route::RouteRuntime;

/// True when the request was answered (429) and must go no further.
pub async fn over_limit(session: &mut Session, route: &RouteRuntime, ctx: &mut RequestCtx) -> bool {
    let Some(store) = &route.rate_limit else {
        return false;
    };
    let decision = store
        .check_request(ctx.client_ip, &session.req_header().headers, Instant::now())
        .await;
    // None: the store could not decide and on_store_error lets it through.
    let Some(decision) = decision else {
        return false;
    };
    if decision.allowed {
        ctx.rate = Some(decision);
        return false;
    }
    route.rate_limited.inc();
    ctx.own_status = Some(429);
    let headers = [
        ("Retry-After", decision.retry_after_secs().to_string()),
        ("RateLimit-Limit", decision.limit.to_string()),
        ("RateLimit-Remaining", decision.remaining.to_string()),
    ];
    respond::answer(session, 429, &ctx.answer_headers(&headers)).await;
    true
}
