//! Responses stream: every byte the backend sends reaches the client without
//! waiting for more (SPEC "HTTP behaviour"). Server-sent events and a paused
//! Content-Length body, through plain and TLS listeners, on both HTTP/1
//! engines (the forwarder, and Pingora's path forced by `forwarder: false`)
//! and over HTTP/2.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events per stream, and the pause between them.
const EVENTS: usize = 4;
const GAP: Duration = Duration::from_millis(400);
/// The longest an event may take from backend to client.
const LATE: Duration = Duration::from_millis(250);

/// When the backend sent each event of the current stream.
type Sent = Arc<Mutex<Vec<Instant>>>;

/// A backend answering `/sse` with `EVENTS` chunked events `GAP` apart,
/// and `/paused` with a 2 KiB Content-Length body whose second half comes
/// 1.5 s after the first.
fn backend() -> (SocketAddr, Sent) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let sent: Sent = Arc::default();
    let s = Arc::clone(&sent);
    std::thread::spawn(move || {
        for conn in l.incoming().flatten().take(32) {
            let s = Arc::clone(&s);
            std::thread::spawn(move || serve(conn, &s));
        }
    });
    (addr, sent)
}

/// Answers requests on `conn` until the client closes it.
fn serve(conn: TcpStream, sent: &Sent) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if r.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        let answered = if request_line.contains("/sse") {
            events(&mut w, sent)
        } else {
            paused(&mut w)
        };
        if answered.is_err() {
            return;
        }
    }
}

fn events(w: &mut TcpStream, sent: &Sent) -> std::io::Result<()> {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    w.write_all(head.as_bytes())?;
    sent.lock().unwrap().clear();
    for i in 0..EVENTS {
        if i > 0 {
            std::thread::sleep(GAP);
        }
        let event = format!("data: event-{i}\n\n");
        sent.lock().unwrap().push(Instant::now());
        w.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())?;
    }
    w.write_all(b"0\r\n\r\n")
}

fn paused(w: &mut TcpStream) -> std::io::Result<()> {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 2048\r\n\r\n";
    w.write_all(format!("{head}{}", "a".repeat(1024)).as_bytes())?;
    std::thread::sleep(Duration::from_millis(1500));
    w.write_all("b".repeat(1024).as_bytes())
}

/// A proxy with a plain listener ({HTTP}) and a TLS one ({TCP}) to
/// `backend`, on the chosen engine.
fn proxy(backend: SocketAddr, forwarder: bool, dir: &std::path::Path) -> Proxy {
    let pem = certs::self_signed(dir, "edge", "edge.test", &["edge.test"]);
    Proxy::start(&format!(
        "listeners:\n  plain:\n    listen: \"{{HTTP}}\"\n    forwarder: {forwarder}\n    routes: [{{ upstream: u }}]\n  tls:\n    listen: \"{{TCP}}\"\n    forwarder: {forwarder}\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: [{{ addr: \"{backend}\" }}] }}\n",
        pem.cert.display(),
        pem.key.display(),
    ))
}

/// Each event's delay from backend to client, read from `lines` (the
/// response as it arrives, one line at a time).
fn event_delays(lines: impl Iterator<Item = String>, sent: &Sent) -> Vec<Duration> {
    let mut arrived = Vec::new();
    let mut seen = Vec::new();
    for line in lines {
        seen.push(line.clone());
        if line.starts_with("data: event-") {
            arrived.push(Instant::now());
            if arrived.len() == EVENTS {
                break;
            }
        }
    }
    let sent = sent.lock().unwrap();
    assert_eq!(arrived.len(), EVENTS, "events received in {seen:?}");
    arrived
        .iter()
        .zip(sent.iter())
        .map(|(a, s)| a.saturating_duration_since(*s))
        .collect()
}

/// The event stream over plain HTTP/1.1 (a raw socket).
fn plain_sse(addr: SocketAddr, sent: &Sent) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /sse HTTP/1.1\r\nHost: edge.test\r\n\r\n")
        .unwrap();
    let lines = BufReader::new(s).lines().map_while(Result::ok);
    event_delays(lines, sent)
}

/// The event stream through curl over TLS (`--http1.1` or `--http2`).
fn tls_sse(addr: SocketAddr, version: &str, sent: &Sent) -> Vec<Duration> {
    let mut child = Command::new("curl")
        .args(["-sSkN", version, "--max-time", "10"])
        .arg(format!("https://{addr}/sse"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl is installed by scripts/install-deps.sh");
    let out = child.stdout.take().unwrap();
    let lines = BufReader::new(out).lines().map_while(Result::ok);
    let delays = event_delays(lines, sent);
    let _ = child.kill();
    let _ = child.wait();
    delays
}

fn assert_prompt(what: &str, delays: &[Duration]) {
    for (i, d) in delays.iter().enumerate() {
        assert!(
            *d < LATE,
            "{what}: event {i} reached the client {d:?} after the backend sent it ({delays:?})"
        );
    }
}

/// One test per engine; the streams within it run one after another (the
/// backend keeps one clock per stream).
fn events_arrive_as_sent(forwarder: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (addr, sent) = backend();
    let proxy = proxy(addr, forwarder, dir.path());
    let engine = if forwarder { "forwarder" } else { "pingora" };
    assert_prompt(
        &format!("{engine}, plain HTTP/1.1"),
        &plain_sse(proxy.http, &sent),
    );
    assert_prompt(
        &format!("{engine}, TLS HTTP/1.1"),
        &tls_sse(proxy.tcp, "--http1.1", &sent),
    );
    assert_prompt(
        &format!("{engine}, TLS HTTP/2"),
        &tls_sse(proxy.tcp, "--http2", &sent),
    );
}

#[test]
fn server_sent_events_arrive_as_sent_through_the_forwarder() {
    events_arrive_as_sent(true);
}

#[test]
fn server_sent_events_arrive_as_sent_through_pingoras_path() {
    events_arrive_as_sent(false);
}

/// The first half of a paused Content-Length body is at the client well
/// before the backend sends the second half.
fn paused_body_arrives_in_parts(forwarder: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _) = backend();
    let proxy = proxy(addr, forwarder, dir.path());
    let mut s = TcpStream::connect(proxy.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    s.write_all(b"GET /paused HTTP/1.1\r\nHost: edge.test\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut first_half = None;
    while got.len() < 4096 {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let body_start = got.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        if let Some(b) = body_start {
            if first_half.is_none() && got.len() >= b + 1024 {
                first_half = Some(start.elapsed());
            }
            if got.len() >= b + 2048 {
                break;
            }
        }
    }
    let first_half = first_half.expect("the first kilobyte never arrived");
    assert!(
        first_half < Duration::from_millis(1000),
        "forwarder {forwarder}: the first 1 KiB took {first_half:?} (the backend paused 1.5 s after it)"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.ends_with(&"b".repeat(1024)), "body incomplete");
}

#[test]
fn a_paused_content_length_body_streams_through_the_forwarder() {
    paused_body_arrives_in_parts(true);
}

#[test]
fn a_paused_content_length_body_streams_through_pingoras_path() {
    paused_body_arrives_in_parts(false);
}
