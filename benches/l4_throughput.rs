//! Bulk TCP throughput: directly to a sink, through switchyard's L4 listener,
//! and through HAProxy `mode tcp` (when `haproxy` is installed), on this
//! machine in the same run. Prints medians and ratios; asserts nothing.
//!
//! `cargo bench --bench l4_throughput` (release build of switchyard).
//! Env: `L4_BENCH_MB` (per transfer, default 512), `L4_BENCH_RUNS` (default 5).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHUNK: usize = 256 * 1024;

/// Reads everything on each connection, then answers the byte count.
fn sink() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = vec![0u8; CHUNK];
                let mut total: u64 = 0;
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                let _ = conn.write_all(&total.to_le_bytes());
            });
        }
    });
    addr
}

/// Sends `bytes` over `conns` parallel connections; returns MB/s.
fn transfer(addr: SocketAddr, bytes: u64, conns: usize) -> f64 {
    let started = Instant::now();
    let per = bytes / conns as u64;
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let buf = vec![0x5au8; CHUNK];
                let mut left = per;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    s.write_all(&buf[..n]).unwrap();
                    left -= n as u64;
                }
                s.shutdown(Shutdown::Write).unwrap();
                let mut count = [0u8; 8];
                s.read_exact(&mut count).unwrap();
                assert_eq!(u64::from_le_bytes(count), per, "bytes lost");
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    (per * conns as u64) as f64 / 1e6 / started.elapsed().as_secs_f64()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_switchyard(dir: &std::path::Path, backend: SocketAddr) -> (Killed, SocketAddr) {
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.join("switchyard.yaml");
    std::fs::write(
        &conf,
        format!(
            "server: {{ threads: 2, pid_file: {d}/sy.pid, upgrade_sock: {d}/sy.sock }}\nlisteners:\n  bulk: {{ protocol: tcp, listen: \"{listen}\", upstream: sink }}\nupstreams:\n  sink: {{ backends: [{{ addr: \"{backend}\" }}] }}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["run", "-c"])
        .arg(&conf)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(listen);
    (Killed(child), listen)
}

fn start_haproxy(dir: &std::path::Path, backend: SocketAddr) -> Option<(Killed, SocketAddr)> {
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.join("haproxy.cfg");
    std::fs::write(
        &conf,
        format!(
            "global\n  nbthread 2\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\nfrontend bulk\n  bind {listen}\n  default_backend sink\nbackend sink\n  server s1 {backend}\n"
        ),
    )
    .unwrap();
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&conf)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_listening(listen);
    Some((Killed(child), listen))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes flags such as --bench; nothing to parse.
    let mb: u64 = std::env::var("L4_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let runs: usize = std::env::var("L4_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let bytes = mb * 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let backend = sink();
    let (_sy, sy_addr) = start_switchyard(dir.path(), backend);
    let haproxy = start_haproxy(dir.path(), backend);
    if haproxy.is_none() {
        eprintln!("haproxy not found: install it (scripts/install-deps.sh haproxy) to compare");
    }
    let mut targets = vec![("direct", backend), ("switchyard", sy_addr)];
    if let Some((_, addr)) = &haproxy {
        targets.push(("haproxy", *addr));
    }
    println!("bulk TCP transfer, {mb} MB per run, median of {runs} runs");
    println!("| path | 1 connection MB/s | vs direct | 4 connections MB/s | vs direct |");
    println!("|---|---:|---:|---:|---:|");
    let mut direct = (0.0, 0.0);
    for (name, addr) in targets {
        transfer(addr, bytes / 8, 1); // warm-up
        let one = median((0..runs).map(|_| transfer(addr, bytes, 1)).collect());
        let four = median((0..runs).map(|_| transfer(addr, bytes, 4)).collect());
        if name == "direct" {
            direct = (one, four);
        }
        println!(
            "| {name} | {one:.0} | {:.2} | {four:.0} | {:.2} |",
            one / direct.0,
            four / direct.1
        );
    }
}
