//! One measured run against one proxy: which load (h2load full handshakes,
//! h2load HTTP/2 streams, wrk HTTP/1.1 keep-alive) and what came of it,
//! the proxy's CPU time included.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::h2load;
use crate::proxies::{self, Proxy};
use crate::wrk::Wrk;

/// The load of one run.
#[derive(Clone, Copy)]
pub enum Drive<'a> {
    /// Back-to-back h2load runs of `batch` one-request HTTP/1.1 clients:
    /// a full TLS handshake per request.
    Handshakes {
        batch: usize,
        openssl_conf: Option<&'a Path>,
    },
    /// h2load, HTTP/2: `clients` connections with `streams` requests in
    /// flight on each; over TLS, or by prior knowledge on the h2c listener.
    H2 {
        clients: usize,
        streams: usize,
        tls: bool,
    },
    /// wrk over TLS, HTTP/1.1 keep-alive (wrk offers no ALPN, so every
    /// proxy answers HTTP/1.1).
    Https1 { connections: usize },
}

/// Where the load generator runs and with how many threads.
#[derive(Clone, Copy)]
pub struct LoadAt<'a> {
    pub threads: usize,
    pub cpus: Option<&'a str>,
}

/// One proxy's numbers from one run of a scenario.
#[derive(Clone, Default)]
pub struct Sample {
    /// Handshakes (connections) or requests per second.
    pub rate: f64,
    /// The proxy's CPU time per handshake or request, microseconds.
    pub cpu_us: f64,
    /// The proxy's CPU time over the measured time, percent of one core.
    pub cpu_pct: f64,
    /// Request time, milliseconds (wrk reports no mean or max: 0).
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// h2load: requests failed (HTTP errors included); wrk: socket errors
    /// plus non-2xx/3xx answers.
    pub failed: u64,
    /// h2load: the part of `failed` that is not an HTTP status.
    pub errored: u64,
    pub negotiated: String,
}

/// Runs `drive` against `p` for `secs`; `scratch` is a directory for
/// h2load's request log.
pub fn once(p: &Proxy, drive: Drive, secs: u64, at: LoadAt, scratch: &Path) -> Sample {
    match drive {
        Drive::Handshakes {
            batch,
            openssl_conf,
        } => handshakes(p, secs, batch, openssl_conf, at),
        Drive::H2 {
            clients,
            streams,
            tls,
        } => {
            let url = match tls {
                true => format!("https://{}/", p.run.addr),
                false => format!("http://{}/", p.h2c),
            };
            h2_requests(p, &url, secs, (clients, streams), at, scratch)
        }
        Drive::Https1 { connections } => https1(p, secs, connections, at),
    }
}

/// Full handshakes for `secs`: back-to-back h2load runs of `batch`
/// one-request clients over HTTP/1.1.
fn handshakes(
    p: &Proxy,
    secs: u64,
    batch: usize,
    openssl_conf: Option<&Path>,
    at: LoadAt,
) -> Sample {
    let url = format!("https://{}/", p.run.addr);
    let mut load = proxies::h2load(&url, at.cpus);
    load.clients = batch;
    load.requests = batch;
    load.h1 = true;
    load.openssl_conf = openssl_conf;
    load.threads = at.threads;
    let cpu_before = proxies::cpu_time(p);
    let start = Instant::now();
    let (mut measured, mut ok, mut failed, mut errored) = (Duration::ZERO, 0u64, 0u64, 0u64);
    let mut negotiated = String::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let rep = load.run();
        measured += rep.elapsed;
        ok += rep.succeeded;
        failed += rep.failed;
        errored += rep.errored;
        if negotiated.is_empty() {
            negotiated = rep.negotiated;
        }
    }
    let cpu = proxies::cpu_time(p) - cpu_before;
    Sample {
        rate: ok as f64 / measured.as_secs_f64(),
        cpu_us: cpu.as_secs_f64() * 1e6 / ok.max(1) as f64,
        cpu_pct: 100.0 * cpu.as_secs_f64() / measured.as_secs_f64(),
        failed,
        errored,
        negotiated,
        ..Sample::default()
    }
}

/// HTTP/2 for `secs` against `url`: `clients` connections with `streams`
/// requests in flight on each.
fn h2_requests(
    p: &Proxy,
    url: &str,
    secs: u64,
    (clients, streams): (usize, usize),
    at: LoadAt,
    scratch: &Path,
) -> Sample {
    let log = scratch.join("h2load-requests.log");
    let mut load = proxies::h2load(url, at.cpus);
    load.clients = clients;
    load.streams = streams;
    load.seconds = Some(secs);
    load.log = Some(&log);
    load.threads = at.threads;
    let _ = std::fs::remove_file(&log);
    let cpu_before = proxies::cpu_time(p);
    let rep = load.run();
    let cpu = proxies::cpu_time(p) - cpu_before;
    let durations = h2load::log_durations(&log);
    let _ = std::fs::remove_file(&log);
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
        errored: rep.errored,
        negotiated: rep.negotiated,
    }
}

/// HTTP/1.1 keep-alive over TLS for `secs`: wrk with `connections`
/// connections. wrk prints the rate but no request count: requests are
/// taken as rate × the time wrk ran.
fn https1(p: &Proxy, secs: u64, connections: usize, at: LoadAt) -> Sample {
    let url = format!("https://{}/", p.run.addr);
    let cpu_before = proxies::cpu_time(p);
    let start = Instant::now();
    let load = Wrk {
        url: &url,
        connections,
        threads: at.threads,
        seconds: secs,
        close: false,
        cpus: at.cpus,
    }
    .run();
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = proxies::cpu_time(p) - cpu_before;
    let requests = load.rps * secs as f64;
    Sample {
        rate: load.rps,
        cpu_us: cpu.as_secs_f64() * 1e6 / requests.max(1.0),
        cpu_pct: 100.0 * cpu.as_secs_f64() / elapsed,
        p50_ms: load.p50_ms,
        p99_ms: load.p99_ms,
        failed: load.errors,
        negotiated: "HTTP/1.1 (no ALPN)".to_string(),
        ..Sample::default()
    }
}
