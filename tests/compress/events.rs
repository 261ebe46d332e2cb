//! Server-sent events through a compressing route: decoded as they
//! arrive, each acknowledged to the backend, which sends the next only
//! then (so an event held back by the proxy shows, without timing).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::backend::{self, EVENTS};
use super::proxy;

/// Decodes a compressed stream as it arrives.
enum Decoder {
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    Br(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

impl Decoder {
    fn new(coding: &str) -> Self {
        match coding {
            "gzip" => Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new()))),
            _ => Decoder::Br(Box::new(brotli::DecompressorWriter::new(Vec::new(), 4096))),
        }
    }

    /// Everything decoded so far, after `data`.
    fn feed(&mut self, data: &[u8]) -> String {
        let out = match self {
            Decoder::Gzip(d) => {
                d.write_all(data).unwrap();
                d.flush().unwrap();
                d.get_ref()
            }
            Decoder::Br(d) => {
                d.write_all(data).unwrap();
                d.flush().unwrap();
                d.get_ref()
            }
        };
        String::from_utf8_lossy(out).into_owned()
    }
}

/// Reads an event stream from `read` (compressed bytes as they come),
/// acknowledging each event to the backend as soon as it is decoded.
fn follow_events(
    coding: &str,
    mut read: impl FnMut(&mut Vec<u8>) -> bool,
    acks: &std::sync::mpsc::Sender<usize>,
) -> usize {
    let mut d = Decoder::new(coding);
    let mut seen = 0;
    let mut data = Vec::new();
    while seen < EVENTS && read(&mut data) {
        let decoded = d.feed(&data);
        data.clear();
        while seen < EVENTS && decoded.contains(&format!("data: event-{seen}\n\n")) {
            let _ = acks.send(seen);
            seen += 1;
        }
    }
    seen
}

/// Server-sent events compressed on `path` arrive one by one: the backend
/// sends each only once the client has decoded the one before.
pub fn events_arrive_one_by_one(coding: &str, path: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    let b = backend::start(Some(rx));
    let p = proxy(&b);
    let accept = format!("Accept-Encoding: {coding}");
    let seen = if path == "h2" {
        let mut child = Command::new("curl")
            .args([
                "-sSN",
                "--max-time",
                "20",
                "--http2-prior-knowledge",
                "-H",
                &accept,
            ])
            .arg(format!("http://{}/sse", p.http))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let read = |data: &mut Vec<u8>| {
            let mut buf = [0u8; 4096];
            let n = out.read(&mut buf).unwrap_or(0);
            data.extend_from_slice(&buf[..n]);
            n > 0
        };
        let seen = follow_events(coding, read, &tx);
        let _ = child.kill();
        let _ = child.wait();
        seen
    } else {
        let addr = if path == "forwarder" { p.http } else { p.tcp };
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(format!("GET /sse HTTP/1.1\r\nHost: x\r\n{accept}\r\n\r\n").as_bytes())
            .unwrap();
        let mut r = BufReader::new(s);
        let mut head = String::new();
        while r.read_line(&mut head).unwrap() > 2 && !head.ends_with("\r\n\r\n") {}
        assert!(
            head.contains(&format!("Content-Encoding: {coding}"))
                || head.contains(&format!("content-encoding: {coding}")),
            "{path}: {head}"
        );
        // One chunk at a time.
        let read = |data: &mut Vec<u8>| {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            n > 0 && r.read_exact(&mut chunk).is_ok() && {
                data.extend_from_slice(&chunk[..n]);
                true
            }
        };
        follow_events(coding, read, &tx)
    };
    assert_eq!(seen, EVENTS, "{path} {coding}: events decoded");
    assert_eq!(
        b.late.load(Ordering::SeqCst),
        0,
        "{path} {coding}: an event waited for the next one"
    );
}
