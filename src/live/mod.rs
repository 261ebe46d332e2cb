//! The live configuration: what requests are served by, swapped whole by a
//! reload while the listeners (and their sockets) stay.
//!
//! ```text
//! Live ── current: ArcSwap<Generation>   config, upstreams (Arc<Upstream>), tcp targets
//!     ├── sites: listener → ArcSwap<Site> router, route runtimes, site settings
//!     └── certs: listener → LiveCerts     the SNI certificate set
//! ```
//! A request loads its listener's [`Site`] once (one atomic load and a
//! reference count) and keeps that generation to its end; a TCP connection
//! looks its upstream up once. `Live::apply` builds the next generation
//! from a validated config, reusing what did not change ([`build`]): an
//! unchanged upstream keeps its `Arc<Upstream>` (health, breakers,
//! in-flight, overrides, idle connections), a changed one carries each
//! backend's state by `addr`, a route keeps its rate-limit buckets while its
//! `rate_limit` is the same. Listener changes are refused ([`compat`]): they
//! need `switchyard upgrade`.
//!
//! Triggers: SIGHUP ([`signal`]), `POST /reload` (admin), and `switchyard
//! reload` ([`crate::reload`], which sends SIGHUP). All end in
//! [`Live::reload`], one at a time.

pub mod build;
pub mod compat;
pub mod dns;
pub mod health;
pub mod signal;
pub mod state_file;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::access_log::AccessLog;
use crate::admin::Metrics;
use crate::config::{self, Config, Severity};
use crate::discovery::{self, Discovery};
use crate::filters::sticky::StickyKey;
use crate::proxy::SiteSlot;
use crate::tls::LiveCerts;
use crate::upstream::Upstream;

/// One applied config and the upstreams built for it.
pub struct Generation {
    /// 1 at start, +1 per applied reload.
    pub number: u64,
    pub config: Arc<Config>,
    /// By name.
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
}

impl Generation {
    /// The upstream a `tcp` listener sends its connections to now.
    pub fn tcp_upstream(&self, listener: &str) -> Option<&Arc<Upstream>> {
        let l = self.config.listeners.iter().find(|l| l.name == listener)?;
        match &l.kind {
            config::ListenerKind::Tcp { upstream, .. } => self.upstreams.get(upstream),
            config::ListenerKind::Http { .. } => None,
        }
    }
}

/// What every generation of a site shares, made once per process.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub sticky_key: Arc<StickyKey>,
    pub access_log: Option<Arc<AccessLog>>,
}

/// The outcome of the latest reload, for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct LastReload {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// `ok` or `rejected`.
    pub result: &'static str,
    /// What changed, or why it was refused (the checker's text).
    pub message: String,
}

pub struct Live {
    /// The file `run` was started with; what a reload reads again.
    file: PathBuf,
    /// The config as written (host names not resolved) that the current
    /// generation comes from: what DNS re-resolution starts from.
    written: Mutex<Arc<Config>>,
    /// Looks backend host names and SRV records up.
    discovery: Option<Discovery>,
    current: ArcSwap<Generation>,
    sites: HashMap<String, Arc<SiteSlot>>,
    certs: HashMap<String, Arc<LiveCerts>>,
    shared: Shared,
    /// One reload (or admin write) at a time; never taken by requests.
    applying: Mutex<()>,
    /// Wakes the health supervisor after a new generation.
    pub(crate) upstreams_changed: tokio::sync::Notify,
    /// Reloads tried so far (applied or not), and the latest's outcome.
    last: Mutex<(u64, Option<LastReload>)>,
}

impl Live {
    /// Generation 1 from `config` (read from `file`): every site and
    /// certificate set built, the state file (if any) read back.
    /// Host names are looked up first (`Err` only when the resolver cannot
    /// be set up for a config that names backends in DNS).
    pub fn new(config: Config, file: PathBuf, shared: Shared) -> Result<Arc<Self>, String> {
        let discovery = match Discovery::new(
            &config.server.resolvers,
            shared.metrics.dns_failures.clone(),
        ) {
            Ok(d) => Some(d),
            Err(e) if Discovery::needed(&config) => return Err(e),
            Err(e) => {
                log::info!("{e}: backends named in DNS cannot be added by a reload");
                None
            }
        };
        let written = Arc::new(config);
        let config = match &discovery {
            Some(d) if Discovery::needed(&written) => Arc::new(d.resolve_blocking(&written)),
            _ => Arc::clone(&written),
        };
        let upstreams = build::upstreams(&config, None);
        if let Some(path) = &config.server.state_file {
            state_file::restore(path, &upstreams);
        }
        let mut sites = HashMap::new();
        let mut certs = HashMap::new();
        for listener in &config.listeners {
            if let Some(site) = build::site(listener, &config, &upstreams, None, &shared) {
                sites.insert(listener.name.clone(), Arc::new(ArcSwap::from_pointee(site)));
            }
            if let Some(tls) = &listener.tls {
                let set = build::sni_certs(tls);
                certs.insert(listener.name.clone(), Arc::new(LiveCerts::new(set)));
            }
        }
        shared.metrics.config_generation.set(1);
        Ok(Arc::new(Self {
            file,
            written: Mutex::new(written),
            discovery,
            current: ArcSwap::from_pointee(Generation {
                number: 1,
                config,
                upstreams,
            }),
            sites,
            certs,
            shared,
            applying: Mutex::new(()),
            upstreams_changed: tokio::sync::Notify::new(),
            last: Mutex::new((0, None)),
        }))
    }

    /// The file the process was started with (absolute when it could be
    /// resolved), which reloads read again.
    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// The generation serving now.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// The site slot of http listener `name` (built at start, swapped by
    /// reloads).
    pub fn site(&self, name: &str) -> Option<Arc<SiteSlot>> {
        self.sites.get(name).cloned()
    }

    /// The certificate set of TLS listener `name`.
    pub fn certs(&self, name: &str) -> Option<Arc<LiveCerts>> {
        self.certs.get(name).cloned()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Holds off reloads while an admin write changes an upstream, so the
    /// write lands on the upstream that stays.
    pub fn writing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.applying.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reloads tried so far and the latest outcome.
    pub fn last_reload(&self) -> (u64, Option<LastReload>) {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the file again, validates it as `check` does and applies it.
    /// `Ok` with a summary of what changed; `Err` with every problem (or the
    /// listener change that needs an upgrade), the old generation serving
    /// on. Blocking (reads files): call it off the request runtimes.
    pub fn reload(&self) -> Result<String, String> {
        let outcome = self.read_and_apply();
        let (result, message) = match &outcome {
            Ok(summary) => {
                log::info!("reload of {}: applied: {summary}", self.file.display());
                ("ok", summary.clone())
            }
            Err(why) => {
                log::error!(
                    "reload of {} rejected, the running config stays:\n{why}",
                    self.file.display()
                );
                ("rejected", why.clone())
            }
        };
        self.shared
            .metrics
            .config_reloads
            .with_label_values(&[result])
            .inc();
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.0 += 1;
        last.1 = Some(LastReload {
            at,
            result,
            message,
        });
        outcome
    }

    fn read_and_apply(&self) -> Result<String, String> {
        let file = self.file.display();
        let text =
            std::fs::read_to_string(&self.file).map_err(|e| format!("{file}: cannot read: {e}"))?;
        let (config, problems) = config::check_str(&text);
        let mut lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
        let Some(config) = config else {
            let errors = problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            lines.push(format!("{file}: {errors} error(s)"));
            return Err(lines.join("\n"));
        };
        for w in &lines {
            log::warn!("{w}");
        }
        let written = Arc::new(config);
        let resolved = match &self.discovery {
            _ if !Discovery::needed(&written) => Config::clone(&written),
            Some(d) => d.resolve_blocking(&written),
            None => {
                return Err(format!(
                    "{file}: backends named in DNS need a resolver, and none could be set up"
                ))
            }
        };
        let _one = self.writing();
        let summary = self.apply(resolved, true)?;
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) = written;
        Ok(summary)
    }

    /// Looks the current config's host names up again and, when the
    /// backends they give changed, applies them: a new set of backends
    /// (each one that stays keeps its state), not a new generation. Skipped
    /// when a reload came in meanwhile (it resolved its own names).
    pub async fn refresh_dns(&self) {
        let Some(discovery) = &self.discovery else {
            return;
        };
        let written = Arc::clone(&self.written.lock().unwrap_or_else(|e| e.into_inner()));
        if !Discovery::needed(&written) {
            return;
        }
        let resolved = discovery.resolve(&written).await;
        if !discovery::backends_differ(&resolved, &self.current().config) {
            return;
        }
        let _one = self.writing();
        let now = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !Arc::ptr_eq(&now, &written) {
            return;
        }
        match self.apply(resolved, false) {
            Ok(summary) => log::info!("DNS: backends changed: {summary}"),
            Err(e) => log::error!("DNS: new backends not applied: {e}"),
        }
    }

    /// How often [`Self::refresh_dns`] is due: the shortest `resolve_every`
    /// of the upstreams that name backends in DNS.
    pub fn dns_period(&self) -> Option<std::time::Duration> {
        self.discovery.as_ref()?;
        discovery::period(&self.written.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes `config` (its host names resolved) the next generation,
    /// keeping the state of what did not change (see the module doc);
    /// called with the `applying` lock held. Refused, changing nothing, when
    /// `config` changes a listener or a `server:`/`admin.listen` key that
    /// only `upgrade` can change. `reload`: a new generation (else the same
    /// one with new backends, for DNS).
    fn apply(&self, config: Config, reload: bool) -> Result<String, String> {
        let old = self.current();
        compat::check(&old.config, &config)?;
        let config = Arc::new(config);
        let upstreams = build::upstreams(&config, Some(&old.upstreams));
        let mut changes = build::upstream_changes(&old.upstreams, &upstreams);
        for (upstream, addr) in build::backends_gone(&old.upstreams, &upstreams) {
            self.shared.metrics.forget_backend(upstream, addr);
        }
        for listener in &config.listeners {
            let Some(slot) = self.sites.get(&listener.name) else {
                continue;
            };
            let before = slot.load_full();
            if let Some(site) = build::site(
                listener,
                &config,
                &upstreams,
                Some((&before, &old.config)),
                &self.shared,
            ) {
                changes.extend(build::route_changes(&listener.name, &old.config, &config));
                slot.store(Arc::new(site));
            }
            if let (Some(tls), Some(certs)) = (&listener.tls, self.certs.get(&listener.name)) {
                certs.replace(build::sni_certs(tls));
            }
        }
        let number = old.number + u64::from(reload);
        self.current.store(Arc::new(Generation {
            number,
            config,
            upstreams,
        }));
        self.shared.metrics.config_generation.set(number as i64);
        self.upstreams_changed.notify_one();
        state_file::changed();
        let summary = if changes.is_empty() {
            "nothing changed".to_string()
        } else {
            changes.join("; ")
        };
        Ok(format!("generation {number}: {summary}"))
    }
}
