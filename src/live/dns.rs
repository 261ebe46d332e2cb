//! Backends named in DNS, looked up again every `resolve_every` (the
//! shortest of the upstreams that name any): a background service that asks
//! [`Live::refresh_dns`] to apply what changed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::Live;

/// How often to look at the config again when it names nothing in DNS (a
/// reload may add a name).
const IDLE_PERIOD: Duration = Duration::from_secs(30);

pub struct DnsRefresh(pub Arc<Live>);

#[async_trait]
impl BackgroundService for DnsRefresh {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let period = self.0.dns_period().unwrap_or(IDLE_PERIOD);
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(period) => {}
            }
            self.0.refresh_dns().await;
        }
    }
}
