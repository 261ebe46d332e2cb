//! TCP (L4) listeners through the real binary: balancing across
//! connections, integrity of large transfers both ways, half-close, connect
//! failover, all-down behaviour and metrics.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A TCP backend that echoes every byte and, once the client half-closed,
/// appends `\n<name>\n` and closes: it proves both directions and the
/// half-close in one exchange.
struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    fn start(name: &str) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (name, flag) = (name.to_string(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let name = name.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                            Err(_) => return,
                        }
                    }
                    let _ = conn.write_all(format!("\n{name}\n").as_bytes());
                });
            }
        });
        Echo {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tcp_proxy(upstream: &str) -> Proxy {
    Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  db:\n    protocol: tcp\n    listen: \"{{TCP}}\"\n    upstream: t\nupstreams:\n  t:\n{upstream}"
    ))
}

/// Sends `data`, half-closes, and returns everything received until EOF.
fn exchange(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut writer = s.try_clone().unwrap();
    let data = data.to_vec();
    let sender = std::thread::spawn(move || {
        writer.write_all(&data).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    sender.join().unwrap();
    got
}

fn split_reply(got: &[u8], sent: usize) -> (&[u8], String) {
    let (echo, trailer) = got.split_at(sent.min(got.len()));
    (echo, String::from_utf8_lossy(trailer).trim().to_string())
}

#[test]
fn connections_are_balanced_and_half_close_passes_through() {
    let (a, b) = (Echo::start("a"), Echo::start("b"));
    let proxy = tcp_proxy(&format!(
        "    backends: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}]\n",
        a.addr, b.addr
    ));
    // (The harness's readiness probe was a connection too: count from here.)
    let conns = |p: &Proxy| {
        p.metric(
            "switchyard_tcp_connections_total",
            &[("listener", "db"), ("upstream", "t")],
        )
        .unwrap_or(0.0)
    };
    let sent_to_a = |p: &Proxy| {
        p.metric(
            "switchyard_backend_requests_total",
            &[("upstream", "t"), ("backend", &a.addr.to_string())],
        )
        .unwrap_or(0.0)
    };
    // Let the probe's connection be fully counted before taking the baseline.
    let deadline = Instant::now() + Duration::from_secs(5);
    while conns(&proxy) < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let (conns_before, a_before) = (conns(&proxy), sent_to_a(&proxy));
    let names: Vec<String> = (0..4)
        .map(|i| {
            let msg = format!("ping {i}");
            let got = exchange(proxy.tcp, msg.as_bytes());
            let (echo, name) = split_reply(&got, msg.len());
            assert_eq!(echo, msg.as_bytes());
            name
        })
        .collect();
    assert_ne!(names[0], names[1], "{names:?}");
    assert_eq!(names[0], names[2], "{names:?}");
    assert_eq!(names[1], names[3], "{names:?}");
    assert_eq!(conns(&proxy) - conns_before, 4.0);
    assert_eq!(sent_to_a(&proxy) - a_before, 2.0);
}

#[test]
fn large_transfers_arrive_intact_both_ways() {
    let a = Echo::start("big");
    let proxy = tcp_proxy(&format!("    backends: [{{ addr: \"{}\" }}]\n", a.addr));
    let data: Vec<u8> = (0..6_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let bytes = |dir: &str| {
        proxy
            .metric(
                "switchyard_tcp_bytes_total",
                &[("listener", "db"), ("direction", dir)],
            )
            .unwrap_or(0.0)
    };
    let (rx0, tx0) = (bytes("rx"), bytes("tx"));
    let got = exchange(proxy.tcp, &data);
    let (echo, name) = split_reply(&got, data.len());
    assert_eq!(echo.len(), data.len());
    assert!(echo == &data[..], "echoed bytes differ");
    assert_eq!(name, "big");
    assert_eq!(bytes("rx") - rx0, data.len() as f64);
    assert_eq!(bytes("tx") - tx0, (data.len() + "\nbig\n".len()) as f64);
}

#[test]
fn a_refused_backend_is_skipped_for_the_next_one() {
    let live = Echo::start("live");
    let dead = format!("127.0.0.1:{}", free_port());
    let proxy = tcp_proxy(&format!(
        "    retries: 1\n    backends: [{{ addr: \"{dead}\" }}, {{ addr: \"{}\" }}]\n",
        live.addr
    ));
    for _ in 0..4 {
        let got = exchange(proxy.tcp, b"x");
        assert_eq!(split_reply(&got, 1).1, "live");
    }
    assert!(
        proxy
            .metric(
                "switchyard_upstream_retries_total",
                &[("upstream", "t"), ("reason", "connect_failure")],
            )
            .unwrap()
            >= 2.0
    );
}

#[test]
fn with_every_backend_down_the_connection_is_closed_promptly() {
    let (d1, d2) = (free_port(), free_port());
    let proxy = tcp_proxy(&format!(
        "    retries: 1\n    backends: [{{ addr: \"127.0.0.1:{d1}\" }}, {{ addr: \"127.0.0.1:{d2}\" }}]\n"
    ));
    let started = Instant::now();
    let mut s = TcpStream::connect(proxy.tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without data");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn established_connections_finish_during_a_graceful_stop() {
    let a = Echo::start("drain");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("c.yaml");
    std::fs::write(
        &conf,
        format!(
            "server: {{ grace_period: 3s, shutdown_timeout: 1s, pid_file: {d}/p.pid, upgrade_sock: {d}/u.sock }}\nlisteners:\n  db: {{ protocol: tcp, listen: \"127.0.0.1:{port}\", upstream: t }}\nupstreams:\n  t: {{ backends: [{{ addr: \"{}\" }}] }}\n",
            a.addr,
            d = dir.path().display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["run", "-c"])
        .arg(&conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        if let Ok(s) = TcpStream::connect(addr) {
            break s;
        }
        assert!(Instant::now() < deadline, "never listened");
        std::thread::sleep(Duration::from_millis(50));
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"before ").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    // SIGTERM: the listener stops accepting, the open connection keeps working.
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::thread::sleep(Duration::from_millis(500));
    s.write_all(b"after").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(String::from_utf8_lossy(&rest), "after\ndrain\n");
}
