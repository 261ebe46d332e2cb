//! The shared store (`store: redis://HOST:PORT[/DB]`): every instance that
//! points a route at the same Redis takes from the same buckets.
//!
//! One request is one round trip: `EVALSHA` of [`GCRA`] (`gcra.lua`), the same
//! token bucket as the local [`Bucket`](super::Bucket) (GCRA in integer
//! units), run atomically by Redis, reading and writing one key whose TTL is
//! the time until the bucket is full again. The script is loaded on each new
//! connection; should Redis forget it (`SCRIPT FLUSH`, a failover) the call
//! gets `NOSCRIPT` and falls back to `SCRIPT LOAD` + `EVALSHA` once.
//!
//! **Clock:** Redis's (`TIME` in the script), not the proxy's: instances
//! whose clocks disagree still refill a shared bucket at one rate, and the
//! proxy's `now` is not needed.
//!
//! **Answers** match the local store's: `allowed`, whole tokens `remaining`,
//! `limit` = `burst`, and `retry_after` (microseconds from the script, which
//! the proxy rounds up to whole seconds ≥ 1).
//!
//! **Failures** (see [`circuit`] for the reconnect policy): each request
//! gets at most [`STORE_TIMEOUT`] from Redis, waiting for a connection
//! included. When Redis cannot decide — unreachable, too slow, an error
//! reply, or skipped because it failed a moment ago —
//! `switchyard_rate_limit_store_errors_total{listener,route}` goes up and
//! `on_store_error` decides: `allow` lets the request through without
//! `RateLimit-*` headers, `deny` answers 429 with `Retry-After: 1`.
//!
//! Keys: see [`key`].

pub mod circuit;
pub mod key;
pub mod link;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use prometheus::IntCounter;
use redis::{RedisError, Script};

use super::Decision;
use crate::config::{RateKey, RateLimit, StoreErrorPolicy};
use link::RedisLink;

/// The script, run with one key and `rate`, `per` (µs), `burst`.
pub const GCRA: &str = include_str!("redis_store/gcra.lua");

/// The most a request waits on Redis, connecting included.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(100);

/// `Retry-After` of a request denied because Redis could not decide.
pub const DENY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why the store could not decide.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis is down (a recent call or connect failed)")]
    Down,
    #[error("redis did not answer within {} ms", STORE_TIMEOUT.as_millis())]
    Timeout,
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
}

/// The shared buckets of one route.
pub struct RedisLimiter {
    link: Arc<RedisLink>,
    script: Script,
    prefix: Vec<u8>,
    key: RateKey,
    rate: u64,
    per_us: u64,
    burst: u64,
    policy: StoreErrorPolicy,
    errors: IntCounter,
    /// Error replies are logged at most once a second: ms since `born`.
    next_log_ms: AtomicU64,
    born: Instant,
}

impl RedisLimiter {
    /// The store of route `route` on `listener` for `cfg`, at `url`; `errors`
    /// counts requests Redis could not decide. Connects on first use.
    pub fn new(
        cfg: &RateLimit,
        url: &str,
        listener: &str,
        route: &str,
        errors: IntCounter,
    ) -> Self {
        let script = Script::new(GCRA);
        Self {
            link: RedisLink::new(url, script.clone()),
            script,
            prefix: key::route_prefix(listener, route),
            key: cfg.key.clone(),
            rate: cfg.rate.max(1),
            per_us: u64::try_from(cfg.per.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
            burst: cfg.burst.max(1),
            policy: cfg.on_store_error,
            errors,
            next_log_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Decides one request. `None`: Redis could not decide and
    /// `on_store_error: allow` lets it through (no `RateLimit-*` to report).
    pub async fn check_request(
        &self,
        client_ip: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Option<Decision> {
        let key = key::bucket_key(&self.prefix, &self.key, client_ip, headers);
        match self.take(&key).await {
            Ok(decision) => Some(decision),
            Err(e) => {
                self.errors.inc();
                self.log(&e);
                match self.policy {
                    StoreErrorPolicy::Allow => None,
                    StoreErrorPolicy::Deny => Some(Decision {
                        allowed: false,
                        remaining: 0,
                        limit: self.burst,
                        retry_after: DENY_RETRY_AFTER,
                    }),
                }
            }
        }
    }

    /// Takes a token from bucket `key` (a full Redis key): one round trip.
    pub async fn take(&self, key: &[u8]) -> Result<Decision, StoreError> {
        let deadline = tokio::time::Instant::now() + STORE_TIMEOUT;
        let (mut conn, generation) = tokio::time::timeout_at(deadline, self.link.connection())
            .await
            .map_err(|_| StoreError::Timeout)??;
        let call_started = tokio::time::Instant::now();
        let mut call = self.script.prepare_invoke();
        call.key(key)
            .arg(self.rate)
            .arg(self.per_us)
            .arg(self.burst);
        let reply =
            tokio::time::timeout_at(deadline, call.invoke_async::<(i64, i64, i64)>(&mut conn))
                .await;
        match reply {
            Ok(Ok((allowed, remaining, wait_us))) => Ok(Decision {
                allowed: allowed == 1,
                remaining: u64::try_from(remaining).unwrap_or(0),
                limit: self.burst,
                retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
            }),
            Ok(Err(e)) => {
                if breaks_connection(&e) {
                    self.link.call_failed(generation, &e);
                }
                Err(StoreError::Redis(e))
            }
            Err(_) => {
                // Blame the connection only when the call had a fair share of
                // the budget, not the crumbs left after waiting for a connect.
                if deadline - call_started >= STORE_TIMEOUT / 2 {
                    self.link.call_failed(generation, &StoreError::Timeout);
                }
                Err(StoreError::Timeout)
            }
        }
    }

    /// True while a connection to Redis is up.
    pub fn is_connected(&self) -> bool {
        self.link.is_up()
    }

    /// Connection trouble is logged by the link, once per outage; error
    /// replies (a full Redis, a foreign value under our key) here, at most
    /// once a second.
    fn log(&self, e: &StoreError) {
        if !matches!(e, StoreError::Redis(r) if !breaks_connection(r)) {
            return;
        }
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_log_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_log_ms
                .compare_exchange(
                    next,
                    now.saturating_add(1000),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            log::warn!(
                "rate limit store: {e}; on_store_error applies (logged at most once a second)"
            );
        }
    }
}

/// Errors after which the connection is not trusted: I/O, a dropped
/// connection, a server turned read-only (failover). Error replies such as
/// `OOM` or `WRONGTYPE` leave a healthy connection.
fn breaks_connection(e: &RedisError) -> bool {
    e.is_unrecoverable_error() || e.kind() == redis::ErrorKind::ReadOnly
}
