//! `server.state_file`: each backend's runtime override (admin write API)
//! and health, saved as JSON when they change and read back at start, so a
//! drained or disabled backend stays so across `switchyard upgrade` (and a
//! restart), and a backend that was down stays out until it passes its
//! checks.
//!
//! Changes only raise a flag ([`changed`]: an admin write, a health flip, a
//! reload); [`StateWriter`] writes the file within a quarter second of one,
//! and once more at shutdown, through a temporary file renamed over the old
//! one (a reader never sees half a file). The new process of an upgrade
//! starts while the old one still serves, so the file it reads is the one
//! written after the old process's last change.
//!
//! Read back by every `run` (plain or `-u`) when the file exists: a saved
//! backend that is still configured (same upstream and `addr`) gets its
//! override; `up: false` applies only if its upstream checks health (else
//! nothing would ever bring it back).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::{Deserialize, Serialize};

use super::Live;
use crate::upstream::admin_state::{carried, AdminState, Override};
use crate::upstream::Upstream;

static DIRTY: AtomicBool = AtomicBool::new(false);

/// Something the state file holds changed: write it soon.
pub fn changed() {
    DIRTY.store(true, Ordering::Relaxed);
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// Upstream name → backend `addr` → state.
    upstreams: BTreeMap<String, BTreeMap<String, SavedBackend>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedBackend {
    /// `enabled`, `drain` or `disabled`.
    admin_state: String,
    /// The runtime weight (what `enable` goes back to).
    weight: u16,
    /// The configured weight then, to tell an operator's weight from it.
    configured: u32,
    up: bool,
}

/// The state of `upstreams` as JSON.
fn snapshot(upstreams: &BTreeMap<String, Arc<Upstream>>) -> Saved {
    let upstreams = upstreams
        .iter()
        .map(|(name, u)| {
            let backends = u
                .spec
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let o = u.admin_override(i);
                    let saved = SavedBackend {
                        admin_state: o.state.name().to_string(),
                        weight: o.weight,
                        configured: b.weight,
                        up: u.healthy(i),
                    };
                    (b.addr.clone(), saved)
                })
                .collect();
            (name.clone(), backends)
        })
        .collect();
    Saved { upstreams }
}

/// Writes the state of `upstreams` to `path` (temporary file, then rename).
pub fn write(path: &Path, upstreams: &BTreeMap<String, Arc<Upstream>>) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(&snapshot(upstreams)).map_err(std::io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Applies the state saved in `path` (if the file exists) to `upstreams`.
/// A file that cannot be read or parsed is logged and ignored: the config
/// alone is served.
pub fn restore(path: &Path, upstreams: &BTreeMap<String, Arc<Upstream>>) {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            log::warn!(
                "state_file {}: cannot read ({e}); starting without it",
                path.display()
            );
            return;
        }
    };
    let saved: Saved = match serde_json::from_slice(&text) {
        Ok(s) => s,
        Err(e) => {
            log::warn!(
                "state_file {}: not valid ({e}); starting without it",
                path.display()
            );
            return;
        }
    };
    let mut restored = 0;
    for (name, backends) in &saved.upstreams {
        let Some(u) = upstreams.get(name) else {
            continue;
        };
        for (addr, b) in backends {
            let Some(i) = u.backend_index(addr) else {
                continue;
            };
            let Some(state) = AdminState::from_name(&b.admin_state) else {
                continue;
            };
            let was = Override {
                state,
                weight: b.weight,
            };
            let now = carried(was, b.configured, u.backend(i).weight);
            if now != u.admin_override(i) {
                u.restore(i, now);
                restored += 1;
            }
            if !b.up && u.spec.health_check.is_some() {
                u.health_events().restore_down(i);
                restored += 1;
            }
        }
    }
    log::info!(
        "state_file {}: read back ({restored} backend states differ from the config)",
        path.display()
    );
}

/// Writes the state file after changes and at shutdown (when configured).
pub struct StateWriter(pub Arc<Live>);

impl StateWriter {
    fn save(&self) {
        let generation = self.0.current();
        let Some(path) = &generation.config.server.state_file else {
            return;
        };
        if let Err(e) = write(path, &generation.upstreams) {
            log::warn!("state_file {}: cannot write: {e}", path.display());
        }
    }
}

#[async_trait]
impl BackgroundService for StateWriter {
    /// Once handing over (SIGQUIT), the state is written one last time and
    /// never again: the new process owns the file from then on, and this
    /// one's exit must not overwrite what it saves.
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {
                    if crate::proxy::drain::handing_over() {
                        self.save();
                        return;
                    }
                    if DIRTY.swap(false, Ordering::Relaxed) {
                        self.save();
                    }
                }
                _ = shutdown.changed() => {
                    if !crate::proxy::drain::handing_over() {
                        self.save();
                    }
                    return;
                }
            }
        }
    }
}
