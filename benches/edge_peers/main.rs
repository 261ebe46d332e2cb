//! switchyard side by side with NGINX and HAProxy as TLS-terminating edge
//! proxies, on this machine in the same run: full TLS handshakes per
//! second, HTTP/2 (over TLS and h2c) and HTTPS HTTP/1.1 requests per
//! second, memory per idle HTTP/2 connection, and two workers each.
//! Prints Markdown tables (every round, then the median); asserts nothing.
//!
//! `make bench` (installs h2load, wrk, nginx, haproxy) or
//! `cargo bench --bench edge_peers`. Each proxy runs one worker pinned to
//! CPU 0 with a TLS listener offering h2 and http/1.1 (one ECDSA P-256
//! certificate made with openssl), a plain listener speaking HTTP/2 by
//! prior knowledge (h2c), and plain HTTP/1.1 keep-alive to the NGINX
//! backend pair; the load generator and the backends share CPU 1. Rounds
//! interleave the proxies so drift on a noisy machine hits all of them
//! alike; every round is printed, and the median.
//!
//! Scenarios (`EDGE_BENCH_ONLY` keys):
//! - `tls13`, `tls12`: full handshakes (below).
//! - `h2`: HTTP/2 over TLS, h2load `-c 50 -m 10`.
//! - `h2many`: HTTP/2 over TLS, h2load `-c 200 -m 1`: many connections,
//!   one stream each.
//! - `https1`: HTTP/1.1 keep-alive over TLS, wrk `-c 50` (no ALPN).
//! - `h2c`: HTTP/2 by prior knowledge on the plain listener, h2load
//!   `-c 50 -m 10` against `http://`.
//! - `h2idle`: resident memory (all of a proxy's processes) per idle
//!   HTTP/2 connection over TLS: `EDGE_BENCH_IDLE` connections negotiate
//!   h2, make one request each and stay open (idle_h2.rs); a fresh proxy
//!   per round.
//! - `workers2`: two workers/threads per proxy, unpinned, HTTP/2 over TLS
//!   (h2load `-t 2 -c 50 -m 10`) and HTTP/1.1 keep-alive over TLS (wrk
//!   `-t2 -c50`); the load generator and the backends share both CPUs with
//!   the proxy.
//!
//! Request tables give h2load's mean and max request time, p50 and p99
//! from its per-request log (wrk: its p50 and p99), the proxy's CPU time
//! per request, and errors (h2load's "failed", of which "errored" are not
//! HTTP statuses; wrk's socket errors plus non-2xx/3xx answers).
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
//! handshake scenarios (default 100), `EDGE_BENCH_IDLE` idle connections
//! in `h2idle` (default 2000), `EDGE_BENCH_ONLY` a comma list of scenario
//! keys (`tls13,tls12,h2,h2many,https1,h2c,h2idle,workers2`; default all);
//! `BENCH_SWITCHYARD` the switchyard binary to run (default: this build).

mod h2load;
#[path = "../http_peers/host.rs"]
mod host;
mod idle_h2;
mod measure;
#[allow(dead_code)] // shared with benches/http_peers, which uses the rest
#[path = "../http_peers/peers.rs"]
mod peers;
mod pinned;
mod proxies;
mod table;
#[path = "../http_peers/wrk.rs"]
mod wrk;

use std::net::SocketAddr;
use std::path::Path;

use measure::{Drive, LoadAt, Sample};
use peers::{Placement, Running};
use proxies::{Cert, Proxy};
use table::Kind;

const PROXIES: [&str; 3] = ["switchyard", "nginx", "haproxy"];
const PROXY_CPU: &str = "0";
const LOAD_CPU: &str = "1";

/// One worker pinned to the proxy CPU: the default placement.
const PINNED: Placement = Placement {
    workers: 1,
    cpus: Some(PROXY_CPU),
};

/// One table: a load run against every proxy, round after round.
struct Scenario<'a> {
    title: String,
    kind: Kind,
    drive: Drive<'a>,
}

/// What every scenario shares: the proxies (switchyard first), where the
/// load runs, and for how long.
struct Setup<'a> {
    proxies: &'a [(&'static str, Proxy)],
    load: LoadAt<'a>,
    dir: &'a Path,
    secs: u64,
    rounds: usize,
}

fn run(s: &Scenario, setup: &Setup) {
    let once = |p: &Proxy, secs| measure::once(p, s.drive, secs, setup.load, setup.dir);
    let load_before = loadavg();
    for (_, p) in setup.proxies {
        once(p, 2); // warm-up: pools, caches, the first connections
    }
    let mut results: Vec<Vec<Sample>> = vec![Vec::new(); setup.proxies.len()];
    for _ in 0..setup.rounds {
        for (i, (_, p)) in setup.proxies.iter().enumerate() {
            results[i].push(once(p, setup.secs));
        }
    }
    let names: Vec<&str> = setup.proxies.iter().map(|(n, _)| *n).collect();
    table::print(&table::Outcome {
        title: &s.title,
        kind: s.kind,
        names: &names,
        results: &results,
        secs: setup.secs,
        load_avg: (load_before, loadavg()),
    });
}

/// The scenarios run against one pinned worker per proxy, by key.
fn pinned_scenarios<'a>(batch: usize, tls12_conf: &'a Path) -> Vec<(&'static str, Scenario<'a>)> {
    let h2 = |clients, streams, tls| Drive::H2 {
        clients,
        streams,
        tls,
    };
    vec![
        (
            "tls13",
            Scenario {
                title: format!("Full TLS 1.3 handshakes: a new client per request (h2load `-n {batch} -c {batch} --h1`, back to back), one HTTP/1.1 request each"),
                kind: Kind::Handshakes,
                drive: Drive::Handshakes { batch, openssl_conf: None },
            },
        ),
        (
            "tls12",
            Scenario {
                title: "Full TLS 1.2 handshakes: as above, TLS 1.3 turned off in h2load's OpenSSL (`Protocol = -TLSv1.3`)".to_string(),
                kind: Kind::Handshakes,
                drive: Drive::Handshakes { batch, openssl_conf: Some(tls12_conf) },
            },
        ),
        (
            "h2",
            Scenario {
                title: "HTTP/2 over TLS: h2load `-c 50 -m 10 -D <seconds>`, 50 connections with 10 streams in flight each".to_string(),
                kind: Kind::H2,
                drive: h2(50, 10, true),
            },
        ),
        (
            "h2many",
            Scenario {
                title: "HTTP/2 over TLS, many connections: h2load `-c 200 -m 1 -D <seconds>`, 200 connections with one stream in flight each".to_string(),
                kind: Kind::H2,
                drive: h2(200, 1, true),
            },
        ),
        (
            "https1",
            Scenario {
                title: "HTTPS, HTTP/1.1 keep-alive: wrk `-t1 -c50` over TLS (wrk offers no ALPN)".to_string(),
                kind: Kind::Wrk,
                drive: Drive::Https1 { connections: 50 },
            },
        ),
        (
            "h2c",
            Scenario {
                title: "HTTP/2 by prior knowledge (h2c) on a plain listener: h2load `-c 50 -m 10 -D <seconds>` against `http://`".to_string(),
                kind: Kind::H2,
                drive: h2(50, 10, false),
            },
        ),
    ]
}

/// Two workers per proxy on both CPUs, nothing pinned: the load generator
/// (two threads) and the backends share those CPUs.
fn workers2(dir: &Path, cert: &Cert, backends: [SocketAddr; 2], secs: u64, rounds: usize) {
    let at = Placement {
        workers: 2,
        cpus: None,
    };
    let running = start_all(dir, cert, backends, at);
    let setup = Setup {
        proxies: &running,
        load: LoadAt {
            threads: 2,
            cpus: None,
        },
        dir,
        secs,
        rounds,
    };
    let shared = "two workers/threads per proxy, unpinned on both CPUs, which the load generator (2 threads) and the backends share";
    run(
        &Scenario {
            title: format!("HTTP/2 over TLS, {shared}: h2load `-t 2 -c 50 -m 10 -D <seconds>`"),
            kind: Kind::H2,
            drive: Drive::H2 {
                clients: 50,
                streams: 10,
                tls: true,
            },
        },
        &setup,
    );
    run(
        &Scenario {
            title: format!("HTTPS, HTTP/1.1 keep-alive, {shared}: wrk `-t2 -c50` over TLS"),
            kind: Kind::Wrk,
            drive: Drive::Https1 { connections: 50 },
        },
        &setup,
    );
}

fn start_all(
    dir: &Path,
    cert: &Cert,
    backends: [SocketAddr; 2],
    at: Placement,
) -> Vec<(&'static str, Proxy)> {
    PROXIES
        .iter()
        .map(|name| (*name, proxies::start(name, dir, cert, backends, at)))
        .collect()
}

fn main() {
    for tool in ["h2load", "wrk", "nginx", "haproxy", "taskset", "openssl"] {
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
    let idle_n: usize = host::env_or("EDGE_BENCH_IDLE", 2_000).max(1);
    let only: String = host::env_or("EDGE_BENCH_ONLY", String::new());
    let wanted = |s: &str| only.is_empty() || only.split(',').any(|o| o == s);
    let fd_limit = host::raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let cert: Cert = proxies::make_cert(dir.path());
    let (_backends, backends): (Running, [SocketAddr; 2]) =
        peers::backends(dir.path(), Some(LOAD_CPU));
    println!(
        "## TLS edge proxies side by side ({}; fd limit {fd_limit})",
        versions()
    );
    println!(
        "\nEach proxy: one worker pinned to CPU {PROXY_CPU} (unless a table says otherwise), ECDSA P-256 certificate, ALPN h2 + http/1.1 on the TLS listener, a plain h2c listener, HTTP/1.1 keep-alive to two NGINX backends; the load generator and the backends on CPU {LOAD_CPU}."
    );
    let tls12_conf = proxies::tls12_only_conf(dir.path());
    let pinned: Vec<_> = pinned_scenarios(batch, &tls12_conf)
        .into_iter()
        .filter(|(key, _)| wanted(key))
        .collect();
    if !pinned.is_empty() {
        let running = start_all(dir.path(), &cert, backends, PINNED);
        let setup = Setup {
            proxies: &running,
            load: LoadAt {
                threads: 1,
                cpus: Some(LOAD_CPU),
            },
            dir: dir.path(),
            secs,
            rounds,
        };
        for (_, s) in &pinned {
            run(s, &setup);
        }
    }
    if wanted("h2idle") {
        let n = idle_n.min(fd_limit as usize / 2 - 100);
        idle_h2::memory(dir.path(), &cert, backends, n, rounds);
    }
    if wanted("workers2") {
        workers2(dir.path(), &cert, backends, secs, rounds);
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
