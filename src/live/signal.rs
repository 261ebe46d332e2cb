//! SIGHUP reloads the config file in place (Pingora leaves SIGHUP alone).
//!
//! The signal is ignored from [`ignore_until_ready`] (called while the
//! server is built) until this service listens for it, so an early SIGHUP
//! never kills the process (its default action); the admin listener starts
//! after this service is ready, so `/status` answering means SIGHUP reloads.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;
use tokio::signal::unix::{signal, SignalKind};

use super::Live;

/// SIGHUP does nothing until [`ReloadOnHangup`] runs.
pub fn ignore_until_ready() {
    // SAFETY: installs the SIG_IGN disposition for one signal; no handler
    // code runs.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

pub struct ReloadOnHangup(pub Arc<Live>);

#[async_trait]
impl BackgroundService for ReloadOnHangup {
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot listen for SIGHUP, reload by signal is off: {e}");
                ready.notify_ready();
                return;
            }
        };
        ready.notify_ready();
        loop {
            tokio::select! {
                got = hangup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    log::info!("SIGHUP: reloading the config");
                    let live = Arc::clone(&self.0);
                    // Reading and checking files blocks: not on this runtime.
                    let _ = tokio::task::spawn_blocking(move || live.reload()).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn start(&self, shutdown: ShutdownWatch) {
        let (sender, _) = tokio::sync::watch::channel(false);
        self.start_with_ready_notifier(shutdown, ServiceReadyNotifier::new(sender))
            .await;
    }
}
