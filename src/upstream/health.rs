//! Active health checks: the configured `health_check` turned into Pingora's
//! `TcpHealthCheck` / `HttpHealthCheck`, run by [`super::probe`] every
//! `interval`, all backends in parallel (one hung backend does not delay
//! the others), under the health supervisor, which starts and stops them as
//! reloads add and remove upstreams.
//!
//! A backend flips after `healthy_threshold` consecutive passes (rise) or
//! `unhealthy_threshold` consecutive failures (fall); backends start up (or
//! as a reload or the state file left them). Every flip reaches
//! [`HealthEvents`], which logs it and stamps when the backend came back,
//! for slow start.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::health_check::{
    HealthCheck as PingoraCheck, HealthObserve, HttpHealthCheck, TcpHealthCheck,
};
use pingora::lb::Backend;
use pingora::{Error, ErrorType};

use super::selection::index_of;
use crate::config::{HealthCheck, HealthCheckKind, UpstreamTls};

/// Health transitions of one upstream's backends, by backend index.
pub struct HealthEvents {
    upstream: String,
    names: Vec<String>,
    epoch: Instant,
    /// When each backend last came back up, in ns after `epoch`; 0 = never
    /// went down (or not since start).
    up_since: Box<[AtomicU64]>,
    /// Each backend's health as the checks last flipped it (all start up,
    /// as in Pingora).
    up: Box<[AtomicBool]>,
}

impl HealthEvents {
    pub fn new(upstream: &str, names: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            upstream: upstream.to_string(),
            up_since: names.iter().map(|_| AtomicU64::new(0)).collect(),
            up: names.iter().map(|_| AtomicBool::new(true)).collect(),
            names,
            epoch: Instant::now(),
        })
    }

    /// How long ago backend `index` came back up, if it ever went down.
    pub fn up_for(&self, index: usize, now: Instant) -> Option<Duration> {
        let stamp = self.up_since.get(index)?.load(Ordering::Relaxed);
        (stamp > 0).then(|| now.saturating_duration_since(self.epoch + Duration::from_nanos(stamp)))
    }

    /// Whether backend `index` passes its health checks (always, without).
    pub fn is_up(&self, index: usize) -> bool {
        self.up
            .get(index)
            .is_some_and(|u| u.load(Ordering::Relaxed))
    }

    /// The number of backends.
    pub fn len(&self) -> usize {
        self.up.len()
    }

    pub fn is_empty(&self) -> bool {
        self.up.is_empty()
    }

    /// Backend `index` takes backend `from_index`'s state in `from` (a
    /// reload rebuilt the upstream): down stays down, up keeps its slow
    /// start stamp.
    pub fn carry(&self, index: usize, from: &HealthEvents, from_index: usize) {
        let (Some(up), Some(since)) = (self.up.get(index), self.up_since.get(index)) else {
            return;
        };
        up.store(from.is_up(from_index), Ordering::Relaxed);
        if let Some(then) = from.up_for(from_index, Instant::now()) {
            let at = (Instant::now() - then).saturating_duration_since(self.epoch);
            since.store(at.as_nanos().max(1) as u64, Ordering::Relaxed);
        }
    }

    /// Sets backend `index` down without a log line (state read back from
    /// `server.state_file` at start).
    pub fn restore_down(&self, index: usize) {
        if let Some(up) = self.up.get(index) {
            up.store(false, Ordering::Relaxed);
        }
    }

    pub(crate) fn record(&self, index: usize, healthy: bool) {
        if let Some(up) = self.up.get(index) {
            up.store(healthy, Ordering::Relaxed);
        }
        let name = self.names.get(index).map_or("?", String::as_str);
        if healthy {
            let ns = self.epoch.elapsed().as_nanos().max(1) as u64;
            if let Some(slot) = self.up_since.get(index) {
                slot.store(ns, Ordering::Relaxed);
            }
            log::warn!(
                "upstream {}: backend {name} is UP (passed its health checks)",
                self.upstream
            );
        } else {
            log::warn!(
                "upstream {}: backend {name} is DOWN (failed its health checks)",
                self.upstream
            );
        }
        crate::live::state_file::changed();
    }
}

struct Observer(Arc<HealthEvents>);

#[async_trait]
impl HealthObserve for Observer {
    async fn observe(&self, target: &Backend, healthy: bool) {
        if let Some(i) = index_of(target) {
            self.0.record(i, healthy);
        }
    }
}

/// The Pingora health check for `spec`, reporting flips to `events`.
/// With `tls`, http checks go over TLS with the upstream's CA and `verify`;
/// one peer template serves every backend, so the name verified is
/// `tls.sni`, else the check's `host`.
pub fn build(
    spec: &HealthCheck,
    tls: Option<&UpstreamTls>,
    events: Arc<HealthEvents>,
) -> Box<dyn PingoraCheck + Send + Sync> {
    let observer: Box<dyn HealthObserve + Send + Sync> = Box::new(Observer(events));
    match &spec.kind {
        HealthCheckKind::Tcp => {
            let mut check = TcpHealthCheck::new();
            check.consecutive_success = spec.healthy_threshold as usize;
            check.consecutive_failure = spec.unhealthy_threshold as usize;
            check.peer_template.options.connection_timeout = Some(spec.timeout);
            check.peer_template.options.total_connection_timeout = Some(spec.timeout);
            check.health_changed_callback = Some(observer);
            check
        }
        HealthCheckKind::Http {
            path,
            host,
            expect_status,
        } => {
            let host = host.as_deref().unwrap_or("localhost");
            let mut check = HttpHealthCheck::new(host, tls.is_some());
            if let Some(tls) = tls {
                check.peer_template.sni = tls.sni.clone().unwrap_or_else(|| host.to_string());
                check.peer_template.options.verify_cert = tls.verify;
                check.peer_template.options.verify_hostname = tls.verify;
                check.peer_template.options.ca = tls.ca.clone();
            }
            check.consecutive_success = spec.healthy_threshold as usize;
            check.consecutive_failure = spec.unhealthy_threshold as usize;
            check.peer_template.options.connection_timeout = Some(spec.timeout);
            check.peer_template.options.total_connection_timeout = Some(spec.timeout);
            check.peer_template.options.read_timeout = Some(spec.timeout);
            check.peer_template.options.write_timeout = Some(spec.timeout);
            if let Ok(mut req) = RequestHeader::build("GET", path.as_bytes(), None) {
                if req.insert_header("Host", host).is_ok()
                    && req
                        .insert_header("User-Agent", "switchyard-health-check")
                        .is_ok()
                {
                    check.req = req;
                }
            }
            let (lo, hi) = *expect_status;
            check.validator = Some(Box::new(move |resp: &ResponseHeader| {
                let code = resp.status.as_u16();
                if (lo..=hi).contains(&code) {
                    Ok(())
                } else {
                    Error::e_explain(
                        ErrorType::HTTPStatus(code),
                        format!("expected status {lo}-{hi}"),
                    )
                }
            }));
            check.health_changed_callback = Some(observer);
            Box::new(check)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_for_is_none_until_a_backend_comes_back() {
        let ev = HealthEvents::new("u", vec!["a".into(), "b".into()]);
        let now = Instant::now();
        assert_eq!(ev.up_for(0, now), None);
        ev.record(0, false);
        assert_eq!(ev.up_for(0, now), None);
        ev.record(0, true);
        let later = Instant::now() + Duration::from_secs(3);
        let up = ev.up_for(0, later).unwrap();
        assert!(
            up >= Duration::from_secs(3) && up < Duration::from_secs(4),
            "{up:?}"
        );
        assert_eq!(ev.up_for(1, later), None);
        assert_eq!(ev.up_for(7, later), None);
    }
}
