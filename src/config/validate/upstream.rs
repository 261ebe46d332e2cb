//! Upstreams: policy, hash key, backends, health checks and circuit breakers.

use std::net::SocketAddr;
use std::time::Duration;

use super::super::model::*;
use super::super::path::YamlPath;
use super::super::problem::Problems;
use super::super::raw::*;
use super::super::tls::upstream_tls;
use super::discovery::{discovery, dns_name};
use super::outlier::outlier_detection;
use super::upstream_limits::{percentage, queue, retry_on};
use super::{duration, nonzero_duration, valid_token, MAX_RING_WEIGHT, MAX_WEIGHT};
use crate::proxy_protocol::Version;

pub(super) fn upstream(
    name: &str,
    u: RawUpstream,
    path: &YamlPath,
    p: &mut Problems,
) -> Option<UpstreamSpec> {
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
    let mut dns = Vec::new();
    match (u.discovery, raw_backends.is_empty()) {
        (None, true) => {
            p.error(path, "upstream has no backends")
                .hint("add backends: [{ addr: 127.0.0.1:9001 }]");
        }
        (Some(d), empty) => {
            if !empty {
                p.error(
                    &path.key("discovery"),
                    "discovery replaces `backends`: use one or the other",
                )
                .hint("name the host in a backend instead: backends: [{ addr: web.internal:80 }]");
            }
            dns.extend(discovery(d, &path.key("discovery"), p));
        }
        (None, false) => {}
    }
    let mut backends: Vec<BackendSpec> = Vec::new();
    for (i, b) in raw_backends.into_iter().enumerate() {
        let bpath = path.key("backends").index(i);
        let b = match backend(b, &bpath, p) {
            Some(Backend::Literal(b)) => b,
            Some(Backend::Named(source)) => {
                if dns.contains(&source) {
                    p.error(
                        &bpath.key("addr"),
                        format!("{} is listed twice", source.name()),
                    );
                } else {
                    dns.push(source);
                }
                continue;
            }
            None => continue,
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
    let outlier_detection = u
        .outlier_detection
        .map(|o| outlier_detection(o, &path.key("outlier_detection"), p));
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
    let send_proxy_protocol = match u.send_proxy_protocol.as_deref() {
        None => None,
        Some("v1") => Some(Version::V1),
        Some("v2") => Some(Version::V2),
        Some(other) => {
            p.error(
                &path.key("send_proxy_protocol"),
                format!("unknown PROXY protocol version \"{other}\""),
            )
            .hint("valid versions: v1 or v2 (remove the key to send none)");
            None
        }
    };
    let queue = u.queue.map(|q| queue(q, &path.key("queue"), p));
    if queue.is_some() && !backends.is_empty() && backends.iter().all(|b| b.max_conns == 0) {
        p.warning(
            &path.key("queue"),
            "no backend has max_conns: requests never wait in this queue",
        )
        .hint("set max_conns on the backends, or remove the queue");
    }
    let retries = match u.retries {
        None => 2,
        Some(r) if r > 16 => {
            p.error(&path.key("retries"), format!("{r} retries is more than 16"));
            16
        }
        Some(r) => r as u32,
    };
    let retry_on = match u.retry_on {
        None => RetryOn::CONNECT_FAILURE,
        Some(items) => retry_on(&items, &path.key("retry_on"), p),
    };
    let retry_budget = match u.retry_budget.as_deref() {
        None => 0.2,
        Some(text) => percentage(text, &path.key("retry_budget"), p),
    };
    Some(UpstreamSpec {
        name: name.to_string(),
        policy,
        hash_key,
        backends,
        health_check,
        circuit_breaker,
        outlier_detection,
        retries,
        retry_on,
        retry_budget,
        honor_retry_after: u.honor_retry_after.unwrap_or(true),
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
        send_proxy_protocol,
        dns,
        resolve_every: nonzero_duration(
            u.resolve_every.as_ref(),
            Duration::from_secs(30),
            &path.key("resolve_every"),
            p,
        ),
        queue,
    })
}

/// A configured backend: an address, or a host name resolved at run time.
enum Backend {
    Literal(BackendSpec),
    Named(DnsSource),
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

fn backend(b: RawBackend, path: &YamlPath, p: &mut Problems) -> Option<Backend> {
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
    let max_conns = b.max_conns.unwrap_or(0);
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return Some(Backend::Literal(BackendSpec {
            addr,
            socket,
            weight,
            max_conns,
            name: None,
        }));
    }
    let bad = |p: &mut Problems, why: &str| {
        p.error(&path.key("addr"), format!("\"{addr}\" {why}"))
            .hint("write ip:port or host:port, e.g. 127.0.0.1:9001, [::1]:9001 or app.internal:80");
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        bad(p, "has no port");
        return None;
    };
    let (Ok(port), true) = (port.parse::<u16>(), dns_name(host)) else {
        bad(p, "is not an ip:port or host:port address");
        return None;
    };
    Some(Backend::Named(DnsSource::Host {
        host: host.to_ascii_lowercase(),
        name: addr,
        port,
        weight,
        max_conns,
    }))
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
