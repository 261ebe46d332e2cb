//! Many idle keep-alive client connections: each sends one request, reads
//! the answer, then stays open doing nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Opened `BATCH` at a time, answers read before the next batch, so the
/// proxy's memory afterwards is what idle connections hold rather than the
/// peak of 10,000 requests in flight at once.
const BATCH: usize = 100;

/// Opens `n` keep-alive connections to `addr`; all of them got a 200.
pub fn open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(n);
    while open.len() < n {
        let batch: Vec<TcpStream> = (0..BATCH.min(n - open.len()))
            .map(|_| {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                    .unwrap();
                s
            })
            .collect();
        for mut s in batch {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            // The backends answer with a short body; the head and body come
            // in one or two reads.
            while !ends_response(&got) {
                let n = s.read(&mut buf).expect("answer");
                assert!(n > 0, "closed before answering");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got.starts_with(b"HTTP/1.1 200"), "not a 200");
            open.push(s);
        }
    }
    open
}

/// A complete `Content-Length` response is in `got`.
fn ends_response(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    got.len() >= end + 4 + len
}
