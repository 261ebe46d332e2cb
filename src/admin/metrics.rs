//! Prometheus metrics under the SPEC's names, in one registry per process.
//!
//! Counters are bumped on the request path; gauges that mirror live state
//! (in-flight, up, circuit, ejected) are refreshed from that state at scrape
//! time, so there is a single source of truth for each number. The outlier
//! ejection counter is caught up with the upstream's own count at scrape
//! time too, so the ejecting code needs no handle on the registry.

use prometheus::{
    exponential_buckets, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::upstream::outlier::Reason;
use crate::upstream::Upstream;

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub backend_requests: IntCounterVec,
    pub backend_inflight: IntGaugeVec,
    pub backend_up: IntGaugeVec,
    pub circuit_state: IntGaugeVec,
    pub outlier_ejections: IntCounterVec,
    pub backend_ejected: IntGaugeVec,
    pub rate_limited: IntCounterVec,
    pub rate_limit_store_errors: IntCounterVec,
    pub upstream_retries: IntCounterVec,
    pub retry_budget_exhausted: IntCounterVec,
    /// DNS lookups of backend names that failed (the last good answer kept).
    pub dns_failures: IntCounterVec,
    pub tcp_connections: IntCounterVec,
    pub tcp_bytes: IntCounterVec,
    pub access_log_dropped: IntCounter,
    pub connections: IntGaugeVec,
    pub connections_refused: IntCounterVec,
    /// `switchyard_config_reloads_total{result=ok|rejected}`.
    pub config_reloads: IntCounterVec,
    /// `switchyard_config_generation`: 1 at start, +1 per applied reload.
    pub config_generation: IntGauge,
    pub queue_depth: IntGaugeVec,
    pub queue_timeouts: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            // Names are static and distinct: registration cannot collide.
            let _ = r.register(Box::new(c.clone()));
            c
        }
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels)
                    .expect("static metric definition"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition"),
            )
        };
        let ub = ["upstream", "backend"];
        Self {
            http_requests: counter(
                "switchyard_http_requests_total",
                "HTTP requests answered, by final status (499: client went away first)",
                &["listener", "route", "upstream", "status"],
            ),
            http_duration: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "switchyard_http_request_duration_seconds",
                        "Time from request headers read to response finished",
                    )
                    .buckets(exponential_buckets(0.0005, 2.0, 16).expect("static buckets")),
                    &["listener", "route", "upstream"],
                )
                .expect("static metric definition"),
            ),
            backend_requests: counter(
                "switchyard_backend_requests_total",
                "HTTP requests and TCP connections sent to each backend (retries included)",
                &ub,
            ),
            backend_inflight: gauge(
                "switchyard_backend_inflight",
                "Requests or connections in flight per backend",
                &ub,
            ),
            backend_up: gauge(
                "switchyard_backend_up",
                "1 if the backend passes health checks, else 0",
                &ub,
            ),
            circuit_state: gauge(
                "switchyard_circuit_state",
                "Circuit breaker per backend: 0 closed, 1 open, 2 half-open",
                &ub,
            ),
            outlier_ejections: counter(
                "switchyard_outlier_ejections_total",
                "Backends ejected by outlier detection, by reason (5xx, gateway, latency)",
                &["upstream", "backend", "reason"],
            ),
            backend_ejected: gauge(
                "switchyard_backend_ejected",
                "1 while outlier detection has the backend ejected, else 0",
                &ub,
            ),
            rate_limited: counter(
                "switchyard_rate_limited_total",
                "Requests answered 429 by a rate limit",
                &["listener", "route"],
            ),
            rate_limit_store_errors: counter(
                "switchyard_rate_limit_store_errors_total",
                "Requests a shared (redis) rate limit store could not decide; on_store_error decided them",
                &["listener", "route"],
            ),
            upstream_retries: counter(
                "switchyard_upstream_retries_total",
                "Further backends tried after a failure in retry_on, by reason",
                &["upstream", "reason"],
            ),
            retry_budget_exhausted: counter(
                "switchyard_retry_budget_exhausted_total",
                "Retries the upstream's retry budget refused",
                &["upstream"],
            ),
            dns_failures: counter(
                "switchyard_dns_lookup_failures_total",
                "DNS lookups of backend host names or SRV records that failed; the last good answer was kept",
                &["upstream"],
            ),
            tcp_connections: counter(
                "switchyard_tcp_connections_total",
                "TCP connections accepted by tcp listeners",
                &["listener", "upstream"],
            ),
            tcp_bytes: counter(
                "switchyard_tcp_bytes_total",
                "Bytes copied by tcp listeners (rx from clients, tx to clients)",
                &["listener", "direction"],
            ),
            connections: gauge(
                "switchyard_connections",
                "Open client connections per listener (http and tcp)",
                &["listener"],
            ),
            connections_refused: counter(
                "switchyard_connections_refused_total",
                "Client connections closed unanswered at accept (per_ip: max_connections_per_ip)",
                &["listener", "reason"],
            ),
            config_reloads: counter(
                "switchyard_config_reloads_total",
                "Config reloads (SIGHUP, POST /reload, switchyard reload): ok = applied, rejected = invalid file or a listener change",
                &["result"],
            ),
            config_generation: reg(
                &registry,
                IntGauge::new(
                    "switchyard_config_generation",
                    "The config generation served: 1 at start, +1 per applied reload",
                )
                .expect("static metric definition"),
            ),
            queue_depth: gauge(
                "switchyard_queue_depth",
                "Requests (tcp: connections) waiting in the upstream's queue for a backend under max_conns",
                &["upstream"],
            ),
            queue_timeouts: counter(
                "switchyard_queue_timeouts_total",
                "Requests turned away by the upstream's queue (timed out or refused as full)",
                &["upstream"],
            ),
            access_log_dropped: reg(
                &registry,
                IntCounter::new(
                    "switchyard_access_log_dropped_total",
                    "Access log lines dropped because the writer fell behind",
                )
                .expect("static metric definition"),
            ),
            registry,
        }
    }

    /// Copies live per-backend state into the gauges.
    pub fn refresh<'a>(&self, upstreams: impl IntoIterator<Item = &'a std::sync::Arc<Upstream>>) {
        for u in upstreams {
            if let Some(q) = u.queue() {
                let name = [u.spec.name.as_str()];
                self.queue_depth
                    .with_label_values(&name)
                    .set(q.depth() as i64);
                // Counted by the queue itself (it has no metrics handle);
                // the counter is brought up to its total.
                let timeouts = self.queue_timeouts.with_label_values(&name);
                timeouts.inc_by(q.timeouts().saturating_sub(timeouts.get()));
            }
            for (i, b) in u.spec.backends.iter().enumerate() {
                let labels = [u.spec.name.as_str(), b.addr.as_str()];
                self.backend_inflight
                    .with_label_values(&labels)
                    .set(u.inflight(i) as i64);
                self.backend_up
                    .with_label_values(&labels)
                    .set(i64::from(u.healthy(i)));
                self.circuit_state
                    .with_label_values(&labels)
                    .set(u.circuit(i).gauge());
                self.backend_ejected
                    .with_label_values(&labels)
                    .set(i64::from(u.ejected(i)));
                if u.spec.outlier_detection.is_some() {
                    for reason in Reason::ALL {
                        let counter = self.outlier_ejections.with_label_values(&[
                            labels[0],
                            labels[1],
                            reason.label(),
                        ]);
                        let behind = u.ejections(i, reason).saturating_sub(counter.get());
                        counter.inc_by(behind);
                    }
                }
            }
        }
    }

    /// Drops the live-state gauges of a backend a reload removed, so no
    /// stale `up` or in-flight value is exported for it. (Counters stay:
    /// they are totals.)
    pub fn forget_backend(&self, upstream: &str, backend: &str) {
        let labels = [upstream, backend];
        let _ = self.backend_inflight.remove_label_values(&labels);
        let _ = self.backend_up.remove_label_values(&labels);
        let _ = self.circuit_state.remove_label_values(&labels);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding metrics failed: {e}\n"))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
