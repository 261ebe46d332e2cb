//! The YAML exactly as written: serde shapes with every field optional, no
//! meaning attached. Unknown keys are not silently dropped: the loader runs
//! serde through `serde_ignored` and turns every ignored key into an error
//! (all of them at once, which `deny_unknown_fields` cannot do).
//! [`super::validate`] turns this into the typed [`super::model`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// Scalars that the model parses itself (durations, addresses, policies)
/// stay strings here so one bad value does not hide the others.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    pub server: Option<RawServer>,
    pub admin: Option<RawAdmin>,
    pub listeners: Option<BTreeMap<String, RawListener>>,
    pub upstreams: Option<BTreeMap<String, RawUpstream>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    pub threads: Option<u64>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
    pub grace_period: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub error_log: Option<String>,
    pub access_log: Option<String>,
    pub state_file: Option<String>,
    pub header_timeout: Option<String>,
    pub max_header_bytes: Option<u64>,
    pub max_uri_bytes: Option<u64>,
    pub idle_timeout: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub request_id: Option<RawRequestId>,
    /// Client connections over all listeners; 0 or absent = from the fd limit.
    pub max_connections: Option<u32>,
    pub resolvers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRequestId {
    pub header: Option<String>,
    pub trust_incoming: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAdmin {
    pub listen: Option<String>,
    /// File holding the write API's bearer token; absent = writes refused.
    pub token_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawListener {
    pub protocol: Option<String>,
    pub listen: Option<String>,
    pub tls: Option<RawTls>,
    /// switchyard addition: HTTP/2 by prior knowledge on a plain listener.
    pub h2c: Option<bool>,
    /// switchyard addition: `false` sends every request through Pingora's
    /// proxy path (the escape hatch from the HTTP/1 forwarder).
    pub forwarder: Option<bool>,
    pub routes: Option<Vec<RawRoute>>,
    pub upstream: Option<String>,
    pub idle_timeout: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub proxy_protocol: Option<bool>,
    /// Open connections from one client IP; 0 or absent = no cap.
    pub max_connections_per_ip: Option<u32>,
    /// Open connections on this listener; 0 or absent = only the server cap.
    pub max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTls {
    pub cert: Option<String>,
    pub key: Option<String>,
    /// switchyard addition: more certificates, chosen by the client's SNI.
    pub sni: Option<Vec<RawSniCert>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSniCert {
    pub names: Option<Vec<String>>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// switchyard addition: `tls: true` (verify with the system roots, SNI =
/// the backend's host name) or the full mapping.
#[derive(Debug)]
pub enum RawUpstreamTls {
    Switch(bool),
    Settings(RawUpstreamTlsSettings),
}

#[derive(Debug, Default, Deserialize)]
pub struct RawUpstreamTlsSettings {
    pub sni: Option<String>,
    pub ca_file: Option<String>,
    pub verify: Option<bool>,
}

/// By hand rather than `untagged`: the map case must go through the same
/// deserializer so unknown keys inside it are still reported.
impl<'de> Deserialize<'de> for RawUpstreamTls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawUpstreamTls;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, or { sni, ca_file, verify }")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawUpstreamTls::Switch(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                RawUpstreamTlsSettings::deserialize(serde::de::value::MapAccessDeserializer::new(
                    map,
                ))
                .map(RawUpstreamTls::Settings)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRoute {
    pub name: Option<String>,
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub strip_prefix: Option<bool>,
    pub upstream: Option<String>,
    pub rate_limit: Option<RawRateLimit>,
    pub sticky: Option<RawSticky>,
    pub redirect: Option<RawRedirect>,
    pub request_headers: Option<RawHeaderRules>,
    pub response_headers: Option<RawHeaderRules>,
    pub max_body_bytes: Option<u64>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub max_inflight: Option<u64>,
    pub timeout: Option<String>,
    pub compress: Option<RawCompress>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRedirect {
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u64>,
    pub path: Option<String>,
    pub strip_query: Option<bool>,
    pub status: Option<u64>,
}

/// Header names are the operator's, so `set` and `add` are free maps.
#[derive(Debug, Default, Deserialize)]
pub struct RawHeaderRules {
    pub set: Option<BTreeMap<String, Scalar>>,
    pub add: Option<BTreeMap<String, Scalar>>,
    pub remove: Option<Vec<String>>,
}

/// A header value as YAML may type it (`X-Version: 2` is a number).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RawCompress {
    pub types: Option<Vec<String>>,
    pub min_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRateLimit {
    pub rate: Option<u64>,
    pub per: Option<String>,
    pub burst: Option<u64>,
    pub key: Option<String>,
    pub store: Option<String>,
    pub on_store_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSticky {
    pub cookie: Option<String>,
    pub max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawUpstream {
    pub policy: Option<String>,
    pub hash_key: Option<String>,
    pub backends: Option<Vec<RawBackend>>,
    pub health_check: Option<RawHealthCheck>,
    pub circuit_breaker: Option<RawCircuitBreaker>,
    pub outlier_detection: Option<RawOutlierDetection>,
    pub retries: Option<u64>,
    /// `connect_failure`, `reset`, `timeout`, `502`, `503`, `504`.
    pub retry_on: Option<Vec<StatusSpec>>,
    /// A percentage: `20%`.
    pub retry_budget: Option<String>,
    pub honor_retry_after: Option<bool>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub slow_start: Option<String>,
    pub tls: Option<RawUpstreamTls>,
    /// switchyard addition: `http1` (default) or `h2` to the backends.
    pub protocol: Option<String>,
    /// `v1` | `v2`; absent or null: none.
    pub send_proxy_protocol: Option<String>,
    pub resolve_every: Option<String>,
    pub discovery: Option<RawDiscovery>,
    /// Where requests wait when every eligible backend is at `max_conns`.
    pub queue: Option<RawQueue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawQueue {
    pub max: Option<u64>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDiscovery {
    pub srv: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawBackend {
    pub addr: Option<String>,
    pub weight: Option<u64>,
    /// Concurrent requests (tcp: connections) to this backend; 0 = no cap.
    pub max_conns: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawHealthCheck {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub expect_status: Option<StatusSpec>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub healthy_threshold: Option<u64>,
    pub unhealthy_threshold: Option<u64>,
}

/// `expect_status: 200` and `expect_status: 200-399` are both natural YAML.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    Code(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
pub struct RawCircuitBreaker {
    pub consecutive_failures: Option<u64>,
    pub failure_rate: Option<f64>,
    pub min_requests: Option<u64>,
    pub window: Option<String>,
    pub open_for: Option<String>,
    pub half_open_requests: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawOutlierDetection {
    pub consecutive_5xx: Option<u64>,
    pub consecutive_gateway_failures: Option<u64>,
    pub latency_factor: Option<f64>,
    pub interval: Option<String>,
    pub base_ejection: Option<String>,
    /// A share of the backends, written `50%`.
    pub max_ejected: Option<String>,
}
