//! switchyard side by side with NGINX and HAProxy as TLS-terminating edge
//! proxies, on this machine in the same run: full TLS handshakes per
//! second (TLS 1.3, then TLS 1.2) and HTTP/2 requests per second, driven by
//! h2load. Prints Markdown tables; asserts nothing.
//!
//! `make bench` (installs h2load, nginx, haproxy) or
//! `cargo bench --bench edge_peers`. Each proxy runs one worker pinned to
//! CPU 0 with a TLS listener offering h2 and http/1.1 (one ECDSA P-256
//! certificate made with openssl) and plain HTTP/1.1 keep-alive to the
//! NGINX backend pair; h2load and the backends share CPU 1. Rounds
//! interleave the proxies so drift on a noisy machine hits all of them
//! alike; the tables give the median round.
//!
//! Handshakes: h2load resumes the TLS session when one of its clients
//! reconnects, so "a new connection per request" within one h2load run
//! would mostly measure resumptions. Instead every h2load run here has as
//! many clients as requests (`-n B -c B`): each client makes one
//! connection, one full handshake and one HTTP/1.1 request. Runs follow
//! one another for the round's seconds; the rate is connections that
//! succeeded over the time h2load measured (its start-up is left out).
//!
//! Env: `EDGE_BENCH_SECONDS` per run (default 10), `EDGE_BENCH_ROUNDS`
//! (default 3), `EDGE_BENCH_BATCH` connections per h2load run in the
//! handshake scenarios (default 100), `EDGE_BENCH_ONLY` a comma list of
//! scenarios (`tls13,tls12,h2`; default all); `BENCH_SWITCHYARD` the
//! switchyard binary to run (default: this build).

mod h2load;
#[path = "../http_peers/host.rs"]
mod host;
#[allow(dead_code)] // shared with benches/http_peers, which uses the rest
#[path = "../http_peers/peers.rs"]
mod peers;
mod proxies;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use peers::Running;
use proxies::Cert;

const PROXIES: [&str; 3] = ["switchyard", "nginx", "haproxy"];
const PROXY_CPU: &str = "0";
const LOAD_CPU: &str = "1";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One proxy's numbers from one run of a scenario.
#[derive(Clone, Default)]
struct Sample {
    /// Handshakes (connections) or requests per second.
    rate: f64,
    /// The proxy's CPU time per handshake or request, microseconds.
    cpu_us: f64,
    /// The proxy's CPU time over the time h2load measured, percent of one
    /// core.
    cpu_pct: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    failed: u64,
    negotiated: String,
}

/// Full handshakes for `secs`: back-to-back h2load runs of `batch`
/// one-request clients over HTTP/1.1.
fn handshakes(r: &Running, secs: u64, batch: usize, openssl_conf: Option<&Path>) -> Sample {
    let url = format!("https://{}/", r.addr);
    let mut load = proxies::h2load(&url, LOAD_CPU);
    load.clients = batch;
    load.requests = batch;
    load.h1 = true;
    load.openssl_conf = openssl_conf;
    let cpu_before = proxies::cpu_time(r);
    let start = Instant::now();
    let (mut measured, mut ok, mut failed) = (Duration::ZERO, 0u64, 0u64);
    let mut negotiated = String::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let rep = load.run();
        measured += rep.elapsed;
        ok += rep.succeeded;
        failed += rep.failed;
        if negotiated.is_empty() {
            negotiated = rep.negotiated;
        }
    }
    let cpu = proxies::cpu_time(r) - cpu_before;
    Sample {
        rate: ok as f64 / measured.as_secs_f64(),
        cpu_us: cpu.as_secs_f64() * 1e6 / ok.max(1) as f64,
        cpu_pct: 100.0 * cpu.as_secs_f64() / measured.as_secs_f64(),
        failed,
        negotiated,
        ..Sample::default()
    }
}

/// HTTP/2 over TLS for `secs`: `clients` connections with `streams`
/// requests in flight on each.
fn h2_requests(r: &Running, secs: u64, clients: usize, streams: usize, log: &Path) -> Sample {
    let url = format!("https://{}/", r.addr);
    let mut load = proxies::h2load(&url, LOAD_CPU);
    load.clients = clients;
    load.streams = streams;
    load.seconds = Some(secs);
    load.log = Some(log);
    let _ = std::fs::remove_file(log);
    let cpu_before = proxies::cpu_time(r);
    let rep = load.run();
    let cpu = proxies::cpu_time(r) - cpu_before;
    let durations = h2load::log_durations(log);
    let _ = std::fs::remove_file(log);
    let elapsed = rep.elapsed.as_secs_f64();
    Sample {
        rate: rep.succeeded as f64 / elapsed,
        cpu_us: cpu.as_secs_f64() * 1e6 / rep.succeeded.max(1) as f64,
        cpu_pct: 100.0 * cpu.as_secs_f64() / elapsed,
        mean_ms: rep.mean_ms,
        p50_ms: h2load::quantile(&durations, 0.5),
        p99_ms: h2load::quantile(&durations, 0.99),
        max_ms: rep.max_ms,
        failed: rep.failed,
        negotiated: rep.negotiated,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Handshakes,
    H2,
}

struct Scenario {
    key: &'static str,
    title: String,
    kind: Kind,
    openssl_conf: Option<std::path::PathBuf>,
}

struct Setup<'a> {
    proxies: &'a [(&'static str, Running)],
    dir: &'a Path,
    secs: u64,
    rounds: usize,
    batch: usize,
}

fn run(s: &Scenario, setup: &Setup) {
    let conf = s.openssl_conf.as_deref();
    let log = setup.dir.join("h2load-requests.log");
    let once = |r: &Running, secs| match s.kind {
        Kind::Handshakes => handshakes(r, secs, setup.batch, conf),
        Kind::H2 => h2_requests(r, secs, 50, 10, &log),
    };
    let load_before = loadavg();
    for (_, r) in setup.proxies {
        once(r, 2); // warm-up: pools, caches, the first connections
    }
    let mut results: Vec<Vec<Sample>> = vec![Vec::new(); setup.proxies.len()];
    for _ in 0..setup.rounds {
        for (i, (_, r)) in setup.proxies.iter().enumerate() {
            results[i].push(once(r, setup.secs));
        }
    }
    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    let load_after = loadavg();
    println!("\n### {}\n", s.title);
    match s.kind {
        Kind::Handshakes => {
            println!("| proxy | handshakes/s (median) | proxy CPU µs per handshake | proxy CPU busy | handshakes/s one busy core could do (10⁶ / CPU µs) | failed | negotiated |");
            println!("|---|---:|---:|---:|---:|---:|---|");
        }
        Kind::H2 => {
            println!("| proxy | req/s (median) | proxy CPU µs per request | proxy CPU busy | mean ms | p50 ms | p99 ms | max ms | failed | negotiated |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        }
    }
    let (mut rate, mut cpu) = (Vec::new(), Vec::new());
    for ((name, _), samples) in setup.proxies.iter().zip(&results) {
        let m = med(samples, |x| x.rate);
        let c = med(samples, |x| x.cpu_us);
        rate.push(m);
        cpu.push(c);
        let failed: u64 = samples.iter().map(|x| x.failed).sum();
        let negotiated = &samples[0].negotiated;
        let busy = med(samples, |x| x.cpu_pct);
        match s.kind {
            Kind::Handshakes => println!(
                "| {name} | {m:.0} | {c:.0} | {busy:.0}% | {:.0} | {failed} | {negotiated} |",
                1e6 / c
            ),
            Kind::H2 => println!(
                "| {name} | {m:.0} | {c:.1} | {busy:.0}% | {:.2} | {:.2} | {:.2} | {:.1} | {failed} | {negotiated} |",
                med(samples, |x| x.mean_ms),
                med(samples, |x| x.p50_ms),
                med(samples, |x| x.p99_ms),
                med(samples, |x| x.max_ms),
            ),
        }
    }
    let best_rate = rate[1..].iter().copied().fold(0.0, f64::max);
    let best_cpu = cpu[1..].iter().copied().fold(f64::INFINITY, f64::min);
    let unit = match s.kind {
        Kind::Handshakes => "handshakes/s",
        Kind::H2 => "req/s",
    };
    println!(
        "\nswitchyard / best peer: **{:.2}×** {unit}; CPU per {}: {:.2}× the leanest peer's ({} interleaved rounds of {} s; switchyard every round: {}; load average before/after: {load_before} / {load_after})",
        rate[0] / best_rate,
        if s.kind == Kind::H2 { "request" } else { "handshake" },
        cpu[0] / best_cpu,
        setup.rounds,
        setup.secs,
        results[0]
            .iter()
            .map(|x| format!("{:.0}", x.rate))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn main() {
    for tool in ["h2load", "nginx", "haproxy", "taskset", "openssl"] {
        if !host::has(tool) {
            eprintln!(
                "edge_peers: `{tool}` is missing; `make bench` installs it (package nghttp2-client for h2load). Skipped."
            );
            return;
        }
    }
    let secs: u64 = host::env_or("EDGE_BENCH_SECONDS", 10);
    let rounds: usize = host::env_or("EDGE_BENCH_ROUNDS", 3).max(1);
    let batch: usize = host::env_or("EDGE_BENCH_BATCH", 100).max(1);
    let only: String = host::env_or("EDGE_BENCH_ONLY", String::new());
    let wanted = |s: &str| only.is_empty() || only.split(',').any(|o| o == s);
    host::raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let cert: Cert = proxies::make_cert(dir.path());
    let (_backends, backends): (Running, [SocketAddr; 2]) =
        peers::backends(dir.path(), Some(LOAD_CPU));
    let running: Vec<(&str, Running)> = PROXIES
        .iter()
        .map(|name| {
            (
                *name,
                proxies::start(name, dir.path(), &cert, backends, PROXY_CPU),
            )
        })
        .collect();
    println!("## TLS edge proxies side by side ({})", versions());
    println!(
        "\nEach proxy: one worker pinned to CPU {PROXY_CPU}, ECDSA P-256 certificate, ALPN h2 + http/1.1, HTTP/1.1 keep-alive to two NGINX backends; h2load and the backends on CPU {LOAD_CPU}."
    );
    let scenarios = [
        Scenario {
            key: "tls13",
            title: format!("Full TLS 1.3 handshakes: a new client per request (h2load `-n {batch} -c {batch} --h1`, back to back), one HTTP/1.1 request each"),
            kind: Kind::Handshakes,
            openssl_conf: None,
        },
        Scenario {
            key: "tls12",
            title: "Full TLS 1.2 handshakes: as above, TLS 1.3 turned off in h2load's OpenSSL (`Protocol = -TLSv1.3`)".to_string(),
            kind: Kind::Handshakes,
            openssl_conf: Some(proxies::tls12_only_conf(dir.path())),
        },
        Scenario {
            key: "h2",
            title: "HTTP/2 over TLS: h2load `-c 50 -m 10 -D <seconds>`, 50 connections with 10 streams in flight each".to_string(),
            kind: Kind::H2,
            openssl_conf: None,
        },
    ];
    let setup = Setup {
        proxies: &running,
        dir: dir.path(),
        secs,
        rounds,
        batch,
    };
    for s in &scenarios {
        if wanted(s.key) {
            run(s, &setup);
        }
    }
}

/// The 1-minute load average: how busy the (shared) machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

fn versions() -> String {
    [
        "nginx -v",
        "haproxy -v",
        "h2load --version",
        "openssl version",
    ]
    .map(host::first_line)
    .join("; ")
}
