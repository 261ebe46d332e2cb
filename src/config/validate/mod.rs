//! Raw → model. Every check records a [`Problem`] and carries on, so an
//! operator sees everything that is wrong in one run. Defaults live here.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod compress;
mod discovery;
mod listener;
mod outlier;
mod route_policy;
mod upstream;
mod upstream_limits;

use super::duration::{parse_duration, DURATION_HINT};
use super::model::*;
use super::path::YamlPath;
use super::problem::Problems;
use super::raw::*;
use listener::listener;
use upstream::upstream;

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
    let max_uri_bytes = match s.max_uri_bytes {
        None => 8192,
        Some(n) if n < 256 => {
            p.error(&path.key("max_uri_bytes"), "must be at least 256");
            8192
        }
        Some(n) => n as usize,
    };
    ServerSettings {
        max_connections: s.max_connections.unwrap_or(0),
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
        state_file: s
            .state_file
            .and_then(|f| state_file(f, &path.key("state_file"), p)),
        header_timeout: nonzero_duration(
            s.header_timeout.as_ref(),
            Duration::from_secs(10),
            &path.key("header_timeout"),
            p,
        ),
        max_header_bytes,
        max_uri_bytes,
        max_body_bytes: s.max_body_bytes.unwrap_or(0),
        request_id: s
            .request_id
            .and_then(|r| route_policy::request_id(r, &path.key("request_id"), p)),
        resolvers: resolvers(s.resolvers.unwrap_or_default(), &path.key("resolvers"), p),
        idle_timeout: nonzero_duration(
            s.idle_timeout.as_ref(),
            Duration::from_secs(60),
            &path.key("idle_timeout"),
            p,
        ),
    }
}

/// `20%` → 20.0: a number of percent, not negative (each key bounds it).
pub(super) fn percent_of(text: &str) -> Option<f64> {
    let v: f64 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// `server.resolvers`: `ip:port` (or a bare IP, port 53) each.
fn resolvers(list: Vec<String>, path: &YamlPath, p: &mut Problems) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let parsed = r.parse::<SocketAddr>().or_else(|_| {
            r.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 53))
        });
        match parsed {
            Ok(a) => out.push(a),
            Err(_) => {
                p.error(&path.index(i), format!("\"{r}\" is not an ip:port address"))
                    .hint("a DNS server by address, e.g. 127.0.0.53:53 or [::1]:53");
            }
        }
    }
    out
}

fn admin(a: RawAdmin, path: &YamlPath, p: &mut Problems) -> Option<AdminSettings> {
    let Some(listen) = a.listen else {
        p.error(path, "admin needs a `listen` address")
            .hint("e.g. listen: 127.0.0.1:9901");
        return None;
    };
    let token = a
        .token_file
        .and_then(|f| admin_token(&f, &path.key("token_file"), p));
    listen_addr(&listen, &path.key("listen"), p).map(|listen| AdminSettings { listen, token })
}

/// The write API's token: the file's content, trimmed. The file is read at
/// `check` (and start), so a missing or empty one is an error then, not a
/// surprise 401 later. The token itself is never part of a message.
fn admin_token(file: &str, path: &YamlPath, p: &mut Problems) -> Option<AdminToken> {
    match std::fs::read_to_string(file) {
        Ok(text) if !text.trim().is_empty() => Some(AdminToken(text.trim().into())),
        Ok(_) => {
            p.error(path, format!("token file \"{file}\" is empty"))
                .hint("write the bearer token into it, e.g. `openssl rand -hex 32 > FILE`");
            None
        }
        Err(e) => {
            p.error(path, format!("cannot read token file \"{file}\": {e}"))
                .hint("give a readable file that holds the write API's bearer token");
            None
        }
    }
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

/// RFC 9110 token characters: what header and cookie names are made of.
fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
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
            ListenerKind::Http { routes } => {
                routes.iter().any(|r| r.upstream.as_ref() == Some(name))
            }
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

/// `server.state_file`: a file path whose directory exists (the file itself
/// is created at the first change).
fn state_file(file: String, path: &YamlPath, p: &mut Problems) -> Option<PathBuf> {
    let file = PathBuf::from(file);
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if file.file_name().is_none() || file.is_dir() {
        p.error(path, format!("{} is not a file path", file.display()))
            .hint("state_file: /var/lib/switchyard/state.json");
        return None;
    }
    if !dir.is_dir() {
        p.error(path, format!("directory {} does not exist", dir.display()))
            .hint("create it, writable by switchyard (e.g. systemd StateDirectory=switchyard)");
        return None;
    }
    Some(file)
}
