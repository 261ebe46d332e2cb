//! What a reload may not change: the listening sockets and how they are
//! served, which are set up once per process. Those changes need
//! `switchyard upgrade` (a new process taking the sockets over).
//!
//! Upgrade only: adding or removing a listener; a listener's `listen`,
//! `protocol`, `tls` on/off, `h2c`, `forwarder`, `proxy_protocol`,
//! `max_connections_per_ip`, `max_connections`, a tcp listener's `idle_timeout`; adding or
//! removing `admin` or changing `admin.listen`; every `server:` key but
//! `max_body_bytes` (threads, pid and socket files, timeouts, header
//! limits, logs, `request_id`, `state_file`). Everything else reloads:
//! routes, upstreams, backends, policies, health checks, route policies,
//! rate limits, `trusted_proxies`, a tcp listener's `upstream`, TLS
//! certificates (files read again), `admin.token_file`.

use super::build::same;
use crate::config::{Config, Listener, ListenerKind, ServerSettings};

const HINT: &str = "reload cannot change listeners or these server settings; apply this file with `switchyard upgrade -c FILE`";

/// `Ok` when `new` can be applied in place of `old`; else every difference
/// that needs an upgrade, one a line, and the hint.
pub fn check(old: &Config, new: &Config) -> Result<(), String> {
    let mut why = Vec::new();
    for l in &new.listeners {
        match old.listeners.iter().find(|o| o.name == l.name) {
            None => why.push(format!("listeners.{}: added", l.name)),
            Some(o) => listener(o, l, &mut why),
        }
    }
    for o in &old.listeners {
        if !new.listeners.iter().any(|l| l.name == o.name) {
            why.push(format!("listeners.{}: removed", o.name));
        }
    }
    match (&old.admin, &new.admin) {
        (Some(a), Some(b)) if a.listen != b.listen => {
            why.push(format!("admin.listen: {} -> {}", a.listen, b.listen))
        }
        (None, Some(_)) => why.push("admin: added".into()),
        (Some(_), None) => why.push("admin: removed".into()),
        _ => {}
    }
    if !same(&upgrade_only(&old.server), &upgrade_only(&new.server)) {
        why.push("server: a setting other than max_body_bytes changed".into());
    }
    if why.is_empty() {
        return Ok(());
    }
    why.push(HINT.into());
    Err(why.join("\n"))
}

/// `server:` without the keys a reload applies.
fn upgrade_only(s: &ServerSettings) -> ServerSettings {
    ServerSettings {
        max_body_bytes: 0,
        ..s.clone()
    }
}

fn listener(o: &Listener, l: &Listener, why: &mut Vec<String>) {
    let name = &l.name;
    let mut differs = |key: &str, a: String, b: String| {
        if a != b {
            why.push(format!("listeners.{name}.{key}: {a} -> {b}"));
        }
    };
    differs("listen", o.listen.to_string(), l.listen.to_string());
    differs(
        "protocol",
        protocol(&o.kind).into(),
        protocol(&l.kind).into(),
    );
    differs(
        "tls",
        o.tls.is_some().to_string(),
        l.tls.is_some().to_string(),
    );
    differs("h2c", o.h2c.to_string(), l.h2c.to_string());
    differs(
        "forwarder",
        o.forwarder.to_string(),
        l.forwarder.to_string(),
    );
    differs(
        "proxy_protocol",
        o.proxy_protocol.to_string(),
        l.proxy_protocol.to_string(),
    );
    differs(
        "max_connections_per_ip",
        o.max_connections_per_ip.to_string(),
        l.max_connections_per_ip.to_string(),
    );
    differs(
        "max_connections",
        format!("{:?}", o.max_connections),
        format!("{:?}", l.max_connections),
    );
    if let (
        ListenerKind::Tcp {
            idle_timeout: a, ..
        },
        ListenerKind::Tcp {
            idle_timeout: b, ..
        },
    ) = (&o.kind, &l.kind)
    {
        differs("idle_timeout", format!("{a:?}"), format!("{b:?}"));
    }
}

fn protocol(kind: &ListenerKind) -> &'static str {
    match kind {
        ListenerKind::Http { .. } => "http",
        ListenerKind::Tcp { .. } => "tcp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, extra: &str, server: &str) -> Config {
        let text = format!(
            "server: {{ {server} }}\nlisteners:\n  web:\n    listen: \"{listen}\"\n{extra}    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: [{{ addr: \"127.0.0.1:9\" }}] }}\n"
        );
        crate::config::load_str(&text).unwrap().config
    }

    #[test]
    fn routes_upstreams_and_max_body_bytes_reload() {
        let old = config("127.0.0.1:8080", "", "max_body_bytes: 10");
        let new = config(
            "127.0.0.1:8080",
            "    trusted_proxies: [10.0.0.0/8]\n",
            "max_body_bytes: 20",
        );
        assert_eq!(check(&old, &new), Ok(()));
    }

    #[test]
    fn listener_and_server_changes_need_an_upgrade() {
        let old = config("127.0.0.1:8080", "", "");
        for (new, key) in [
            (config("127.0.0.1:8081", "", ""), "listeners.web.listen"),
            (
                config("127.0.0.1:8080", "    h2c: true\n", ""),
                "listeners.web.h2c",
            ),
            (
                config("127.0.0.1:8080", "    forwarder: false\n", ""),
                "listeners.web.forwarder",
            ),
            (config("127.0.0.1:8080", "", "threads: 3"), "server:"),
        ] {
            let why = check(&old, &new).unwrap_err();
            assert!(why.contains(key), "{key}: {why}");
            assert!(why.contains("switchyard upgrade"), "{why}");
        }
    }
}
