//! What the shared (redis) rate limit store adds per request over the local
//! one, against a `redis-server` this bench starts on loopback:
//!
//! 1. the limiter alone: one check at a time (a round trip each), then many
//!    at once from concurrent tasks (pipelined on the one connection);
//! 2. end to end: requests over one keep-alive connection through two
//!    switchyard instances that differ only in `store:`.
//!
//! `cargo bench --bench redis_limit` (release build). Prints medians and
//! p99s; asserts nothing. Env: `REDIS_BENCH_CHECKS` (default 20000),
//! `REDIS_BENCH_REQUESTS` (default 5000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use common::{read_response, Proxy};
use http::HeaderMap;
use prometheus::IntCounter;
use switchyard::config::{RateKey, RateLimit, RateStore, StoreErrorPolicy};
use switchyard::filters::rate_limit::{RateLimiter, RedisLimiter};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Never denies during the bench: the cost measured is the check itself.
fn cfg(store: RateStore) -> RateLimit {
    RateLimit {
        rate: 1_000_000,
        per: Duration::from_secs(1),
        burst: 1_000_000,
        key: RateKey::ClientIp,
        store,
        on_store_error: StoreErrorPolicy::Allow,
    }
}

/// 1,000 distinct clients, in turn.
fn client(i: usize) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(
        198,
        18,
        (i / 250 % 4) as u8,
        (i % 250) as u8,
    )))
}

fn summary(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (us(at(0.5)), us(at(0.99)))
}

fn row(name: &str, (median, p99): (f64, f64), extra: &str) {
    println!("| {name} | {median:.1} µs | {p99:.1} µs | {extra} |");
}

fn limiter_alone(url: &str, checks: usize) {
    let headers = HeaderMap::new();
    let local = RateLimiter::new(&cfg(RateStore::Local), Instant::now());
    let mut samples = Vec::with_capacity(checks);
    for i in 0..checks {
        let t = Instant::now();
        std::hint::black_box(local.check_request(client(i), &headers, Instant::now()));
        samples.push(t.elapsed());
    }
    row("local store, one check", summary(samples), "");

    let redis_cfg = cfg(RateStore::Redis(url.to_string()));
    let errors = IntCounter::new("e", "e").unwrap();

    // The round trip alone: one thread does everything, no hand-offs.
    let single = RedisLimiter::new(&redis_cfg, url, "bench", "single", errors.clone());
    let samples = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            for i in 0..500 {
                single.check_request(client(i), &headers).await;
            }
            let mut samples = Vec::with_capacity(checks);
            for i in 0..checks {
                let t = Instant::now();
                std::hint::black_box(single.check_request(client(i), &headers).await);
                samples.push(t.elapsed());
            }
            samples
        });
    row(
        "redis store, one check at a time, single-threaded runtime",
        summary(samples),
        "",
    );

    // A runtime like Pingora's (multi-threaded, two workers); checks run in
    // spawned tasks, as request filters do, so each one crosses threads.
    let shared = Arc::new(RedisLimiter::new(
        &redis_cfg,
        url,
        "bench",
        "r",
        errors.clone(),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = |tasks: usize, per_task: usize| {
        rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|t| {
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let headers = HeaderMap::new();
                        let mut samples = Vec::with_capacity(per_task);
                        for i in 0..per_task {
                            let s = Instant::now();
                            let d = shared.check_request(client(t * 31 + i), &headers).await;
                            samples.push(s.elapsed());
                            std::hint::black_box(d);
                        }
                        samples
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.extend(h.await.unwrap_or_default());
            }
            all
        })
    };
    run(1, 500);
    row(
        "redis store, one check at a time, 2-worker runtime",
        summary(run(1, checks)),
        "",
    );
    let tasks = 32;
    let started = Instant::now();
    let samples = run(tasks, checks / tasks);
    let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
    row(
        &format!("redis store, {tasks} concurrent tasks, 2-worker runtime"),
        summary(samples),
        &format!("{rate:.0} checks/s"),
    );
    if errors.get() > 0 {
        println!("WARNING: {} checks were not decided by redis", errors.get());
    }
}

/// A keep-alive HTTP/1.1 backend that answers every request with one
/// write (the demo backend writes head and body apart, which meets delayed
/// ACKs on a reused connection and would swamp what is measured here).
fn fast_backend() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let mut writer = conn.try_clone().unwrap();
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                loop {
                    line.clear();
                    match std::io::BufRead::read_line(&mut reader, &mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
                            if writer.write_all(reply).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

fn proxy(backend: std::net::SocketAddr, store: &str) -> Proxy {
    Proxy::start(&format!(
        "server: {{ threads: 1 }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n      - {{ name: r, upstream: u, rate_limit: {{ rate: 1000000, burst: 1000000, store: \"{store}\" }} }}\nupstreams:\n  u:\n    backends: [{{ addr: \"{backend}\" }}]\n"
    ))
}

/// Latency of `n` GETs on one keep-alive connection.
fn keep_alive(p: &Proxy, n: usize) -> Vec<Duration> {
    let stream = TcpStream::connect(p.http).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        writer
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = read_response(&mut reader).expect("a response");
        assert_eq!(r.status, 200);
        samples.push(t.elapsed());
    }
    samples
}

fn end_to_end(url: &str, requests: usize) {
    let backend = fast_backend();
    let local = proxy(backend, "local");
    let shared = proxy(backend, url);
    // Interleaved rounds, so both see the same machine load.
    let (mut l, mut s) = (Vec::new(), Vec::new());
    keep_alive(&local, 300);
    keep_alive(&shared, 300);
    for _ in 0..5 {
        l.extend(keep_alive(&local, requests / 5));
        s.extend(keep_alive(&shared, requests / 5));
    }
    let (lm, lp) = summary(l);
    let (sm, sp) = summary(s);
    row("through the proxy, store: local", (lm, lp), "");
    row(
        "through the proxy, store: redis",
        (sm, sp),
        &format!("+{:.1} µs median", sm - lm),
    );
}

fn main() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let checks = env_or("REDIS_BENCH_CHECKS", 20_000);
    let requests = env_or("REDIS_BENCH_REQUESTS", 5_000);
    println!(
        "redis-server on {}; {checks} checks, {requests} requests",
        redis.addr
    );
    println!("| case | median | p99 | |");
    println!("|---|---|---|---|");
    limiter_alone(&redis.url(), checks);
    end_to_end(&redis.url(), requests);
}
