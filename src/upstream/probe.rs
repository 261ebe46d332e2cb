//! The loop that runs one upstream's active health checks: every
//! `interval`, each backend checked in parallel with the configured Pingora
//! check, a backend flipped after `healthy_threshold` passes or
//! `unhealthy_threshold` failures in a row.
//!
//! Written here rather than left to a Pingora `LoadBalancer` service so that
//! checks can start and stop at runtime (a reload adds, changes and removes
//! upstreams; [`crate::live::health`] owns one task per upstream) and so
//! that a backend starts from the health it had — a down backend carried
//! over by a reload or read from the state file stays down until it passes,
//! where Pingora's own state would start it up and never report it.

use std::sync::Arc;

use pingora::lb::health_check::HealthCheck as PingoraCheck;
use pingora::lb::Backend;

use super::health::{self, HealthEvents};
use super::selection::index_of;
use super::Upstream;
use crate::config::UpstreamSpec;

/// An upstream's configured check and what it checks.
pub struct Probe {
    check: Arc<dyn PingoraCheck + Send + Sync>,
    /// Each carries its backend index (see [`index_of`]).
    targets: Vec<Backend>,
    interval: std::time::Duration,
}

impl Probe {
    /// `None` when `spec` has no `health_check`.
    pub fn new(
        spec: &UpstreamSpec,
        targets: Vec<Backend>,
        events: &Arc<HealthEvents>,
    ) -> Option<Self> {
        let cfg = spec.health_check.as_ref()?;
        let check = health::build(cfg, spec.tls.as_ref(), Arc::clone(events));
        Some(Self {
            check: Arc::from(check),
            targets,
            interval: cfg.interval,
        })
    }
}

/// Runs `upstream`'s checks until the task is aborted (the supervisor does
/// that when a reload drops or replaces the upstream). Returns at once
/// without a `health_check`.
pub async fn run(upstream: Arc<Upstream>) {
    let Some(probe) = &upstream.probe else {
        return;
    };
    let events = upstream.health_events();
    // Consecutive results against the current state, per backend index.
    let mut streaks = vec![0usize; events.len()];
    loop {
        let checks = probe.targets.iter().map(|b| async move {
            let ok = probe.check.check(b).await.is_ok();
            (b, ok)
        });
        for (backend, ok) in futures::future::join_all(checks).await {
            let Some(i) = index_of(backend) else {
                continue;
            };
            let Some(streak) = streaks.get_mut(i) else {
                continue;
            };
            if ok == events.is_up(i) {
                *streak = 0;
                continue;
            }
            *streak += 1;
            if *streak >= probe.check.health_threshold(ok).max(1) {
                *streak = 0;
                // Reaches HealthEvents through the check's callback.
                probe.check.health_status_change(backend, ok).await;
            }
        }
        tokio::time::sleep(probe.interval).await;
    }
}
