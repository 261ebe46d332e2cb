//! Listeners and their routes: addresses, protocols, hosts, prefixes,
//! rate limits and sticky settings.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::super::model::*;
use super::super::path::YamlPath;
use super::super::problem::Problems;
use super::super::raw::*;
use super::super::tls::listener_tls;
use super::compress::compress;
use super::route_policy;
use super::{listen_addr, nonzero_duration, valid_token, DEFAULT_TCP_IDLE};

pub(super) fn listener(
    name: &str,
    l: RawListener,
    path: &YamlPath,
    upstreams: &BTreeMap<String, Arc<UpstreamSpec>>,
    p: &mut Problems,
) -> Option<Listener> {
    let listen = match &l.listen {
        Some(s) => listen_addr(s, &path.key("listen"), p),
        None => {
            p.error(path, "listener needs a `listen` address")
                .hint("e.g. listen: 0.0.0.0:8080");
            None
        }
    };
    let tls = l.tls.and_then(|t| listener_tls(t, &path.key("tls"), p));
    let trusted_proxies =
        route_policy::cidrs(l.trusted_proxies.clone(), &path.key("trusted_proxies"), p);
    let protocol = l.protocol.as_deref().unwrap_or("http");
    let kind = match protocol {
        "http" => {
            if l.upstream.is_some() {
                p.error(
                    &path.key("upstream"),
                    "http listeners route by `routes`, not `upstream`",
                )
                .hint("write routes: [{ upstream: NAME }] to send everything to one upstream");
            }
            let raw_routes = l.routes.unwrap_or_default();
            if raw_routes.is_empty() {
                p.error(path, "http listener has no routes").hint(
                    "add routes: [{ upstream: NAME }]; without routes every request is a 404",
                );
            }
            let mut routes = Vec::new();
            for (i, r) in raw_routes.into_iter().enumerate() {
                if let Some(r) = route(name, i, r, &path.key("routes").index(i), upstreams, p) {
                    routes.push(r);
                }
            }
            duplicate_routes(&routes, &path.key("routes"), p);
            if l.idle_timeout.is_some() {
                p.error(
                    &path.key("idle_timeout"),
                    "idle_timeout is for tcp listeners",
                )
                .hint("HTTP keep-alive connections use server.idle_timeout");
            }
            ListenerKind::Http { routes }
        }
        "tcp" => {
            if l.routes.is_some() {
                p.error(&path.key("routes"), "tcp listeners have no routes")
                    .hint("use `upstream: NAME`; every connection goes to that upstream");
            }
            if tls.is_some() {
                p.error(&path.key("tls"), "TLS is only supported on http listeners");
            }
            if l.h2c.is_some() {
                p.error(&path.key("h2c"), "h2c is for http listeners");
            }
            if l.forwarder.is_some() {
                p.error(&path.key("forwarder"), "forwarder is for http listeners");
            }
            if l.trusted_proxies.is_some() {
                p.error(&path.key("trusted_proxies"), "trusted_proxies is for http listeners")
                    .hint("a tcp listener sees no X-Forwarded-For; use proxy_protocol to learn client addresses behind a balancer");
            }
            match l.upstream {
                Some(u) => {
                    upstream_ref(&u, &path.key("upstream"), upstreams, p);
                    if let Some(spec) = upstreams.get(&u) {
                        if let Some(HashKey::ClientIp) | None = spec.hash_key {
                        } else {
                            p.warning(&path.key("upstream"), format!(
                                "upstream \"{u}\" hashes on {:?}, but tcp listeners hash on the client IP",
                                spec.hash_key
                            ));
                        }
                    }
                    let idle_timeout = nonzero_duration(
                        l.idle_timeout.as_ref(),
                        DEFAULT_TCP_IDLE,
                        &path.key("idle_timeout"),
                        p,
                    );
                    ListenerKind::Tcp {
                        upstream: u,
                        idle_timeout,
                    }
                }
                None => {
                    p.error(path, "tcp listener needs an `upstream`");
                    return None;
                }
            }
        }
        other => {
            p.error(
                &path.key("protocol"),
                format!("unknown protocol \"{other}\""),
            )
            .hint("valid protocols: http, tcp");
            return None;
        }
    };
    let h2c = l.h2c.unwrap_or(false);
    if h2c && tls.is_some() {
        p.error(&path.key("h2c"), "h2c is for plain listeners")
            .hint("TLS listeners offer h2 and http/1.1 by ALPN; remove `h2c`");
    }
    Some(Listener {
        name: name.to_string(),
        listen: listen?,
        tls,
        h2c,
        forwarder: l.forwarder.unwrap_or(true),
        trusted_proxies,
        proxy_protocol: l.proxy_protocol.unwrap_or(false),
        max_connections_per_ip: l.max_connections_per_ip.unwrap_or(0),
        max_connections: l.max_connections.unwrap_or(0),
        kind,
    })
}

fn upstream_ref(
    name: &str,
    path: &YamlPath,
    upstreams: &BTreeMap<String, Arc<UpstreamSpec>>,
    p: &mut Problems,
) {
    if !upstreams.contains_key(name) {
        let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
        let hint = if known.is_empty() {
            "no upstreams are defined; add one under `upstreams:`".to_string()
        } else {
            format!("defined upstreams: {}", known.join(", "))
        };
        p.error(path, format!("upstream \"{name}\" is not defined"))
            .hint(hint);
    }
}

fn route(
    listener: &str,
    index: usize,
    r: RawRoute,
    path: &YamlPath,
    upstreams: &BTreeMap<String, Arc<UpstreamSpec>>,
    p: &mut Problems,
) -> Option<Route> {
    let name = r.name.unwrap_or_else(|| format!("{listener}-{index}"));
    let host = match r.host.as_deref() {
        None | Some("") | Some("*") => HostMatch::Any,
        Some(h) => host_match(h, &path.key("host"), p),
    };
    let path_prefix = match r.path_prefix.as_deref() {
        None => "/".to_string(),
        Some(pp) if !pp.starts_with('/') => {
            p.error(
                &path.key("path_prefix"),
                format!("\"{pp}\" does not start with /"),
            )
            .hint("write e.g. /api");
            "/".to_string()
        }
        Some(pp) if pp.contains(['?', '#']) || pp.contains(char::is_whitespace) => {
            p.error(
                &path.key("path_prefix"),
                format!("\"{pp}\" must be a plain path (no query, fragment or spaces)"),
            );
            "/".to_string()
        }
        Some(pp) => {
            let trimmed = pp.trim_end_matches('/');
            if trimmed.is_empty() {
                "/".to_string()
            } else {
                trimmed.to_string()
            }
        }
    };
    let redirect = r
        .redirect
        .and_then(|rd| route_policy::redirect(rd, &path.key("redirect"), p));
    let upstream = match r.upstream {
        Some(u) => {
            upstream_ref(&u, &path.key("upstream"), upstreams, p);
            Some(u)
        }
        None if redirect.is_some() => None,
        None => {
            p.error(path, "route needs an `upstream` (or a `redirect`)")
                .hint("add upstream: NAME to proxy, or redirect: { scheme: https } to answer with a redirect");
            return None;
        }
    };
    if redirect.is_some() && (r.rate_limit.is_some() || r.sticky.is_some()) {
        p.warning(path, "a redirect route answers every request itself; its rate_limit and sticky settings are unused");
    }
    let rate_limit = r
        .rate_limit
        .and_then(|rl| rate_limit(rl, &path.key("rate_limit"), p));
    let sticky = r.sticky.and_then(|s| sticky(s, &path.key("sticky"), p));
    let request_headers = r
        .request_headers
        .and_then(|h| route_policy::header_rules(h, &path.key("request_headers"), p));
    let response_headers = r
        .response_headers
        .and_then(|h| route_policy::header_rules(h, &path.key("response_headers"), p));
    let compress = r
        .compress
        .map(|c| Arc::new(compress(c, &path.key("compress"), p)));
    Some(Route {
        name,
        host,
        path_prefix,
        strip_prefix: r.strip_prefix.unwrap_or(false),
        upstream,
        rate_limit,
        sticky,
        redirect,
        request_headers,
        response_headers,
        max_body_bytes: r.max_body_bytes,
        allow: route_policy::cidrs(r.allow, &path.key("allow"), p),
        deny: route_policy::cidrs(r.deny, &path.key("deny"), p),
        max_inflight: route_policy::max_inflight(r.max_inflight, &path.key("max_inflight"), p),
        timeout: route_policy::timeout(r.timeout.as_ref(), &path.key("timeout"), p),
        compress,
    })
}

fn host_match(h: &str, path: &YamlPath, p: &mut Problems) -> HostMatch {
    let lower = h.to_ascii_lowercase();
    let (wild, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.is_empty() || !name.split('.').all(valid_label) {
        p.error(path, format!("\"{h}\" is not a host name"))
            .hint("write an exact name (api.example.com) or a leading wildcard (*.example.com), without port");
        return HostMatch::Any;
    }
    if wild {
        HostMatch::Wildcard(format!(".{name}"))
    } else {
        HostMatch::Exact(name.to_string())
    }
}

fn duplicate_routes(routes: &[Route], path: &YamlPath, p: &mut Problems) {
    let mut seen: HashMap<(&HostMatch, &str), usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        if let Some(first) = seen.insert((&r.host, r.path_prefix.as_str()), i) {
            p.error(&path.index(i), format!(
                "same host ({}) and path_prefix ({}) as routes[{first}]; this route could never match",
                r.host, r.path_prefix
            ));
        }
        if let Some(first) = names.insert(r.name.as_str(), i) {
            p.error(
                &path.index(i).key("name"),
                format!("route name \"{}\" is also used by routes[{first}]", r.name),
            )
            .hint("route names label metrics and must be unique within a listener");
        }
    }
}

fn rate_limit(rl: RawRateLimit, path: &YamlPath, p: &mut Problems) -> Option<RateLimit> {
    let rate = match rl.rate {
        None => {
            p.error(path, "rate_limit needs `rate`")
                .hint("e.g. rate: 100, per: 1s");
            return None;
        }
        Some(0) => {
            p.error(&path.key("rate"), "must be at least 1");
            1
        }
        Some(r) => r,
    };
    let per = nonzero_duration(rl.per.as_ref(), Duration::from_secs(1), &path.key("per"), p);
    let burst = match rl.burst {
        Some(0) => {
            p.error(&path.key("burst"), "must be at least 1");
            rate
        }
        Some(b) => b,
        None => rate,
    };
    let key = match rl.key.as_deref() {
        None | Some("client_ip") => RateKey::ClientIp,
        Some("route") => RateKey::Route,
        Some(k) => match k.strip_prefix("header:") {
            Some(h) if valid_token(h) => RateKey::Header(h.to_ascii_lowercase()),
            _ => {
                p.error(&path.key("key"), format!("unknown rate limit key \"{k}\""))
                    .hint("valid keys: client_ip, route, header:NAME");
                RateKey::ClientIp
            }
        },
    };
    let store = match rl.store.as_deref() {
        None | Some("local") => RateStore::Local,
        Some(s) if s.starts_with("redis://") => {
            // Parsed as the client will, so `check` catches what `run` would
            // fail on. The URL may hold a password: never echo it.
            if redis::IntoConnectionInfo::into_connection_info(s).is_err() {
                p.error(&path.key("store"), "invalid redis URL").hint(
                    "write redis://HOST:PORT[/DB] (optionally redis://:PASSWORD@HOST:PORT/DB), e.g. redis://10.0.0.5:6379/0",
                );
            }
            RateStore::Redis(s.to_string())
        }
        Some(s) => {
            // Only the scheme of a URL: the rest may hold a password.
            let shown = s.split_once("://").map_or(s, |(scheme, _)| scheme);
            p.error(&path.key("store"), format!("unknown store \"{shown}\""))
                .hint("valid stores: local, redis://HOST:PORT[/DB] (no TLS: rediss:// is not supported)");
            RateStore::Local
        }
    };
    let on_store_error = match rl.on_store_error.as_deref() {
        None | Some("allow") => StoreErrorPolicy::Allow,
        Some("deny") => StoreErrorPolicy::Deny,
        Some(s) => {
            p.error(
                &path.key("on_store_error"),
                format!("unknown value \"{s}\""),
            )
            .hint("valid values: allow, deny");
            StoreErrorPolicy::Allow
        }
    };
    Some(RateLimit {
        rate,
        per,
        burst,
        key,
        store,
        on_store_error,
    })
}

fn sticky(s: RawSticky, path: &YamlPath, p: &mut Problems) -> Option<Sticky> {
    let cookie = match s.cookie {
        Some(c) if valid_token(&c) => c,
        Some(c) => {
            p.error(
                &path.key("cookie"),
                format!("\"{c}\" is not a valid cookie name"),
            )
            .hint("use letters, digits, - and _");
            return None;
        }
        None => {
            p.error(path, "sticky needs a `cookie` name")
                .hint("e.g. cookie: SWITCHYARD_ID");
            return None;
        }
    };
    let max_age = s
        .max_age
        .as_ref()
        .map(|m| nonzero_duration(Some(m), Duration::from_secs(1), &path.key("max_age"), p));
    Some(Sticky { cookie, max_age })
}
