//! Connection flood against a capped listener (README "Overload"): keeps
//! `--clients` keep-alive clients sending `GET --path` one after another
//! while `--conns` more connections are opened and held idle, and prints the
//! clients' latency before and during the flood. With the listener's
//! `max_connections` below `--conns`, the extra connections wait in the
//! backlog and the clients' latency should barely move.
//!
//! Not part of `make test`; run by `scripts/flood.sh`, e.g.
//! `cargo run --release --example flood -- --target 127.0.0.1:8080 --conns 20000 --clients 50`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Args {
    target: SocketAddr,
    conns: usize,
    clients: usize,
    seconds: u64,
    path: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        target: "127.0.0.1:8080".parse().map_err(|e| format!("{e}"))?,
        conns: 20_000,
        clients: 50,
        seconds: 10,
        path: "/".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--target" => a.target = value.parse().map_err(|e| bad(&e))?,
            "--conns" => a.conns = value.parse().map_err(|e| bad(&e))?,
            "--clients" => a.clients = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => a.seconds = value.parse().map_err(|e| bad(&e))?,
            "--path" => a.path = value,
            _ => {
                return Err(format!(
                    "unknown flag {flag} (--target, --conns, --clients, --seconds, --path)"
                ))
            }
        }
    }
    Ok(a)
}

/// Latencies of one phase, in microseconds.
#[derive(Default)]
struct Phase {
    micros: Mutex<Vec<u64>>,
    errors: AtomicUsize,
}

impl Phase {
    fn report(&self, name: &str) {
        let mut v = self
            .micros
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_unstable();
        let at = |q: f64| {
            v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        println!(
            "{name:>7}: {} requests, {} errors; latency p50 {} us, p99 {} us, max {} us",
            v.len(),
            self.errors.load(Ordering::Relaxed),
            at(0.5),
            at(0.99),
            v.last().copied().unwrap_or(0)
        );
    }
}

async fn client(
    target: SocketAddr,
    path: String,
    phases: Arc<[Phase; 2]>,
    flooding: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: flood\r\n\r\n");
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) {
        let phase = &phases[usize::from(flooding.load(Ordering::Relaxed))];
        let started = Instant::now();
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match TcpStream::connect(target).await {
                Ok(s) => conn.insert(BufReader::new(s)),
                Err(_) => {
                    phase.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        match exchange(c, request.as_bytes()).await {
            Ok(()) => phase
                .micros
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(started.elapsed().as_micros() as u64),
            Err(_) => {
                phase.errors.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
        }
    }
}

/// One request and its response (Content-Length bodies only).
async fn exchange(c: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<()> {
    c.get_mut().write_all(request).await?;
    let mut line = String::new();
    let mut len = 0usize;
    loop {
        line.clear();
        if c.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("flood: {e}");
            std::process::exit(2);
        }
    };
    let phases: Arc<[Phase; 2]> = Arc::new([Phase::default(), Phase::default()]);
    let flooding = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..a.clients)
        .map(|_| {
            tokio::spawn(client(
                a.target,
                a.path.clone(),
                Arc::clone(&phases),
                Arc::clone(&flooding),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let half = Duration::from_secs(a.seconds.max(2) / 2);
    tokio::time::sleep(half).await;

    flooding.store(true, Ordering::Relaxed);
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Held until the end: connected and idle (most wait in the backlog).
    let idle: Vec<_> = (0..a.conns)
        .map(|_| {
            let (opened, failed) = (Arc::clone(&opened), Arc::clone(&failed));
            tokio::spawn(async move {
                match TcpStream::connect(a.target).await {
                    Ok(s) => {
                        opened.fetch_add(1, Ordering::Relaxed);
                        Some(s)
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                }
            })
        })
        .collect();
    let mut held = Vec::with_capacity(idle.len());
    for t in idle {
        if let Ok(Some(s)) = t.await {
            held.push(s);
        }
    }
    println!(
        "flood: {} connections open, {} failed, in {:?}",
        opened.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        started.elapsed()
    );
    tokio::time::sleep(half).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    phases[0].report("before");
    phases[1].report("during");
    drop(held);
}
