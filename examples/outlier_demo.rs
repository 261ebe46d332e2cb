//! The README's outlier-detection demonstration: a real switchyard in front
//! of three local backends, one of which turns 10× slow mid-run; p50/p99
//! per second without and with latency ejection.
//!
//! ```text
//! cargo build && cargo run --example outlier_demo -- [SECONDS] [SLOW_AT] [CLIENTS]
//! ```
//! (defaults 20, 6, 8). The switchyard binary is `$SWITCHYARD_BIN`, else
//! `$CARGO_TARGET_DIR/debug/switchyard`, else `target/debug/switchyard`.
//! Backends answer after 2 ms; the slow one after 20 ms. Clients are closed
//! loops on keep-alive connections, round robin in switchyard. Not part of
//! the test suite: it runs for a while and its numbers depend on the machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard::demo::DemoServer;

const BASE: Duration = Duration::from_millis(2);
const SLOW: Duration = Duration::from_millis(20);

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = args.first().copied().unwrap_or(20);
    let slow_at = args.get(1).copied().unwrap_or(6);
    let clients = args.get(2).copied().unwrap_or(8) as usize;
    let bin = switchyard_bin();
    println!(
        "switchyard {}; 3 backends answering after {BASE:?}, backend 3 after {SLOW:?} from {slow_at}s; \
         {clients} keep-alive clients; {seconds}s per run",
        bin
    );
    let detection = "{ consecutive_5xx: 0, consecutive_gateway_failures: 0, latency_factor: 3, interval: 1s, base_ejection: 30s }";
    let without = run(&bin, None, seconds, slow_at, clients);
    let with = run(&bin, Some(detection), seconds, slow_at, clients);
    println!("\nsecond  req/s(without)  p50_ms  p99_ms  |  req/s(with)  p50_ms  p99_ms");
    for s in 0..seconds as usize {
        let a = summary(&without.0, s);
        let b = summary(&with.0, s);
        println!(
            "{s:>6}  {:>14}  {:>6.1}  {:>6.1}  |  {:>11}  {:>6.1}  {:>6.1}",
            a.0, a.1, a.2, b.0, b.1, b.2
        );
    }
    let after = |samples: &[(f64, f64)]| {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|(t, _)| *t >= slow_at as f64 + 2.0)
            .map(|(_, ms)| *ms)
            .collect();
        v.sort_by(f64::total_cmp);
        (quantile(&v, 0.5), quantile(&v, 0.99))
    };
    let (a, b) = (after(&without.0), after(&with.0));
    println!(
        "\nfrom {}s to the end: without p50 {:.1} ms p99 {:.1} ms; with p50 {:.1} ms p99 {:.1} ms",
        slow_at + 2,
        a.0,
        a.1,
        b.0,
        b.1
    );
    println!("ejections with detection: {}", with.1.trim());
}

fn switchyard_bin() -> String {
    if let Ok(b) = std::env::var("SWITCHYARD_BIN") {
        return b;
    }
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    format!("{dir}/debug/switchyard")
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// One run: (seconds since start, latency ms) per request, and the
/// ejection metric lines at the end.
fn run(
    bin: &str,
    detection: Option<&str>,
    seconds: u64,
    slow_at: u64,
    clients: usize,
) -> (Vec<(f64, f64)>, String) {
    let backends: Vec<DemoServer> = (1..=3)
        .map(|i| DemoServer::start(&format!("b{i}"), "127.0.0.1:0").expect("backend"))
        .collect();
    for b in &backends {
        b.state.force_delay(Some(BASE));
    }
    let (http, admin) = (free_addr(), free_addr());
    let list: Vec<String> = backends
        .iter()
        .map(|b| format!("{{ addr: \"{}\" }}", b.addr))
        .collect();
    let outlier = detection.map_or(String::new(), |d| format!("    outlier_detection: {d}\n"));
    let config = format!(
        "server: {{ threads: 2 }}\nadmin: {{ listen: \"{admin}\" }}\nlisteners:\n  web:\n    listen: \"{http}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    backends: [{}]\n{outlier}",
        list.join(", ")
    );
    let dir = std::env::temp_dir().join(format!("outlier-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let conf = dir.join("switchyard.yaml");
    std::fs::write(&conf, config).expect("config");
    let child = Command::new(bin)
        .args(["run", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchyard");
    let _guard = Kill(child);
    let ready = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(http).is_err() {
        assert!(Instant::now() < ready, "switchyard did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || client(http, start, &stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(slow_at));
    backends[2].state.force_delay(Some(SLOW));
    std::thread::sleep(Duration::from_secs(seconds.saturating_sub(slow_at)));
    stop.store(true, Ordering::Relaxed);
    let samples = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    let metrics = get(admin, "/metrics");
    let ejections = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_outlier_ejections_total") && !l.ends_with(" 0"))
        .collect::<Vec<_>>()
        .join("\n");
    (samples, ejections)
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A closed-loop keep-alive client: (seconds since `start`, latency ms).
fn client(addr: SocketAddr, start: Instant, stop: &AtomicBool) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let Ok(conn) = TcpStream::connect(addr) else {
        return out;
    };
    let _ = conn.set_nodelay(true);
    let mut writer = conn.try_clone().expect("clone");
    let mut reader = BufReader::new(conn);
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        if writer
            .write_all(b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
            .is_err()
            || !read_response(&mut reader)
        {
            break;
        }
        out.push((
            t.duration_since(start).as_secs_f64(),
            t.elapsed().as_secs_f64() * 1e3,
        ));
    }
    out
}

/// Reads one Content-Length response; false on any failure.
fn read_response<R: Read>(r: &mut BufReader<R>) -> bool {
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).is_ok()
}

fn get(addr: SocketAddr, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// (requests, p50 ms, p99 ms) of the requests sent in second `s`.
fn summary(samples: &[(f64, f64)], s: usize) -> (usize, f64, f64) {
    let mut v: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t as usize == s)
        .map(|(_, ms)| *ms)
        .collect();
    v.sort_by(f64::total_cmp);
    (v.len(), quantile(&v, 0.5), quantile(&v, 0.99))
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
