//! `GET /status`: the answering process (pid, version, uptime), every listener
//! with its routes and request counts, every upstream's policy and each
//! backend's live state and request count. The status page (`GET /`) polls
//! it and derives rates from successive counts.
//!
//! Counts come from the Prometheus counters (one source of truth), read by
//! collecting them, which never creates a series that `/metrics` would then
//! show.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use prometheus::core::Collector;
use prometheus::IntCounterVec;
use serde::Serialize;

use super::Metrics;
use crate::config::{HostMatch, Listener, ListenerKind};
use crate::live::{Generation, LastReload};

#[derive(Serialize)]
pub struct Status<'a> {
    /// The process answering: `switchyard upgrade` waits for the new one's.
    pub pid: u32,
    pub version: &'static str,
    pub uptime_seconds: u64,
    /// The file the process was started with: what a reload reads again.
    pub config_file: String,
    /// 1 at start, +1 per applied reload.
    pub config_generation: u64,
    /// Reloads tried so far (applied or rejected): `switchyard reload`
    /// waits for it to grow, then reads `last_reload`.
    pub reloads: u64,
    /// The latest reload's time (Unix seconds), result (`ok` | `rejected`)
    /// and message; `null` before the first.
    pub last_reload: Option<LastReload>,
    /// `server.max_connections` in force: client connections over every
    /// listener (derived from the open-file limit unless configured).
    pub max_connections: usize,
    pub listeners: BTreeMap<&'a str, ListenerStatus<'a>>,
    pub upstreams: BTreeMap<&'a str, UpstreamStatus<'a>>,
}

#[derive(Serialize)]
pub struct ListenerStatus<'a> {
    pub listen: String,
    /// `http` or `tcp`.
    pub protocol: &'static str,
    pub tls: bool,
    /// HTTP requests answered on this listener, routed or not.
    pub requests: u64,
    /// Open client connections now.
    pub connections: i64,
    /// The listener's `max_connections`; 0 = only the server-wide cap.
    pub max_connections: u32,
    /// `tcp` listeners: the upstream every connection goes to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a str>,
    pub routes: Vec<RouteStatus<'a>>,
}

#[derive(Serialize)]
pub struct RouteStatus<'a> {
    pub name: &'a str,
    /// `null` = any host.
    pub host: Option<String>,
    pub path_prefix: &'a str,
    pub upstream: &'a str,
    pub requests: u64,
    /// Answers by status class: `2xx`, `3xx`, `4xx`, `5xx`.
    pub responses: BTreeMap<&'static str, u64>,
    pub rate_limited: u64,
}

#[derive(Serialize)]
pub struct UpstreamStatus<'a> {
    pub policy: &'static str,
    /// The wait queue, when configured: requests waiting and its `max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueStatus>,
    pub backends: Vec<BackendStatus<'a>>,
}

#[derive(Serialize)]
pub struct QueueStatus {
    pub depth: usize,
    pub max: usize,
    /// Requests turned away (queue full or waited out) since start.
    pub timeouts: u64,
}

#[derive(Serialize)]
pub struct BackendStatus<'a> {
    pub addr: &'a str,
    /// For a backend from DNS: the configured `host:port` or SRV name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// The weight selection uses now: the runtime one, 0 when drained or
    /// disabled.
    pub weight: u32,
    /// `enabled`, `drain` or `disabled` (the write API's doing).
    pub admin_state: &'static str,
    pub up: bool,
    pub inflight: usize,
    /// `max_conns`; 0 = no cap.
    pub max_conns: usize,
    pub circuit: &'static str,
    /// Ejected by outlier detection now.
    pub ejected: bool,
    /// Seconds until an ejected backend returns (0 when not ejected).
    pub ejected_for_s: f64,
    /// Times outlier detection ejected it.
    pub ejections: u32,
    /// Requests (and retries) sent to this backend.
    pub requests: u64,
    /// Seconds (rounded up) it still gets no new requests because it
    /// answered with `Retry-After`; 0 when none.
    pub retry_after_secs: u64,
}

impl Status<'_> {
    /// With the config file, the reload count and the latest reload (see
    /// [`crate::live::Live::last_reload`]).
    pub fn with_reloads(
        mut self,
        file: &std::path::Path,
        (count, last): (u64, Option<LastReload>),
    ) -> Self {
        self.config_file = file.to_string_lossy().into_owned();
        self.reloads = count;
        self.last_reload = last;
        self
    }
}

/// The status of `generation` (the one serving now).
pub fn snapshot<'a>(generation: &'a Generation, metrics: &Metrics, started: Instant) -> Status<'a> {
    let listeners = &generation.config.listeners;
    let upstreams = &generation.upstreams;
    let by_route = counts(&metrics.http_requests, &["listener", "route", "status"]);
    let limited = counts(&metrics.rate_limited, &["listener", "route"]);
    let sent = counts(&metrics.backend_requests, &["upstream", "backend"]);
    let listeners = listeners
        .iter()
        .map(|l| {
            let mut status = listener(l, &by_route, &limited);
            status.connections = metrics.connections.with_label_values(&[&l.name]).get();
            (l.name.as_str(), status)
        })
        .collect();
    let upstreams = upstreams
        .values()
        .map(|u| {
            let backends = u
                .spec
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| (i, b, u.ejection(i)))
                .map(|(i, b, ejection)| BackendStatus {
                    addr: &b.addr,
                    name: b.name.as_deref(),
                    weight: u.admin_override(i).effective_weight(),
                    admin_state: u.admin_override(i).state.name(),
                    up: u.healthy(i),
                    inflight: u.inflight(i),
                    max_conns: u.max_conns(i),
                    circuit: u.circuit(i).name(),
                    ejected: ejection.is_some_and(|e| e.ejected),
                    ejected_for_s: ejection
                        .map_or(0.0, |e| (e.remaining.as_secs_f64() * 10.0).ceil() / 10.0),
                    ejections: ejection.map_or(0, |e| e.count),
                    requests: sum(&sent, &[&u.spec.name, &b.addr]),
                    retry_after_secs: u
                        .held_off_for(i)
                        .map_or(0, |d| d.as_millis().div_ceil(1000) as u64),
                })
                .collect();
            (
                u.spec.name.as_str(),
                UpstreamStatus {
                    policy: u.spec.policy.name(),
                    queue: u.queue().map(|q| QueueStatus {
                        depth: q.depth(),
                        max: q.spec.max,
                        timeouts: q.timeouts(),
                    }),
                    backends,
                },
            )
        })
        .collect();
    Status {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: started.elapsed().as_secs(),
        config_file: String::new(),
        config_generation: generation.number,
        reloads: 0,
        last_reload: None,
        max_connections: 0,
        listeners,
        upstreams,
    }
}

fn listener<'a>(l: &'a Listener, by_route: &Counts, limited: &Counts) -> ListenerStatus<'a> {
    let (protocol, upstream, routes) = match &l.kind {
        ListenerKind::Http { routes } => ("http", None, routes.as_slice()),
        ListenerKind::Tcp { upstream, .. } => ("tcp", Some(upstream.as_str()), &[][..]),
    };
    let routes = routes
        .iter()
        .map(|r| {
            let mut responses: BTreeMap<&'static str, u64> =
                ["2xx", "3xx", "4xx", "5xx"].map(|c| (c, 0)).into();
            for (labels, n) in by_route {
                if labels[0] == l.name && labels[1] == r.name {
                    if let Some(class) = class(&labels[2]) {
                        *responses.entry(class).or_default() += n;
                    }
                }
            }
            RouteStatus {
                name: &r.name,
                host: match &r.host {
                    HostMatch::Any => None,
                    h => Some(h.to_string()),
                },
                path_prefix: &r.path_prefix,
                upstream: r.upstream.as_deref().unwrap_or(""),
                requests: sum(by_route, &[&l.name, &r.name]),
                responses,
                rate_limited: sum(limited, &[&l.name, &r.name]),
            }
        })
        .collect();
    ListenerStatus {
        listen: l.listen.to_string(),
        protocol,
        tls: l.tls.is_some(),
        requests: sum(by_route, &[&l.name]),
        connections: 0,
        max_connections: l.max_connections,
        upstream,
        routes,
    }
}

/// Counter values by the values of the chosen labels, in that order.
type Counts = HashMap<Vec<String>, u64>;

fn counts(vec: &IntCounterVec, labels: &[&str]) -> Counts {
    let mut out = Counts::new();
    for family in vec.collect() {
        for m in family.get_metric() {
            let pairs = m.get_label();
            let key = labels
                .iter()
                .map(|want| {
                    pairs
                        .iter()
                        .find(|p| p.name() == *want)
                        .map_or(String::new(), |p| p.value().to_string())
                })
                .collect();
            *out.entry(key).or_default() += m.get_counter().value() as u64;
        }
    }
    out
}

/// The total over every series whose first label values are `prefix`.
fn sum(counts: &Counts, prefix: &[&str]) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| k.iter().zip(prefix).all(|(a, b)| a == b))
        .map(|(_, n)| n)
        .sum()
}

fn class(status: &str) -> Option<&'static str> {
    match status.as_bytes().first()? {
        b'2' => Some("2xx"),
        b'3' => Some("3xx"),
        b'4' => Some("4xx"),
        b'5' => Some("5xx"),
        _ => None,
    }
}
