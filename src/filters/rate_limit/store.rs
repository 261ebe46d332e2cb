//! Where a route's buckets live, behind one call for the proxy:
//! [`Store::check_request`] answers the same [`Decision`] whether the buckets
//! are in this process ([`RateLimiter`], synchronous) or shared through Redis
//! ([`RedisLimiter`], one round trip).

use std::net::IpAddr;
use std::time::Instant;

use http::HeaderMap;
use prometheus::IntCounterVec;

use super::redis_store::RedisLimiter;
use super::{Decision, RateLimiter};
use crate::config::{RateLimit, RateStore};

pub enum Store {
    Local(RateLimiter),
    Redis(RedisLimiter),
}

impl Store {
    /// The store `cfg` names for route `route` of `listener`. `store_errors`
    /// is `switchyard_rate_limit_store_errors_total`; only a Redis store gets
    /// a series in it.
    pub fn new(
        cfg: &RateLimit,
        listener: &str,
        route: &str,
        store_errors: &IntCounterVec,
        now: Instant,
    ) -> Self {
        match &cfg.store {
            RateStore::Local => Store::Local(RateLimiter::new(cfg, now)),
            RateStore::Redis(url) => {
                let errors = store_errors.with_label_values(&[listener, route]);
                Store::Redis(RedisLimiter::new(cfg, url, listener, route, errors))
            }
        }
    }

    /// Decides one request (see [`RateLimiter::check_request`]; `now` is used
    /// by the local store, Redis keeps its own time). `None`: the store could
    /// not decide and `on_store_error: allow` lets the request through.
    pub async fn check_request(
        &self,
        client_ip: Option<IpAddr>,
        headers: &HeaderMap,
        now: Instant,
    ) -> Option<Decision> {
        match self {
            Store::Local(l) => Some(l.check_request(client_ip, headers, now)),
            Store::Redis(r) => r.check_request(client_ip, headers).await,
        }
    }
}
