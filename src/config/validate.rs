//! Raw → model. Every check records a [`Problem`] and carries on, so an
//! operator sees everything that is wrong in one run. Defaults live here.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::duration::{parse_duration, DURATION_HINT};
use super::model::*;
use super::path::YamlPath;
use super::problem::Problems;
use super::raw::*;
use super::tls::{listener_tls, upstream_tls};

/// Largest accepted backend weight (HAProxy allows 256; we allow more, but a
/// Ketama ring holds 160 points per weight unit, so it must stay bounded).
pub const MAX_WEIGHT: u64 = 1000;

/// A tcp listener closes connections idle (no byte either way) this long.
pub const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(3600);

/// Largest sum of weights for `consistent_hash`: 160 ring points per unit,
/// 8 bytes each, so 10,000 units is a 12.8 MB ring built at start.
pub const MAX_RING_WEIGHT: u64 = 10_000;

pub fn validate(raw: RawConfig, p: &mut Problems) -> Option<Config> {
    let root = YamlPath::root();
    let server = server(raw.server.unwrap_or_default(), &root.key("server"), p);
    let admin = raw.admin.and_then(|a| admin(a, &root.key("admin"), p));

    let upstreams_raw = raw.upstreams.unwrap_or_default();
    let mut upstreams = BTreeMap::new();
    for (name, u) in upstreams_raw {
        let path = root.key("upstreams").key(&name);
        if let Some(spec) = upstream(&name, u, &path, p) {
            upstreams.insert(name, Arc::new(spec));
        }
    }

    let listeners_raw = raw.listeners.unwrap_or_default();
    if listeners_raw.is_empty() {
        p.error(&root.key("listeners"), "no listeners are defined")
            .hint(
            "add at least one, e.g. listeners: { web: { listen: 0.0.0.0:8080, routes: [...] } }",
        );
    }
    let mut listeners = Vec::new();
    for (name, l) in listeners_raw {
        let path = root.key("listeners").key(&name);
        if let Some(l) = listener(&name, l, &path, &upstreams, p) {
            listeners.push(l);
        }
    }

    cross_checks(&listeners, admin.as_ref(), &upstreams, p);

    if p.has_errors() {
        return None;
    }
    Some(Config {
        server,
        admin,
        listeners,
        upstreams,
    })
}

fn duration(
    value: Option<&String>,
    default: Duration,
    path: &YamlPath,
    p: &mut Problems,
) -> Duration {
    match value {
        None => default,
        Some(s) => parse_duration(s).unwrap_or_else(|e| {
            p.error(path, format!("bad duration: {e}"))
                .hint(DURATION_HINT);
            default
        }),
    }
}

fn nonzero_duration(
    value: Option<&String>,
    default: Duration,
    path: &YamlPath,
    p: &mut Problems,
) -> Duration {
    let d = duration(value, default, path, p);
    if d.is_zero() {
        p.error(path, "must be greater than zero");
    }
    d
}

fn server(s: RawServer, path: &YamlPath, p: &mut Problems) -> ServerSettings {
    let threads = match s.threads {
        None => None,
        Some(0) => {
            p.error(&path.key("threads"), "must be at least 1")
                .hint("leave it out to use one thread per CPU");
            None
        }
        Some(n) if n > 1024 => {
            p.error(
                &path.key("threads"),
                format!("{n} threads is more than 1024"),
            );
            None
        }
        Some(n) => NonZeroUsize::new(n as usize),
    };
    let max_header_bytes = match s.max_header_bytes {
        None => 65536,
        Some(n) if n < 1024 => {
            p.error(&path.key("max_header_bytes"), "must be at least 1024");
            65536
        }
        Some(n) => n as usize,
    };
    ServerSettings {
        threads,
        pid_file: PathBuf::from(s.pid_file.unwrap_or_else(|| "/tmp/switchyard.pid".into())),
        upgrade_sock: PathBuf::from(
            s.upgrade_sock
                .unwrap_or_else(|| "/tmp/switchyard_upgrade.sock".into()),
        ),
        grace_period: duration(
            s.grace_period.as_ref(),
            Duration::from_secs(5),
            &path.key("grace_period"),
            p,
        ),
        shutdown_timeout: duration(
            s.shutdown_timeout.as_ref(),
            Duration::from_secs(5),
            &path.key("shutdown_timeout"),
            p,
        ),
        error_log: s.error_log.map(PathBuf::from),
        access_log: s.access_log.map(PathBuf::from),
        header_timeout: nonzero_duration(
            s.header_timeout.as_ref(),
            Duration::from_secs(10),
            &path.key("header_timeout"),
            p,
        ),
        max_header_bytes,
        idle_timeout: nonzero_duration(
            s.idle_timeout.as_ref(),
            Duration::from_secs(60),
            &path.key("idle_timeout"),
            p,
        ),
    }
}

fn admin(a: RawAdmin, path: &YamlPath, p: &mut Problems) -> Option<AdminSettings> {
    let Some(listen) = a.listen else {
        p.error(path, "admin needs a `listen` address")
            .hint("e.g. listen: 127.0.0.1:9901");
        return None;
    };
    listen_addr(&listen, &path.key("listen"), p).map(|listen| AdminSettings { listen })
}

/// Listen addresses must be literal `ip:port` (IPv6 in brackets); binding to
/// a name would make the socket depend on DNS at start.
fn listen_addr(s: &str, path: &YamlPath, p: &mut Problems) -> Option<SocketAddr> {
    match s.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.error(path, format!("\"{s}\" is not an ip:port address"))
                .hint("write e.g. 0.0.0.0:8080, 127.0.0.1:9901 or [::1]:8080");
            None
        }
    }
}

fn listener(
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
    let upstream = match r.upstream {
        Some(u) => {
            upstream_ref(&u, &path.key("upstream"), upstreams, p);
            u
        }
        None => {
            p.error(path, "route needs an `upstream`");
            return None;
        }
    };
    let rate_limit = r
        .rate_limit
        .and_then(|rl| rate_limit(rl, &path.key("rate_limit"), p));
    let sticky = r.sticky.and_then(|s| sticky(s, &path.key("sticky"), p));
    Some(Route {
        name,
        host,
        path_prefix,
        strip_prefix: r.strip_prefix.unwrap_or(false),
        upstream,
        rate_limit,
        sticky,
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

/// RFC 9110 token characters: what header and cookie names are made of.
fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
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

fn upstream(name: &str, u: RawUpstream, path: &YamlPath, p: &mut Problems) -> Option<UpstreamSpec> {
    let policy = match u.policy.as_deref() {
        None => Policy::RoundRobin,
        Some(s) => Policy::from_name(s).unwrap_or_else(|| {
            let valid: Vec<&str> = Policy::ALL.iter().map(|p| p.name()).collect();
            p.error(&path.key("policy"), format!("unknown policy \"{s}\""))
                .hint(format!("valid policies: {}", valid.join(", ")));
            Policy::RoundRobin
        }),
    };
    let hash_key = u
        .hash_key
        .as_deref()
        .and_then(|k| hash_key(k, &path.key("hash_key"), p));
    if policy == Policy::ConsistentHash && u.hash_key.is_none() {
        p.error(path, "policy consistent_hash needs a `hash_key`")
            .hint("e.g. hash_key: client_ip (or path, uri, header:NAME, cookie:NAME, query:NAME)");
    }
    if policy != Policy::ConsistentHash && u.hash_key.is_some() {
        p.warning(
            &path.key("hash_key"),
            format!("hash_key is ignored by policy {}", policy.name()),
        )
        .hint("it only applies to policy: consistent_hash");
    }

    let raw_backends = u.backends.unwrap_or_default();
    if raw_backends.is_empty() {
        p.error(path, "upstream has no backends")
            .hint("add backends: [{ addr: 127.0.0.1:9001 }]");
    }
    let mut backends: Vec<BackendSpec> = Vec::new();
    for (i, b) in raw_backends.into_iter().enumerate() {
        let bpath = path.key("backends").index(i);
        let Some(b) = backend(b, &bpath, p) else {
            continue;
        };
        if let Some(j) = backends.iter().position(|o| o.socket == b.socket) {
            p.error(
                &bpath.key("addr"),
                format!("{} is the same backend as backends[{j}]", b.addr),
            )
            .hint("list each backend once and use `weight` to give it more traffic");
            continue;
        }
        backends.push(b);
    }
    let total_weight: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    if policy == Policy::ConsistentHash && total_weight > MAX_RING_WEIGHT {
        p.error(&path.key("backends"), format!(
            "consistent_hash would place {} ring points (160 per weight unit, {total_weight} units)",
            total_weight * 160
        ))
        .hint(format!("keep the sum of weights at most {MAX_RING_WEIGHT}; weights are relative, so divide them"));
    }
    if !backends.is_empty() && backends.iter().all(|b| b.weight == 0) {
        p.warning(
            &path.key("backends"),
            "every backend has weight 0 (draining): the upstream answers 503",
        );
    }

    let health_check = u
        .health_check
        .and_then(|h| health_check(h, &path.key("health_check"), p));
    let circuit_breaker = u
        .circuit_breaker
        .map(|c| circuit_breaker(c, &path.key("circuit_breaker"), p));
    let tls = u.tls.and_then(|t| upstream_tls(t, &backends, path, p));
    if let (Some(t), Some(h)) = (&tls, &health_check) {
        if let HealthCheckKind::Http { host: None, .. } = h.kind {
            if t.verify && t.sni.is_none() {
                p.warning(
                    &path.key("health_check"),
                    "http health checks verify the backends' certificates for the name \"localhost\"",
                )
                .hint("set health_check.host (or tls.sni) to the name in the backends' certificates");
            }
        }
    }
    let protocol = match u.protocol.as_deref() {
        None | Some("http1") => UpstreamProtocol::Http1,
        Some("h2") => UpstreamProtocol::H2,
        Some(other) => {
            p.error(
                &path.key("protocol"),
                format!("unknown upstream protocol \"{other}\""),
            )
            .hint(
                "valid protocols: http1, h2 (HTTP/2 by ALPN with tls, by prior knowledge without)",
            );
            UpstreamProtocol::Http1
        }
    };
    let retries = match u.retries {
        None => 2,
        Some(r) if r > 16 => {
            p.error(&path.key("retries"), format!("{r} retries is more than 16"));
            16
        }
        Some(r) => r as u32,
    };
    Some(UpstreamSpec {
        name: name.to_string(),
        policy,
        hash_key,
        backends,
        health_check,
        circuit_breaker,
        retries,
        connect_timeout: nonzero_duration(
            u.connect_timeout.as_ref(),
            Duration::from_secs(1),
            &path.key("connect_timeout"),
            p,
        ),
        read_timeout: nonzero_duration(
            u.read_timeout.as_ref(),
            Duration::from_secs(30),
            &path.key("read_timeout"),
            p,
        ),
        slow_start: duration(
            u.slow_start.as_ref(),
            Duration::ZERO,
            &path.key("slow_start"),
            p,
        ),
        tls,
        protocol,
    })
}

fn hash_key(k: &str, path: &YamlPath, p: &mut Problems) -> Option<HashKey> {
    let named = |prefix: &str| {
        k.strip_prefix(prefix)
            .filter(|n| valid_token(n))
            .map(str::to_string)
    };
    let key = match k {
        "client_ip" => Some(HashKey::ClientIp),
        "path" => Some(HashKey::Path),
        "uri" => Some(HashKey::Uri),
        _ => named("header:")
            .map(|h| HashKey::Header(h.to_ascii_lowercase()))
            .or_else(|| named("cookie:").map(HashKey::Cookie))
            .or_else(|| named("query:").map(HashKey::Query)),
    };
    if key.is_none() {
        p.error(path, format!("unknown hash_key \"{k}\""))
            .hint("valid keys: client_ip, path, uri, header:NAME, cookie:NAME, query:NAME");
    }
    key
}

fn backend(b: RawBackend, path: &YamlPath, p: &mut Problems) -> Option<BackendSpec> {
    let weight = match b.weight {
        None => 1,
        Some(w) if w > MAX_WEIGHT => {
            p.error(
                &path.key("weight"),
                format!("weight {w} is more than {MAX_WEIGHT}"),
            )
            .hint("weights are relative: 1 and 3 give the same split as 100 and 300");
            1
        }
        Some(w) => w as u32,
    };
    let Some(addr) = b.addr else {
        p.error(path, "backend needs an `addr`")
            .hint("e.g. addr: 127.0.0.1:9001");
        return None;
    };
    let socket = resolve(&addr).map_err(|why| {
        p.error(&path.key("addr"), format!("\"{addr}\" {why}"))
            .hint("write ip:port or host:port, e.g. 127.0.0.1:9001, [::1]:9001 or app.internal:80");
    });
    Some(BackendSpec {
        addr,
        socket: socket.ok()?,
        weight,
    })
}

/// `ip:port` as is; `host:port` resolved once (first address wins).
fn resolve(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("has no port".into());
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err("is not an ip:port or host:port address".into());
    }
    match addr.to_socket_addrs() {
        Ok(mut it) => it.next().ok_or_else(|| "resolves to no address".into()),
        Err(e) => Err(format!("cannot be resolved: {e}")),
    }
}

fn health_check(h: RawHealthCheck, path: &YamlPath, p: &mut Problems) -> Option<HealthCheck> {
    let kind = match h.kind.as_deref() {
        Some("tcp") => {
            for (set, key) in [
                (h.path.is_some(), "path"),
                (h.host.is_some(), "host"),
                (h.expect_status.is_some(), "expect_status"),
            ] {
                if set {
                    p.warning(
                        &path.key(key),
                        format!("`{key}` is ignored by tcp health checks"),
                    );
                }
            }
            HealthCheckKind::Tcp
        }
        Some("http") => {
            let hc_path = h.path.unwrap_or_else(|| "/".into());
            if !hc_path.starts_with('/') {
                p.error(
                    &path.key("path"),
                    format!("\"{hc_path}\" does not start with /"),
                );
            }
            let expect_status = match &h.expect_status {
                None => (200, 399),
                Some(spec) => status_range(spec).unwrap_or_else(|| {
                    p.error(
                        &path.key("expect_status"),
                        "is not a status or status range",
                    )
                    .hint("write e.g. 200 or 200-399 (codes 100-599)");
                    (200, 399)
                }),
            };
            HealthCheckKind::Http {
                path: hc_path,
                host: h.host,
                expect_status,
            }
        }
        Some(other) => {
            p.error(
                &path.key("type"),
                format!("unknown health check type \"{other}\""),
            )
            .hint("valid types: tcp, http");
            return None;
        }
        None => {
            p.error(path, "health_check needs a `type`")
                .hint("type: tcp or type: http");
            return None;
        }
    };
    let threshold = |v: Option<u64>, default: u32, key: &str, p: &mut Problems| match v {
        None => default,
        Some(n) if (1..=100).contains(&n) => n as u32,
        Some(_) => {
            p.error(&path.key(key), "must be between 1 and 100");
            default
        }
    };
    let interval = nonzero_duration(
        h.interval.as_ref(),
        Duration::from_secs(2),
        &path.key("interval"),
        p,
    );
    let timeout = nonzero_duration(
        h.timeout.as_ref(),
        Duration::from_secs(1),
        &path.key("timeout"),
        p,
    );
    if timeout > interval {
        p.warning(
            &path.key("timeout"),
            "timeout is longer than interval: checks may overlap",
        );
    }
    Some(HealthCheck {
        kind,
        interval,
        timeout,
        healthy_threshold: threshold(h.healthy_threshold, 2, "healthy_threshold", p),
        unhealthy_threshold: threshold(h.unhealthy_threshold, 3, "unhealthy_threshold", p),
    })
}

fn status_range(spec: &StatusSpec) -> Option<(u16, u16)> {
    let (lo, hi) = match spec {
        StatusSpec::Code(c) => (*c, *c),
        StatusSpec::Text(t) => match t.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let c = t.trim().parse().ok()?;
                (c, c)
            }
        },
    };
    ((100..=599).contains(&lo) && (lo..=599).contains(&hi)).then_some((lo as u16, hi as u16))
}

fn circuit_breaker(c: RawCircuitBreaker, path: &YamlPath, p: &mut Problems) -> CircuitBreaker {
    let count = |v: Option<u64>, default: u32, key: &str, p: &mut Problems| match v {
        None => default,
        Some(n) if (1..=1_000_000).contains(&n) => n as u32,
        Some(_) => {
            p.error(&path.key(key), "must be between 1 and 1000000");
            default
        }
    };
    let failure_rate = match c.failure_rate {
        None => 0.5,
        Some(r) if r > 0.0 && r <= 1.0 => r,
        Some(r) => {
            p.error(
                &path.key("failure_rate"),
                format!("{r} is not a share in (0, 1]"),
            )
            .hint("e.g. failure_rate: 0.5 trips when half the requests in `window` failed");
            0.5
        }
    };
    CircuitBreaker {
        consecutive_failures: count(c.consecutive_failures, 5, "consecutive_failures", p),
        failure_rate,
        min_requests: count(c.min_requests, 20, "min_requests", p),
        window: nonzero_duration(
            c.window.as_ref(),
            Duration::from_secs(10),
            &path.key("window"),
            p,
        ),
        open_for: nonzero_duration(
            c.open_for.as_ref(),
            Duration::from_secs(10),
            &path.key("open_for"),
            p,
        ),
        half_open_requests: count(c.half_open_requests, 1, "half_open_requests", p),
    }
}

/// Checks that span sections: address clashes, unused upstreams.
fn cross_checks(
    listeners: &[Listener],
    admin: Option<&AdminSettings>,
    upstreams: &BTreeMap<String, Arc<UpstreamSpec>>,
    p: &mut Problems,
) {
    let mut bound: HashMap<SocketAddr, String> = HashMap::new();
    if let Some(a) = admin {
        bound.insert(a.listen, "admin".into());
    }
    for l in listeners {
        let path = YamlPath::root().key("listeners").key(&l.name).key("listen");
        if let Some(other) = bound.insert(l.listen, l.name.clone()) {
            p.error(&path, format!("{} is also used by {other}", l.listen))
                .hint("every listener (and admin) needs its own address");
        }
    }
    for name in upstreams.keys() {
        let used = listeners.iter().any(|l| match &l.kind {
            ListenerKind::Http { routes } => routes.iter().any(|r| &r.upstream == name),
            ListenerKind::Tcp { upstream, .. } => upstream == name,
        });
        if !used {
            p.warning(
                &YamlPath::root().key("upstreams").key(name),
                "no route or listener uses this upstream",
            );
        }
    }
}
