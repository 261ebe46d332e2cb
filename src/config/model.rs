//! The validated config: only meaningful, typed values. Anything that reaches
//! this layer can be served; nothing downstream re-checks it.

pub use super::retry::{RetryOn, RetryReason};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pingora::utils::tls::WrappedX509;

pub use crate::policy::{Cidr, HeaderRules, Redirect, RequestIdSettings};
pub use crate::tls::{CertPair, NameMatch};

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub admin: Option<AdminSettings>,
    /// Sorted by name.
    pub listeners: Vec<Listener>,
    pub upstreams: BTreeMap<String, Arc<UpstreamSpec>>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Worker threads per listener; `None` = one per CPU.
    pub threads: Option<NonZeroUsize>,
    pub pid_file: PathBuf,
    pub upgrade_sock: PathBuf,
    pub grace_period: Duration,
    pub shutdown_timeout: Duration,
    pub error_log: Option<PathBuf>,
    pub access_log: Option<PathBuf>,
    /// Runtime overrides and health, saved when they change and read back
    /// at start (`run`, `run -u`), so they survive `upgrade` and restarts.
    pub state_file: Option<PathBuf>,
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
    /// A request-target longer than this gets 414.
    pub max_uri_bytes: usize,
    pub idle_timeout: Duration,
    /// Request-body limit of every route that sets none; 0 = none.
    pub max_body_bytes: u64,
    pub request_id: Option<RequestIdSettings>,
    /// Client connections over all listeners; 0 = derived from the fd limit
    /// at start ([`crate::fd_limit`]).
    pub max_connections: u32,
    /// DNS servers for backend host names; empty = the system's.
    pub resolvers: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// The write API's bearer token (the content of `admin.token_file`,
    /// trimmed); `None` = every write request gets 403.
    pub token: Option<AdminToken>,
}

/// A secret: its `Debug` never shows it, so it never reaches a log.
#[derive(Clone)]
pub struct AdminToken(pub Arc<str>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub listen: SocketAddr,
    pub tls: Option<ListenerTls>,
    /// Plain http listener also serving HTTP/2 by prior knowledge. (TLS
    /// listeners always offer h2 and http/1.1 by ALPN.)
    pub h2c: bool,
    /// HTTP/1.1 requests may take the own forwarder (`src/h1`); `false`
    /// sends all of them through Pingora's proxy path.
    pub forwarder: bool,
    /// Peers whose `X-Forwarded-For` names the client (http only).
    pub trusted_proxies: Vec<Cidr>,
    /// Every connection starts with a PROXY header naming the client.
    pub proxy_protocol: bool,
    /// Open connections from one client IP (the PROXY source with
    /// `proxy_protocol`); 0 = no cap.
    pub max_connections_per_ip: u32,
    /// Open connections on this listener (0 = only the server-wide cap);
    /// at the cap the listener stops accepting until one closes.
    pub max_connections: u32,
    pub kind: ListenerKind,
}

/// A TLS listener's certificates, loaded and checked at validation.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    /// Presented when no `sni` entry matches, or the client sends no SNI.
    pub default: CertPair,
    /// In config order.
    pub sni: Vec<SniCert>,
}

#[derive(Debug, Clone)]
pub struct SniCert {
    pub names: Vec<NameMatch>,
    pub pair: CertPair,
}

/// TLS to an upstream's backends.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// SNI and the name verified; `None` = each backend's host name.
    pub sni: Option<String>,
    /// Trust anchors; `None` = the system roots.
    pub ca: Option<Arc<[WrappedX509]>>,
    /// `false` only when the operator wrote `verify: false`.
    pub verify: bool,
}

#[derive(Debug, Clone)]
pub enum ListenerKind {
    Http {
        routes: Vec<Route>,
    },
    Tcp {
        upstream: String,
        /// Close a connection after this long without a byte either way.
        idle_timeout: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub host: HostMatch,
    /// Normalized: starts with `/`, no trailing `/` unless it is `/`.
    pub path_prefix: String,
    pub strip_prefix: bool,
    /// `None` only for a route that redirects.
    pub upstream: Option<String>,
    pub rate_limit: Option<RateLimit>,
    pub sticky: Option<Sticky>,
    pub redirect: Option<Redirect>,
    pub request_headers: Option<HeaderRules>,
    pub response_headers: Option<HeaderRules>,
    /// Overrides `server.max_body_bytes` (0 = no limit on this route).
    pub max_body_bytes: Option<u64>,
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
    pub max_inflight: Option<NonZeroUsize>,
    /// The whole exchange, every try, up to the response head.
    pub timeout: Option<Duration>,
    /// Responses compressed for clients that accept it (`None`: never).
    pub compress: Option<Arc<Compress>>,
}

/// A route's `compress` (SPEC "Route policies", README "Compression").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compress {
    /// The `Content-Type`s compressed.
    pub types: Vec<MediaRange>,
    /// A body with a smaller `Content-Length` is sent as it is.
    pub min_bytes: u64,
}

/// A `compress.types` entry, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRange {
    /// `type/subtype`.
    Exact(String),
    /// `type/*`: the type alone is stored.
    AnySubtype(String),
}

/// Which Host headers a route answers. Stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`, stored as the suffix `.example.com`: matches any
    /// subdomain depth, never the bare domain.
    Wildcard(String),
}

impl fmt::Display for HostMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostMatch::Any => f.write_str("any host"),
            HostMatch::Exact(h) => f.write_str(h),
            HostMatch::Wildcard(s) => write!(f, "*{s}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RateLimit {
    pub rate: u64,
    pub per: Duration,
    pub burst: u64,
    pub key: RateKey,
    pub store: RateStore,
    pub on_store_error: StoreErrorPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    ClientIp,
    Header(String),
    Route,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateStore {
    Local,
    Redis(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorPolicy {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct Sticky {
    pub cookie: String,
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    pub name: String,
    pub policy: Policy,
    pub hash_key: Option<HashKey>,
    pub backends: Vec<BackendSpec>,
    pub health_check: Option<HealthCheck>,
    pub circuit_breaker: Option<CircuitBreaker>,
    pub outlier_detection: Option<OutlierDetection>,
    /// Further backends tried after a failure in `retry_on`.
    pub retries: u32,
    /// The failures a request is tried again after (see "Retries").
    pub retry_on: RetryOn,
    /// Retries allowed per first try over the budget's window, beyond its
    /// floor ([`crate::upstream::retry_budget`]): 0.2 for `20%`.
    pub retry_budget: f64,
    /// A 429 or 503 with `Retry-After` keeps new requests off the backend.
    pub honor_retry_after: bool,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub slow_start: Duration,
    /// `None` = plain HTTP to the backends.
    pub tls: Option<UpstreamTls>,
    pub protocol: UpstreamProtocol,
    /// A PROXY header with the client's address first on each new backend
    /// connection (health checks excepted); `None` = plain.
    pub send_proxy_protocol: Option<crate::proxy_protocol::Version>,
    /// Where backends come from besides literal `ip:port` ones: host names
    /// and SRV records, resolved at load and every `resolve_every`
    /// ([`crate::discovery`] turns their records into `backends`).
    pub dns: Vec<DnsSource>,
    pub resolve_every: Duration,
    /// Where requests wait for a backend under `max_conns`; `None` = a
    /// request finding every eligible backend full gets 503 at once.
    pub queue: Option<QueueSpec>,
}

/// An upstream's wait queue (FIFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// Requests waiting at most; one more gets 503 + Retry-After: 1. At least 1.
    pub max: usize,
    /// Longest wait for a slot, then 503 + Retry-After: 1. Not zero.
    pub timeout: Duration,
}

/// Backends named in DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsSource {
    /// `addr: host:port`: every A/AAAA record of `host` is a backend on
    /// `port` with `weight`.
    Host {
        /// As configured (`host:port`): `/status` shows it as `name`.
        name: String,
        host: String,
        port: u16,
        weight: u32,
        /// Each record's `max_conns`.
        max_conns: u32,
    },
    /// `discovery.srv`: every SRV record's target:port is a backend, its
    /// SRV weight the backend's weight.
    Srv { name: String },
}

impl DnsSource {
    /// The name `/status` shows for the backends it gave.
    pub fn name(&self) -> &str {
        match self {
            DnsSource::Host { name, .. } | DnsSource::Srv { name } => name,
        }
    }
}

/// The HTTP version spoken to an upstream's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (the default).
    Http1,
    /// HTTP/2 only: by ALPN with `tls`, by prior knowledge (h2c) without.
    /// What gRPC backends need.
    H2,
}

#[derive(Debug, Clone)]
pub struct BackendSpec {
    /// As configured, or `ip:port` for a DNS record: the `backend` metric
    /// label and the `/status` `addr`.
    pub addr: String,
    pub socket: SocketAddr,
    /// 0 = draining.
    pub weight: u32,
    /// Concurrent requests (tcp: connections) at most; 0 = no cap.
    pub max_conns: u32,
    /// For a backend from DNS, the configured `host:port` (or SRV name) it
    /// came from; `None` for a literal `ip:port`.
    pub name: Option<String>,
}

impl BackendSpec {
    /// The name TLS verifies for this backend: the configured host name
    /// when it came from DNS, else `addr`.
    pub fn tls_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.addr)
    }
}

/// A balancing policy; see the SPEC's "Balancing policies" table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    RoundRobin,
    WeightedRoundRobin,
    LeastConn,
    P2c,
    ConsistentHash,
    Random,
}

impl Policy {
    pub const ALL: [Policy; 6] = [
        Policy::RoundRobin,
        Policy::WeightedRoundRobin,
        Policy::LeastConn,
        Policy::P2c,
        Policy::ConsistentHash,
        Policy::Random,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::WeightedRoundRobin => "weighted_round_robin",
            Policy::LeastConn => "least_conn",
            Policy::P2c => "p2c",
            Policy::ConsistentHash => "consistent_hash",
            Policy::Random => "random",
        }
    }

    pub fn from_name(s: &str) -> Option<Policy> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// What `consistent_hash` hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    Path,
    Uri,
    Header(String),
    Cookie(String),
    Query(String),
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub kind: HealthCheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

#[derive(Debug, Clone)]
pub enum HealthCheckKind {
    Tcp,
    Http {
        path: String,
        host: Option<String>,
        /// Inclusive range.
        expect_status: (u16, u16),
    },
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    pub consecutive_failures: u32,
    pub failure_rate: f64,
    pub min_requests: u32,
    pub window: Duration,
    pub open_for: Duration,
    pub half_open_requests: u32,
}

/// Passive ejection from live traffic (SPEC "Outlier detection"). A zero
/// count or factor turns that detector off.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// Answers ≥ 500 (and failures switchyard answers 502/504 for) in a row.
    pub consecutive_5xx: u32,
    /// 502/503/504, connect failures, resets and timeouts in a row.
    pub consecutive_gateway_failures: u32,
    /// A backend whose median latency over `interval` is above this many
    /// times the others' median is ejected; 0 = off.
    pub latency_factor: f64,
    pub interval: Duration,
    /// Ejected for this × the backend's ejection count (at most 10×).
    pub base_ejection: Duration,
    /// At most this percentage of the backends ejected at once (0-100).
    pub max_ejected_percent: u32,
}
