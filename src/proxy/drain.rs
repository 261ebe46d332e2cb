//! Whether this process is handing its listeners over (it got SIGQUIT).
//!
//! Pingora keeps accepting for 5 s after SIGQUIT, then stops and drains; only
//! then does it tell the proxy (`is_process_shutting_down`). Keep-alive
//! clients of the old process would all be cut at that one moment, racing
//! their next request against the close. Knowing from SIGQUIT on, the proxy
//! answers every response with `Connection: close`, so each client moves to a
//! new connection (most land on the new process) after the request it has in
//! flight. Pingora's own SIGQUIT handling is untouched: tokio delivers the
//! signal to every listener.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};

static HANDING_OVER: AtomicBool = AtomicBool::new(false);

/// True once this process got SIGQUIT.
pub fn handing_over() -> bool {
    HANDING_OVER.load(Ordering::Relaxed)
}

/// Background service that waits for SIGQUIT and sets [`handing_over`].
pub struct HandoverWatch;

#[async_trait]
impl BackgroundService for HandoverWatch {
    async fn start(&self, _shutdown: ShutdownWatch) {
        match signal(SignalKind::quit()) {
            Ok(mut quit) => {
                if quit.recv().await.is_some() {
                    HANDING_OVER.store(true, Ordering::Relaxed);
                    log::info!("handing over: answering with Connection: close from now on");
                }
            }
            Err(e) => log::warn!("cannot watch for SIGQUIT: {e}"),
        }
    }
}
