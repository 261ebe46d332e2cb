//! The health supervisor: one background service that runs each upstream's
//! health checks ([`crate::upstream::probe`]) as a task, and after every
//! reload starts those of new or rebuilt upstreams and stops those of
//! upstreams no longer served. An unchanged upstream (the same `Arc`) keeps
//! its task, so its checks go on without a beat.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::task::JoinHandle;

use super::Live;
use crate::upstream::{probe, Upstream};

pub struct HealthSupervisor(pub Arc<Live>);

#[async_trait]
impl BackgroundService for HealthSupervisor {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut running: Vec<(Arc<Upstream>, JoinHandle<()>)> = Vec::new();
        loop {
            let generation = self.0.current();
            let serving =
                |u: &Arc<Upstream>| generation.upstreams.values().any(|n| Arc::ptr_eq(n, u));
            running.retain(|(u, task)| {
                let keep = serving(u);
                if !keep {
                    task.abort();
                }
                keep
            });
            for u in generation.upstreams.values() {
                let checked = u.spec.health_check.is_some();
                if checked && !running.iter().any(|(r, _)| Arc::ptr_eq(r, u)) {
                    running.push((Arc::clone(u), tokio::spawn(probe::run(Arc::clone(u)))));
                }
            }
            drop(generation);
            tokio::select! {
                _ = self.0.upstreams_changed.notified() => {}
                _ = shutdown.changed() => break,
            }
        }
        for (_, task) in running {
            task.abort();
        }
    }
}
