//! Loader tests on config text: defaults, normalization, and that problems
//! carry the right path and line.

use std::time::Duration;

use super::*;

const MINIMAL: &str = "listeners:\n  web:\n    listen: 127.0.0.1:8080\n    routes: [{ upstream: u }]\nupstreams:\n  u:\n    backends: [{ addr: 127.0.0.1:9001 }]\n";

fn errors(text: &str) -> Vec<Problem> {
    match load_str(text) {
        Ok(l) => panic!("expected errors, got {:?}", l.config),
        Err(ps) => ps
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .collect(),
    }
}

#[test]
fn minimal_config_gets_operator_defaults() {
    let c = load_str(MINIMAL).unwrap().config;
    assert!(c.admin.is_none());
    assert_eq!(c.server.grace_period, Duration::from_secs(5));
    assert_eq!(c.server.max_header_bytes, 65536);
    let u = &c.upstreams["u"];
    assert_eq!(u.policy, Policy::RoundRobin);
    assert_eq!(u.retries, 2);
    assert_eq!(u.connect_timeout, Duration::from_secs(1));
    assert_eq!(u.read_timeout, Duration::from_secs(30));
    assert_eq!(u.backends[0].weight, 1);
    let ListenerKind::Http { routes } = &c.listeners[0].kind else {
        panic!()
    };
    assert_eq!(routes[0].name, "web-0");
    assert_eq!(routes[0].path_prefix, "/");
    assert_eq!(routes[0].host, HostMatch::Any);
}

#[test]
fn hosts_and_prefixes_are_normalized() {
    let text = MINIMAL.replace(
        "routes: [{ upstream: u }]",
        "routes: [{ host: \"*.Example.COM\", path_prefix: /api/, upstream: u }, { host: API.example.com, upstream: u }]",
    );
    let c = load_str(&text).unwrap().config;
    let ListenerKind::Http { routes } = &c.listeners[0].kind else {
        panic!()
    };
    assert_eq!(routes[0].host, HostMatch::Wildcard(".example.com".into()));
    assert_eq!(routes[0].path_prefix, "/api");
    assert_eq!(routes[1].host, HostMatch::Exact("api.example.com".into()));
}

#[test]
fn ipv6_addresses_in_brackets() {
    let text = MINIMAL
        .replace("127.0.0.1:8080", "\"[::1]:8080\"")
        .replace("127.0.0.1:9001", "\"[::1]:9001\"");
    let c = load_str(&text).unwrap().config;
    assert_eq!(c.listeners[0].listen, "[::1]:8080".parse().unwrap());
    assert_eq!(c.upstreams["u"].backends[0].addr, "[::1]:9001");
}

#[test]
fn duplicate_routes_and_addresses_are_errors() {
    let text = MINIMAL.replace(
        "routes: [{ upstream: u }]",
        "routes: [{ upstream: u }, { path_prefix: /, upstream: u }]",
    );
    let es = errors(&text);
    assert!(es
        .iter()
        .any(|e| e.path.to_string() == "listeners.web.routes[1]"
            && e.message.contains("never match")));

    let text = MINIMAL.replace(
        "[{ addr: 127.0.0.1:9001 }]",
        "[{ addr: 127.0.0.1:9001 }, { addr: 127.0.0.1:9001 }]",
    );
    let es = errors(&text);
    assert_eq!(es[0].path.to_string(), "upstreams.u.backends[1].addr");

    let text = format!("admin: {{ listen: 127.0.0.1:8080 }}\n{MINIMAL}");
    let es = errors(&text);
    assert!(es[0].message.contains("also used by admin"), "{es:?}");
}

#[test]
fn listener_kinds_are_checked() {
    let text = MINIMAL.replace("    routes: [{ upstream: u }]\n", "    protocol: tcp\n");
    let es = errors(&text);
    assert!(es[0].message.contains("needs an `upstream`"));
    let text = MINIMAL.replace("    routes: [{ upstream: u }]\n", "    protocol: udp\n");
    let es = errors(&text);
    assert_eq!(es[0].path.to_string(), "listeners.web.protocol");
    assert_eq!(es[0].line, Some(4));
}

#[test]
fn health_and_breaker_settings_are_validated() {
    let text = MINIMAL.replace(
        "    backends: [{ addr: 127.0.0.1:9001 }]\n",
        "    backends: [{ addr: 127.0.0.1:9001 }]\n    health_check: { type: http, expect_status: 200-299, healthy_threshold: 0 }\n    circuit_breaker: { failure_rate: 1.5 }\n",
    );
    let es = errors(&text);
    let paths: Vec<String> = es.iter().map(|e| e.path.to_string()).collect();
    assert!(
        paths.contains(&"upstreams.u.health_check.healthy_threshold".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"upstreams.u.circuit_breaker.failure_rate".to_string()),
        "{paths:?}"
    );
}

#[test]
fn every_setting_is_served_so_none_warns() {
    let text = MINIMAL.replace(
        "routes: [{ upstream: u }]",
        "routes: [{ upstream: u, sticky: { cookie: SY }, rate_limit: { rate: 5, store: \"redis://127.0.0.1:6379\" } }]",
    );
    let text = format!(
        "server: {{ access_log: /tmp/access.log, header_timeout: 5s, max_header_bytes: 8192, idle_timeout: 30s }}\n{text}"
    );
    let loaded = load_str(&text).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn consistent_hash_ring_size_is_bounded() {
    let backends: Vec<String> = (0..11)
        .map(|i| format!("{{ addr: \"127.0.0.1:{}\", weight: 1000 }}", 9000 + i))
        .collect();
    let text = MINIMAL.replace(
        "    backends: [{ addr: 127.0.0.1:9001 }]\n",
        &format!(
            "    policy: consistent_hash\n    hash_key: path\n    backends: [{}]\n",
            backends.join(", ")
        ),
    );
    let es = errors(&text);
    assert_eq!(es[0].path.to_string(), "upstreams.u.backends");
    assert!(es[0].message.contains("ring points"), "{es:?}");
}

#[test]
fn redis_stores_load_without_warnings_and_bad_urls_are_errors() {
    let with_store = |store: &str| {
        MINIMAL.replace(
            "routes: [{ upstream: u }]",
            &format!("routes: [{{ upstream: u, rate_limit: {{ rate: 5, store: \"{store}\", on_store_error: deny }} }}]"),
        )
    };
    let loaded = load_str(&with_store("redis://127.0.0.1:6379/2")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let ListenerKind::Http { routes } = &loaded.config.listeners[0].kind else {
        panic!()
    };
    let rl = routes[0].rate_limit.as_ref().unwrap();
    assert_eq!(
        rl.store,
        RateStore::Redis("redis://127.0.0.1:6379/2".into())
    );
    assert_eq!(rl.on_store_error, StoreErrorPolicy::Deny);

    let es = errors(&with_store("redis://:s3cret@127.0.0.1:notaport"));
    assert_eq!(
        es[0].path.to_string(),
        "listeners.web.routes[0].rate_limit.store"
    );
    assert!(es[0].message.contains("invalid redis URL"), "{es:?}");
    assert!(
        !es[0].message.contains("s3cret"),
        "never echo a password: {es:?}"
    );
    let es = errors(&with_store("rediss://127.0.0.1:6379"));
    assert!(es[0].message.contains("unknown store"), "{es:?}");
}

#[test]
fn max_connections_per_ip_defaults_to_no_cap_and_must_be_a_count() {
    let c = load_str(MINIMAL).unwrap().config;
    assert_eq!(c.listeners[0].max_connections_per_ip, 0);
    let with = |v: &str| {
        MINIMAL.replace(
            "    routes:",
            &format!("    max_connections_per_ip: {v}\n    routes:"),
        )
    };
    let c = load_str(&with("3")).unwrap().config;
    assert_eq!(c.listeners[0].max_connections_per_ip, 3);
    for bad in ["-1", "two", "1.5"] {
        let es = errors(&with(bad));
        assert_eq!(
            es[0].path.to_string(),
            "listeners.web.max_connections_per_ip",
            "{bad}: {es:?}"
        );
        assert_eq!(es[0].line, Some(4), "{bad}: {es:?}");
    }
}

#[test]
fn overload_keys_default_to_no_cap_and_are_checked() {
    let c = load_str(MINIMAL).unwrap().config;
    assert_eq!(
        (c.server.max_connections, c.listeners[0].max_connections),
        (0, 0)
    );
    assert_eq!(c.upstreams["u"].backends[0].max_conns, 0);
    assert_eq!(c.upstreams["u"].queue, None);
    let yaml = |server: &str, listener: &str, backend: &str, queue: &str| {
        format!(
            "server:\n  max_connections: {server}\nlisteners:\n  web:\n    listen: 127.0.0.1:8080\n    \
             max_connections: {listener}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    \
             backends: [{{ addr: 127.0.0.1:9001, max_conns: {backend} }}]\n    queue: {queue}\n"
        )
    };
    let c = load_str(&yaml("100", "10", "3", "{ max: 5, timeout: 2s }"))
        .unwrap()
        .config;
    assert_eq!(
        (c.server.max_connections, c.listeners[0].max_connections),
        (100, 10)
    );
    let u = &c.upstreams["u"];
    assert_eq!(u.backends[0].max_conns, 3);
    assert_eq!(
        u.queue,
        Some(QueueSpec {
            max: 5,
            timeout: Duration::from_secs(2)
        })
    );
    let c = load_str(&yaml("0", "0", "1", "{}")).unwrap().config;
    assert_eq!(
        c.upstreams["u"].queue,
        Some(QueueSpec {
            max: 1000,
            timeout: Duration::from_secs(5)
        })
    );
    // A value of the wrong type stops the parse: one config each.
    let typed = [
        (yaml("-1", "0", "0", "{}"), "server.max_connections", 2),
        (
            yaml("0", "x", "0", "{}"),
            "listeners.web.max_connections",
            6,
        ),
        (
            yaml("0", "0", "-2", "{}"),
            "upstreams.u.backends[0].max_conns",
            10,
        ),
    ];
    for (text, path, line) in typed {
        let es = errors(&text);
        assert_eq!(
            (es[0].path.to_string(), es[0].line),
            (path.to_string(), Some(line)),
            "{es:?}"
        );
    }
    let es = errors(&yaml("0", "0", "1", "{ max: 0, timeout: soon, depth: 3 }"));
    let at: Vec<(String, Option<usize>)> =
        es.iter().map(|e| (e.path.to_string(), e.line)).collect();
    for path in [
        "upstreams.u.queue.max",
        "upstreams.u.queue.timeout",
        "upstreams.u.queue.depth",
    ] {
        assert!(
            at.contains(&(path.to_string(), Some(11))),
            "{path} not in {at:?}"
        );
    }
}
