//! Building a generation's parts from a validated config, reusing the
//! previous generation's where nothing changed (see [`super`]).
//!
//! "Unchanged" compares the validated model's `Debug` text: the model holds
//! certificates, CA sets and floats without `PartialEq`, and a reload is
//! rare enough that formatting two specs costs nothing that matters.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use super::Shared;
use crate::admin::status_counters::StatusCounters;
use crate::config::{Config, Listener, ListenerKind, ListenerTls, Route};
use crate::h1::forwardable;
use crate::proxy::{RouteRuntime, Site};
use crate::router::Router;
use crate::tls::SniCerts;
use crate::upstream::idle::IdleConns;
use crate::upstream::Upstream;

/// Whether two model values are the same config.
pub fn same<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Every upstream of `config`: from `old`, the same `Arc` when its spec did
/// not change, a rebuild carrying each backend's state when it did.
pub fn upstreams(
    config: &Config,
    old: Option<&BTreeMap<String, Arc<Upstream>>>,
) -> BTreeMap<String, Arc<Upstream>> {
    config
        .upstreams
        .iter()
        .map(|(name, spec)| {
            let upstream = match old.and_then(|o| o.get(name)) {
                Some(prev) if same(&*prev.spec, &**spec) => Arc::clone(prev),
                Some(prev) => Upstream::rebuild(Arc::clone(spec), prev),
                None => Upstream::build(Arc::clone(spec)),
            };
            (name.clone(), upstream)
        })
        .collect()
}

/// The log lines for upstreams added, removed and changed.
pub fn upstream_changes(
    old: &BTreeMap<String, Arc<Upstream>>,
    new: &BTreeMap<String, Arc<Upstream>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, u) in new {
        match old.get(name) {
            None => out.push(format!("upstream {name} added")),
            Some(prev) if !Arc::ptr_eq(prev, u) => out.push(format!("upstream {name} changed")),
            Some(_) => {}
        }
    }
    out.extend(
        old.keys()
            .filter(|n| !new.contains_key(*n))
            .map(|n| format!("upstream {n} removed")),
    );
    out
}

/// (upstream, backend addr) pairs of `old` that `new` no longer has.
pub fn backends_gone<'a>(
    old: &'a BTreeMap<String, Arc<Upstream>>,
    new: &BTreeMap<String, Arc<Upstream>>,
) -> Vec<(&'a str, &'a str)> {
    old.iter()
        .flat_map(|(name, u)| {
            let kept = new.get(name);
            u.spec.backends.iter().filter_map(move |b| {
                let stays = kept.is_some_and(|k| k.backend_index(&b.addr).is_some());
                (!stays).then_some((name.as_str(), b.addr.as_str()))
            })
        })
        .collect()
}

/// The log lines for routes of `listener` added, removed and changed.
pub fn route_changes(listener: &str, old: &Config, new: &Config) -> Vec<String> {
    let (before, after) = (routes_of(old, listener), routes_of(new, listener));
    let mut out = Vec::new();
    for &r in &after {
        match before.iter().find(|b| b.name == r.name) {
            None => out.push(format!("route {listener}/{} added", r.name)),
            Some(b) if !same(*b, r) => out.push(format!("route {listener}/{} changed", r.name)),
            Some(_) => {}
        }
    }
    out.extend(
        before
            .iter()
            .filter(|b| !after.iter().any(|r| r.name == b.name))
            .map(|b| format!("route {listener}/{} removed", b.name)),
    );
    out
}

fn routes_of<'a>(config: &'a Config, listener: &str) -> Vec<&'a Route> {
    config
        .listeners
        .iter()
        .filter(|l| l.name == listener)
        .flat_map(|l| match &l.kind {
            ListenerKind::Http { routes } => routes.iter().collect(),
            ListenerKind::Tcp { .. } => Vec::new(),
        })
        .collect()
}

/// The site of http `listener` (`None` for a tcp one). With `old` (the
/// site serving now and its config), a route keeps its rate-limit store
/// when its `rate_limit` is unchanged, and the idle pool of an upstream
/// that kept its `Arc` is kept.
pub fn site(
    listener: &Listener,
    config: &Config,
    upstreams: &BTreeMap<String, Arc<Upstream>>,
    old: Option<(&Site, &Config)>,
    shared: &Shared,
) -> Option<Site> {
    let ListenerKind::Http { routes } = &listener.kind else {
        return None;
    };
    let metrics = &shared.metrics;
    let old_routes = old.map(|(s, c)| (s.router.routes(), routes_of(c, &listener.name)));
    // One idle-connection pool per upstream on this listener (its
    // connections belong to this listener's runtimes).
    let mut idle: HashMap<&str, Arc<IdleConns>> = HashMap::new();
    let router = Router::new(
        routes
            .iter()
            .filter_map(|r| {
                let upstream = match &r.upstream {
                    Some(name) => Some(Arc::clone(upstreams.get(name.as_str())?)),
                    None => None,
                };
                let key = r.upstream.as_deref().unwrap_or("");
                let pool = idle.entry(key).or_insert_with(|| {
                    let kept = old_routes.as_ref().and_then(|(rts, _)| {
                        rts.iter().find_map(|rt| match (&rt.upstream, &upstream) {
                            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => Some(Arc::clone(&rt.idle)),
                            _ => None,
                        })
                    });
                    let backends = upstream.as_ref().map_or(0, |u| u.spec.backends.len());
                    kept.unwrap_or_else(|| Arc::new(IdleConns::new(backends)))
                });
                let store = old_routes.as_ref().and_then(|(rts, cfgs)| {
                    let before = cfgs.iter().find(|c| c.name == r.name)?;
                    if !same(&before.rate_limit, &r.rate_limit) {
                        return None;
                    }
                    rts.iter()
                        .find(|rt| rt.name == r.name)
                        .and_then(|rt| rt.rate_limit.clone())
                });
                let rt = RouteRuntime::new(
                    &listener.name,
                    r,
                    upstream,
                    Arc::clone(pool),
                    metrics,
                    config.server.max_body_bytes,
                    store,
                );
                Some((r, Arc::new(rt)))
            })
            .collect(),
    );
    // HTTP/2 streams go through the forwarder's pipeline when it can reach
    // every route's backends (plain HTTP/1.1); else Pingora's.
    let h2_front = listener.forwarder && router.routes().iter().all(|r| forwardable(r));
    let proxy_out = router
        .routes()
        .iter()
        .filter_map(|r| r.upstream.as_ref())
        .any(|u| u.spec.send_proxy_protocol.is_some());
    Some(Site {
        listener: listener.name.clone(),
        router,
        metrics: Arc::clone(metrics),
        scheme: if listener.tls.is_some() {
            "https"
        } else {
            "http"
        },
        sticky_key: Arc::clone(&shared.sticky_key),
        access_log: shared.access_log.clone(),
        unrouted: StatusCounters::new(&metrics.http_requests, &listener.name, "", ""),
        max_uri_bytes: config.server.max_uri_bytes,
        trusted_proxies: listener.trusted_proxies.clone(),
        request_id: config.server.request_id.clone(),
        h2_front,
        proxy_out,
    })
}

/// The certificates of a TLS listener, chosen by SNI.
pub fn sni_certs(tls: &ListenerTls) -> SniCerts {
    let named = tls.sni.iter().flat_map(|c| {
        c.names
            .iter()
            .map(|n| (n.clone(), Arc::clone(&c.pair.certified)))
    });
    SniCerts::new(Arc::clone(&tls.default.certified), named)
}
