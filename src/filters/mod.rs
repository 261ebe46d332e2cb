//! Per-route request filters, applied in `request_filter` after routing and
//! before a backend is chosen:
//!
//! - [`rate_limit`]: token buckets per key; a denial becomes a 429 with
//!   `Retry-After`.
//! - [`sticky`]: the cookie token that pins a client to a backend, and the
//!   `Cookie`/`Set-Cookie` handling around it.
//!
//! Both are pure of Pingora: they take header values, addresses and `now`
//! and return decisions, so they are tested without a server.

pub mod rate_limit;
pub mod sticky;
