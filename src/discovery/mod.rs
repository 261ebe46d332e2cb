//! Backends from DNS: `addr: host:port` (every A/AAAA record is a backend)
//! and `discovery.srv` (every SRV target:port), resolved at load and every
//! `resolve_every`.
//!
//! [`Discovery`] keeps, per upstream and source, the last good answer: a
//! failed or empty lookup keeps it (logged and counted in
//! `switchyard_dns_lookup_failures_total`), so a resolver going away never
//! empties an upstream. A record that vanishes drains (weight 0) for one
//! `resolve_every`, then goes. [`Discovery::resolve`] turns a config as
//! written into one whose upstreams list every backend; the caller applies
//! it like a reload, which keeps each unchanged backend's state.

pub mod expand;
pub mod resolver;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntCounterVec;

use crate::config::{Config, DnsSource, UpstreamSpec};
use expand::Gone;
use resolver::{Dns, Record};

pub struct Discovery {
    dns: Dns,
    state: Mutex<State>,
    failures: IntCounterVec,
}

#[derive(Default)]
struct State {
    /// The last good answer of each (upstream, source name).
    last: HashMap<(String, String), Vec<Record>>,
    /// Per upstream, records that vanished and still drain.
    gone: HashMap<String, HashMap<SocketAddr, Gone>>,
}

impl Discovery {
    /// `servers`: `server.resolvers` (empty = the system's). `failures`:
    /// `switchyard_dns_lookup_failures_total{upstream}`.
    pub fn new(servers: &[SocketAddr], failures: IntCounterVec) -> Result<Self, String> {
        Ok(Self {
            dns: Dns::new(servers)?,
            state: Mutex::new(State::default()),
            failures,
        })
    }

    /// Whether any upstream of `config` names backends in DNS.
    pub fn needed(config: &Config) -> bool {
        config.upstreams.values().any(|u| !u.dns.is_empty())
    }

    /// `config` with every upstream's DNS sources looked up now and their
    /// records added to its backends.
    pub async fn resolve(&self, config: &Config) -> Config {
        let mut out = config.clone();
        for (name, spec) in &config.upstreams {
            if spec.dns.is_empty() {
                continue;
            }
            let mut answers = Vec::with_capacity(spec.dns.len());
            for source in &spec.dns {
                answers.push(self.lookup(name, source, spec.resolve_every).await);
            }
            let backends = {
                let state = self.lock();
                let refs: Vec<(&DnsSource, &[Record])> = spec
                    .dns
                    .iter()
                    .zip(&answers)
                    .map(|(s, a)| (s, a.as_slice()))
                    .collect();
                let empty = HashMap::new();
                let gone = state.gone.get(name).unwrap_or(&empty);
                expand::backends(&spec.backends, &refs, gone, Instant::now())
            };
            let mut resolved = UpstreamSpec::clone(spec);
            resolved.backends = backends;
            out.upstreams.insert(name.clone(), Arc::new(resolved));
        }
        out
    }

    /// [`Self::resolve`] from blocking code (at start, on a reload), on a
    /// thread of its own with a small runtime, so it works whatever runtime
    /// the caller is on or off. A runtime that cannot start resolves
    /// nothing (logged): the names then give no backends until the next round.
    pub fn resolve_blocking(&self, config: &Config) -> Config {
        std::thread::scope(|scope| {
            let resolving = scope.spawn(|| {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(self.resolve(config)),
                    Err(e) => {
                        log::error!("DNS: cannot start a runtime to resolve backend names: {e}");
                        config.clone()
                    }
                }
            });
            resolving.join().unwrap_or_else(|_| config.clone())
        })
    }

    /// The answer for `source` now, or the last good one when the lookup
    /// fails. Vanished records start draining for `drain`.
    async fn lookup(&self, upstream: &str, source: &DnsSource, drain: Duration) -> Vec<Record> {
        let key = (upstream.to_string(), source.name().to_string());
        match self.dns.records(source).await {
            Ok(records) => {
                let mut state = self.lock();
                let before = state.last.insert(key, records.clone());
                let gone = state.gone.entry(upstream.to_string()).or_default();
                let now = Instant::now();
                gone.retain(|socket, g| {
                    g.until > now && !records.iter().any(|r| r.socket == *socket)
                });
                if let Some(before) = before {
                    for socket in expand::vanished(&before, &records) {
                        log::info!(
                            "upstream {upstream}: {socket} is no longer in the DNS answer for {}; draining it",
                            source.name()
                        );
                        let g = Gone {
                            source: source.name().to_string(),
                            until: now + drain,
                        };
                        gone.insert(socket, g);
                    }
                }
                records
            }
            Err(e) => {
                self.failures.with_label_values(&[upstream]).inc();
                let state = self.lock();
                let last = state.last.get(&key).cloned().unwrap_or_default();
                log::warn!(
                    "upstream {upstream}: DNS lookup failed ({e}); keeping the last good answer ({} backends)",
                    last.len()
                );
                last
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How often the discovery loop wakes: the shortest `resolve_every` of
/// the upstreams that use DNS.
pub fn period(config: &Config) -> Option<Duration> {
    config
        .upstreams
        .values()
        .filter(|u| !u.dns.is_empty())
        .map(|u| u.resolve_every)
        .min()
}

/// Whether two resolved configs list different backends anywhere (so the
/// newer one must be applied).
pub fn backends_differ(a: &Config, b: &Config) -> bool {
    let key = |u: &UpstreamSpec| -> Vec<(SocketAddr, u32)> {
        u.backends.iter().map(|b| (b.socket, b.weight)).collect()
    };
    a.upstreams.len() != b.upstreams.len()
        || a.upstreams
            .iter()
            .any(|(name, u)| b.upstreams.get(name).is_none_or(|v| key(u) != key(v)))
}
