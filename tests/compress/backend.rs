//! The backend of the compression tests: answers each request as its
//! target says, so one backend serves every case.
//!
//! `/any/path?len=N&type=T&framing=length|chunked|close&status=S&h=Name:Value`
//! (`h` repeatable) answers `len` bytes of text; `/sse` sends events, each
//! after the test says it has the previous one; `/cut` sends less than its
//! Content-Length and closes; `/trailers` ends a chunked body with a trailer
//! (announced by a `Trailer` field unless `?quiet`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Server-sent events per `/sse` stream.
pub const EVENTS: usize = 3;
/// The longest the backend waits for the client to have an event.
const EVENT_WAIT: Duration = Duration::from_secs(5);

pub struct Backend {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// `/sse` streams in which an event was not at the client in time
    /// (held back until the backend sent more).
    pub late: Arc<AtomicUsize>,
}

/// A backend; `sse_acks` carries the client's "I have event i" for `/sse`.
pub fn start(sse_acks: Option<Receiver<usize>>) -> Backend {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(AtomicUsize::new(0));
    let acks = Arc::new(Mutex::new(sse_acks));
    let (a, t) = (Arc::clone(&accepted), Arc::clone(&late));
    std::thread::spawn(move || {
        for conn in l.incoming().flatten().take(200) {
            a.fetch_add(1, Ordering::SeqCst);
            let (acks, late) = (Arc::clone(&acks), Arc::clone(&t));
            std::thread::spawn(move || serve(conn, &acks, &late));
        }
    });
    Backend {
        addr,
        accepted,
        late,
    }
}

/// The text body of `len` bytes every answer is cut from: JSON lines.
pub fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0;
    while out.len() < len {
        let line = format!("{{\"id\":{i},\"name\":\"item number {i}\",\"tags\":[\"a\",\"b\"]}}\n");
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

type Acks = Arc<Mutex<Option<Receiver<usize>>>>;

fn serve(conn: TcpStream, acks: &Acks, late: &AtomicUsize) {
    conn.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let head_request = line.starts_with("HEAD ");
        let keep = if target.starts_with("/sse") {
            events(&mut w, acks, late)
        } else if target.starts_with("/cut") {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10000\r\n\r\n";
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(&text(3000));
            false
        } else if target.starts_with("/trailers") {
            let body = text(4000);
            // `/trailers?quiet`: not announced by a `Trailer` field.
            let announce = if target.contains("quiet") {
                ""
            } else {
                "Trailer: X-Sum\r\n"
            };
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n{announce}\r\n");
            let mut out = head.into_bytes();
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\r\n0\r\nX-Sum: 4000\r\n\r\n");
            w.write_all(&out).is_ok()
        } else {
            answer(&mut w, &target, head_request)
        };
        if !keep {
            return;
        }
    }
}

/// The answer `target`'s query asks for; false when the connection ends.
fn answer(w: &mut TcpStream, target: &str, head_request: bool) -> bool {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let (mut len, mut ty, mut framing, mut status) = (4000, "text/html".to_string(), "length", 200);
    let mut extra = String::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("len", v)) => len = v.parse().unwrap(),
            Some(("type", v)) => ty = v.to_string(),
            Some(("framing", v)) => {
                framing = if v == "chunked" {
                    "chunked"
                } else if v == "close" {
                    "close"
                } else {
                    "length"
                }
            }
            Some(("status", v)) => status = v.parse().unwrap(),
            Some(("h", v)) => {
                let (n, v) = v.split_once(':').unwrap();
                extra.push_str(&format!("{n}: {v}\r\n"));
            }
            _ => {}
        }
    }
    let body = if head_request || status == 204 || status == 304 {
        Vec::new()
    } else {
        text(len)
    };
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Type: {ty}\r\n{extra}");
    match framing {
        "length" if status != 204 && status != 304 => {
            head.push_str(&format!("Content-Length: {len}\r\n"))
        }
        "chunked" => head.push_str("Transfer-Encoding: chunked\r\n"),
        "close" => head.push_str("Connection: close\r\n"),
        _ => {}
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if framing == "chunked" && !body.is_empty() {
        // Two chunks, so the body crosses a chunk boundary.
        let (a, b) = body.split_at(body.len() / 2);
        for part in [a, b] {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else if framing == "chunked" {
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(&body);
    }
    w.write_all(&out).is_ok() && framing != "close"
}

/// `EVENTS` chunked events; each after the client acknowledged the
/// previous one (or `EVENT_WAIT` passed: counted in `late`).
fn events(w: &mut TcpStream, acks: &Acks, late: &AtomicUsize) -> bool {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    if w.write_all(head.as_bytes()).is_err() {
        return false;
    }
    let acks = acks.lock().unwrap();
    for i in 0..EVENTS {
        if i > 0 {
            if let Some(rx) = acks.as_ref() {
                match rx.recv_timeout(EVENT_WAIT) {
                    Ok(n) if n + 1 == i => {}
                    Ok(_) | Err(RecvTimeoutError::Timeout) => {
                        late.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(RecvTimeoutError::Disconnected) => return false,
                }
            }
        }
        let event = format!("data: event-{i}\n\n");
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        if w.write_all(chunk.as_bytes()).is_err() {
            return false;
        }
    }
    w.write_all(b"0\r\n\r\n").is_ok()
}
