//! switchyard: an edge proxy and load balancer on Cloudflare's Pingora.
//!
//! The binary (`main.rs`) only parses the command line; everything lives here
//! so tests can reach it:
//!
//! - [`config`]: YAML → validated model, with every problem's path and line.
//! - [`router`]: host + path → route.
//! - [`upstream`]: backend groups, balancing policies, live load.
//! - [`proxy`]: the Pingora `ProxyHttp` dispatcher and per-request context.
//! - [`policy`]: route policies (redirect, allow/deny, body and in-flight
//!   limits, header rules, request ids), decided once for every engine.
//! - [`proxy_protocol`]: PROXY v1/v2 headers from L4 balancers and to backends.
//! - [`filters`]: rate limits and sticky cookies, per route.
//! - [`compress`]: response compression for routes with `compress`.
//! - [`accept`]: accepting client connections for the HTTP listeners.
//! - [`http_guard`]: the HTTP/1 connection loop and its head limits.
//! - [`h1`]: the HTTP/1 forwarder for plain HTTP/1.1 requests and backends.
//! - [`http2`]: HTTP/2 clients, their streams forwarded by the same pipeline.
//! - [`l4`]: TCP listeners.
//! - [`admin`]: `/metrics`, `/status`, `/healthz`.
//! - [`access_log`]: one JSON line per request, written off the request path.
//! - [`live`]: the live config generation, swapped by reloads with state kept.
//! - [`server`]: builds the Pingora server from a config.
//! - [`upgrade`]: `switchyard upgrade`, the graceful replacement of a running instance.
//! - [`reload`]: `switchyard reload`, the in-place reload of a running instance.
//! - [`demo`]: the demo backend used by `make run` and the tests.
//! - [`sim`]: `switchyard sim`, offline simulations of the selectors and breakers.

pub mod accept;
pub mod access_log;
pub mod admin;
pub mod compress;
pub mod config;
pub mod conn_cap;
pub mod conn_limit;
pub mod demo;
pub mod discovery;
pub mod fd_limit;
pub mod filters;
pub mod h1;
pub mod http2;
pub mod http_guard;
pub mod l4;
pub mod live;
pub mod policy;
pub mod proxy;
pub mod proxy_protocol;
pub mod reload;
pub mod router;
pub mod server;
pub mod sim;
pub mod tls;
pub mod upgrade;
pub mod upstream;
