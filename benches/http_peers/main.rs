//! switchyard side by side with NGINX and HAProxy as HTTP/1.1 reverse
//! proxies, on this machine in the same run: requests per second, latency,
//! errors and memory. Prints Markdown tables; asserts nothing.
//!
//! `make bench` (installs wrk, nginx, haproxy) or
//! `cargo bench --bench http_peers`. Each proxy runs one worker pinned to
//! CPU 0; wrk and the NGINX backend pair share CPU 1. Rounds interleave the
//! proxies so drift on a noisy machine hits all of them alike; the tables
//! give the median round.
//!
//! Env: `HTTP_BENCH_SECONDS` per run (default 10), `HTTP_BENCH_ROUNDS`
//! (default 3), `HTTP_BENCH_IDLE` idle connections (default 9500: HAProxy
//! wants two descriptors per connection of its `maxconn`, and the hard fd
//! limit here is 20,000),
//! `HTTP_BENCH_ONLY` a comma list of scenarios
//! (`keepalive,policies,guards,close,conns1000,unpinned,memory`; default all;
//! `policies` is the keep-alive run with a fourth proxy: switchyard whose
//! route has request ids, a header rule and an allow-list; `guards` the same
//! with switchyard under outlier detection, connection caps and backend
//! `max_conns`),
//! `BENCH_SWITCHYARD` the switchyard binary to run (default: this build).

mod host;
mod idle;
mod peers;
mod wrk;

use std::path::Path;

use peers::{Placement, Running, Variant};
use wrk::{Load, Wrk};

const PROXIES: [&str; 3] = ["switchyard", "nginx", "haproxy"];
/// switchyard with a route that uses request ids, a header rule and an
/// allow-list: what a route pays for them.
const WITH_POLICIES: &str = "switchyard+policies";
/// switchyard with outlier detection, connection caps and `max_conns`.
const WITH_GUARDS: &str = "switchyard+guards";
const PROXY_CPU: &str = "0";
const LOAD_CPU: &str = "1";

fn start(name: &str, dir: &Path, backends: [std::net::SocketAddr; 2], at: Placement) -> Running {
    match name {
        "switchyard" => peers::switchyard(dir, backends, at, Variant::Plain),
        WITH_POLICIES => peers::switchyard(dir, backends, at, Variant::Policies),
        WITH_GUARDS => peers::switchyard(dir, backends, at, Variant::Guards),
        "nginx" => peers::nginx(dir, backends, at),
        _ => peers::haproxy(dir, backends, at),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// What one scenario does to each proxy.
struct Scenario {
    title: &'static str,
    connections: usize,
    close: bool,
    at: Placement<'static>,
    /// wrk threads and CPUs.
    load: (usize, Option<&'static str>),
    /// Also run switchyard configured as this (a fourth proxy).
    extra: Option<&'static str>,
}

fn run(s: &Scenario, dir: &Path, backends: [std::net::SocketAddr; 2], secs: u64, rounds: usize) {
    let extra = s.extra;
    let running: Vec<(&str, Running)> = PROXIES
        .iter()
        .copied()
        .chain(extra)
        .map(|name| (name, start(name, dir, backends, s.at)))
        .collect();
    let wrk = |r: &Running, seconds| {
        let url = format!("http://{}/", r.addr);
        Wrk {
            url: &url,
            connections: s.connections,
            threads: s.load.0,
            seconds,
            close: s.close,
            cpus: s.load.1,
        }
        .run()
    };
    for (_, r) in &running {
        wrk(r, 2); // warm-up: connections, pools, caches
    }
    let mut results: Vec<Vec<Load>> = vec![Vec::new(); running.len()];
    for _ in 0..rounds {
        for (i, (_, r)) in running.iter().enumerate() {
            results[i].push(wrk(r, secs));
        }
    }
    println!("\n### {}\n", s.title);
    println!("| proxy | req/s (median) | p50 ms | p99 ms | errors | RSS after, MiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut rps = Vec::new();
    for ((name, r), loads) in running.iter().zip(&results) {
        let m = median(loads.iter().map(|l| l.rps).collect());
        rps.push(m);
        println!(
            "| {name} | {m:.0} | {:.2} | {:.2} | {} | {:.1} |",
            median(loads.iter().map(|l| l.p50_ms).collect()),
            median(loads.iter().map(|l| l.p99_ms).collect()),
            loads.iter().map(|l| l.errors).sum::<u64>(),
            r.rss_kib() as f64 / 1024.0
        );
    }
    let best_peer = rps[1].max(rps[2]);
    println!(
        "\nswitchyard / best peer: **{:.2}×** req/s ({rounds} interleaved rounds of {secs} s; every round: {})",
        rps[0] / best_peer,
        results[0]
            .iter()
            .map(|l| format!("{:.0}", l.rps))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(extra) = s.extra {
        let what = if extra == WITH_GUARDS {
            "outlier detection, connection caps and max_conns"
        } else {
            "request ids, a header rule and an allow-list"
        };
        println!(
            "\nswitchyard with {what} / without: **{:.2}×** req/s (every round: {})",
            rps[3] / rps[0],
            results[3]
                .iter()
                .map(|l| format!("{:.0}", l.rps))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn memory(dir: &Path, backends: [std::net::SocketAddr; 2], n: usize) {
    let at = Placement {
        workers: 1,
        cpus: Some(PROXY_CPU),
    };
    println!("\n### Memory: idle, then holding {n} idle keep-alive client connections\n");
    println!(
        "| proxy | RSS idle, MiB | RSS with {n} idle, MiB | growth, MiB | per connection, KiB |"
    );
    println!("|---|---:|---:|---:|---:|");
    for name in PROXIES {
        let r = start(name, dir, backends, at);
        // One request first, so lazily built state (pools, caches) is not
        // counted as the connections' cost.
        drop(idle::open(r.addr, 1));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let before = r.rss_kib();
        let conns = idle::open(r.addr, n);
        std::thread::sleep(std::time::Duration::from_secs(1));
        let after = r.rss_kib();
        let growth = after.saturating_sub(before);
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.2} |",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            growth as f64 / 1024.0,
            growth as f64 / n as f64
        );
        drop(conns);
    }
}

fn main() {
    for tool in ["wrk", "nginx", "haproxy", "taskset"] {
        if !host::has(tool) {
            eprintln!("http_peers: `{tool}` is missing; `make bench` installs it. Skipped.");
            return;
        }
    }
    let secs: u64 = host::env_or("HTTP_BENCH_SECONDS", 10);
    let rounds: usize = host::env_or("HTTP_BENCH_ROUNDS", 3);
    let idle_n: usize = host::env_or("HTTP_BENCH_IDLE", 9_500);
    let only: String = host::env_or("HTTP_BENCH_ONLY", String::new());
    let wanted = |s: &str| only.is_empty() || only.split(',').any(|o| o == s);
    let fd_limit = host::raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let (_backends, backends) = peers::backends(dir.path(), Some(LOAD_CPU));
    println!(
        "## HTTP/1.1 proxies side by side ({}; fd limit {fd_limit})",
        versions()
    );
    let pinned = Placement {
        workers: 1,
        cpus: Some(PROXY_CPU),
    };
    let scenarios = [
        (
            "keepalive",
            Scenario {
                title: "Keep-alive, 50 connections, one worker pinned to CPU 0",
                connections: 50,
                close: false,
                at: pinned,
                load: (1, Some(LOAD_CPU)),
                extra: None,
            },
        ),
        (
            "policies",
            Scenario {
                title: "Keep-alive, 50 connections, pinned; switchyard also with route policies",
                connections: 50,
                close: false,
                at: pinned,
                load: (1, Some(LOAD_CPU)),
                extra: Some(WITH_POLICIES),
            },
        ),
        (
            "guards",
            Scenario {
                title: "Keep-alive, 50 connections, pinned; switchyard also with outlier detection, connection caps and max_conns",
                connections: 50,
                close: false,
                at: pinned,
                load: (1, Some(LOAD_CPU)),
                extra: Some(WITH_GUARDS),
            },
        ),
        (
            "close",
            Scenario {
                title: "Keep-alive off (`Connection: close`, a new connection per request), 50 connections, pinned",
                connections: 50,
                close: true,
                at: pinned,
                load: (1, Some(LOAD_CPU)),
                extra: None,
            },
        ),
        (
            "conns1000",
            Scenario {
                title: "Keep-alive, 1,000 connections, pinned",
                connections: 1000,
                close: false,
                at: pinned,
                load: (1, Some(LOAD_CPU)),
                extra: None,
            },
        ),
        (
            "unpinned",
            Scenario {
                title: "Keep-alive, 50 connections, two workers/threads each, nothing pinned (wrk: 2 threads, same 2 CPUs)",
                connections: 50,
                close: false,
                at: Placement {
                    workers: 2,
                    cpus: None,
                },
                load: (2, None),
                extra: None,
            },
        ),
    ];
    for (key, s) in &scenarios {
        if wanted(key) {
            run(s, dir.path(), backends, secs, rounds);
        }
    }
    if wanted("memory") {
        memory(
            dir.path(),
            backends,
            idle_n.min(fd_limit as usize / 2 - 100),
        );
    }
}

fn versions() -> String {
    format!(
        "{}; {}",
        host::first_line("nginx -v"),
        host::first_line("haproxy -v")
    )
}
