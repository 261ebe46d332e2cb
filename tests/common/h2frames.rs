//! HTTP/2 written frame by frame (RFC 9113) with a tiny HPACK encoder (RFC
//! 7541, literals only, no Huffman), for the hostile-client tests: well-behaved
//! client libraries refuse to send what these tests send. Plus the proxy's
//! memory as the kernel reports it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// SETTINGS_INITIAL_WINDOW_SIZE.
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;

/// Error codes (RFC 9113 §7).
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    assert!(len < 1 << 24, "frame payload too long");
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A SETTINGS frame carrying `(identifier, value)` pairs.
pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, value) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&value.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// An HPACK integer with an `n`-bit prefix, `flags` in the bits above it.
pub fn hpack_int(flags: u8, n: u32, mut v: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

fn hpack_string(s: &[u8], out: &mut Vec<u8>) {
    hpack_int(0x00, 7, s.len(), out);
    out.extend_from_slice(s);
}

/// HPACK "literal header field without indexing, new name", no Huffman.
pub fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00];
    hpack_string(name.as_bytes(), &mut b);
    hpack_string(value.as_bytes(), &mut b);
    b
}

/// `GET http://h2.test{path}` plus `extra` header fields.
pub fn request_block(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    // :method GET (static 2), :scheme http (static 6).
    let mut b = vec![0x82, 0x86];
    b.extend(literal(":path", path));
    b.extend(literal(":authority", "h2.test"));
    for (k, v) in extra {
        b.extend(literal(k, v));
    }
    b
}

/// HEADERS with END_STREAM | END_HEADERS: a whole GET.
pub fn h2_get(stream: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        stream,
        &request_block(path, extra),
    )
}

/// The first byte of a response header block that is `:status 200` (HPACK
/// static index 8).
pub const STATUS_200: u8 = 0x88;

/// The status of a response header block as the `h2` crate's encoder
/// writes it: an indexed static entry (200, 204, 206, 304, 400, 404, 500)
/// or, the first time, a literal with the indexed `:status` name and the
/// value as a string, Huffman-coded or not.
pub fn status_of(block: &[u8]) -> Option<u16> {
    let statics = [(0x88, 200), (0x89, 204), (0x8a, 206), (0x8b, 304)];
    let statics = statics
        .into_iter()
        .chain([(0x8c, 400), (0x8d, 404), (0x8e, 500)]);
    if let Some((_, s)) = statics.into_iter().find(|(b, _)| block.first() == Some(b)) {
        return Some(s);
    }
    // Literal with name index 8 (`:status`): with incremental indexing
    // (0x48), without indexing (0x08) or never indexed (0x18).
    let (len_byte, rest) = match block {
        [0x48 | 0x08 | 0x18, l, rest @ ..] => (*l, rest),
        _ => return None,
    };
    let len = usize::from(len_byte & 0x7f);
    let value = rest.get(..len)?;
    let digits = if len_byte & 0x80 == 0 {
        value.to_vec()
    } else {
        huffman_digits(value)?
    };
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Decodes a Huffman-coded string of ASCII digits (RFC 7541 Appendix B:
/// '0'..'2' are the 5-bit codes 0..2, '3'..'9' the 6-bit codes 0x19..0x1f).
fn huffman_digits(code: &[u8]) -> Option<Vec<u8>> {
    let bits: Vec<u8> = code
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let take = |at: usize, n: usize| {
        bits.get(at..at + n)
            .map(|b| b.iter().fold(0u8, |v, bit| v << 1 | bit))
    };
    let mut out = Vec::new();
    let mut at = 0;
    // Padding is at most 7 one-bits, which no digit code starts with.
    while bits.len() - at >= 5 && bits[at..].contains(&0) {
        match take(at, 5)? {
            v @ 0..=2 => {
                out.push(b'0' + v);
                at += 5;
            }
            _ => match take(at, 6)? {
                v @ 0x19..=0x1f => {
                    out.push(b'3' + v - 0x19);
                    at += 6;
                }
                _ => return None,
            },
        }
    }
    Some(out)
}

/// One received frame.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a GOAWAY or RST_STREAM.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            GOAWAY => 4,
            RST_STREAM => 0,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A GOAWAY's last stream id: the highest the server may have acted on.
    pub fn last_stream(&self) -> Option<u32> {
        let b = self.payload.get(..4).filter(|_| self.kind == GOAWAY)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
    }

    /// A GOAWAY as text: last stream, error code and debug data.
    pub fn goaway_text(&self) -> String {
        format!(
            "GOAWAY last_stream={:?} code={:?} debug={:?}",
            self.last_stream(),
            self.error_code(),
            String::from_utf8_lossy(self.payload.get(8..).unwrap_or_default())
        )
    }
}

/// A client connection that has sent the preface and an empty SETTINGS.
pub struct Conn {
    pub s: TcpStream,
    /// Answer the server's SETTINGS with an ACK while reading.
    pub ack_settings: bool,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Self::open_with(addr, &[])
    }

    /// As [`Conn::open`], the preface's SETTINGS carrying `pairs`.
    pub fn open_with(addr: SocketAddr, pairs: &[(u16, u32)]) -> Conn {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(PREFACE).unwrap();
        s.write_all(&settings(pairs)).unwrap();
        Conn {
            s,
            ack_settings: true,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.s.write_all(bytes).is_ok()
    }

    /// The next frame (an error on EOF, reset or read timeout).
    pub fn read_frame(&mut self) -> io::Result<Frame> {
        let mut h = [0u8; 9];
        self.s.read_exact(&mut h)?;
        let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        self.s.read_exact(&mut payload)?;
        if self.ack_settings && h[3] == SETTINGS && h[4] & ACK == 0 {
            self.send(&frame(SETTINGS, ACK, 0, &[]));
        }
        Ok(Frame {
            kind: h[3],
            flags: h[4],
            stream,
            payload,
        })
    }

    /// Frames until one matches `want` (type, stream); None if the
    /// connection ends (or stalls) first.
    pub fn wait_for(&mut self, want: impl Fn(u8, u32) -> bool) -> Option<Frame> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let f = self.read_frame().ok()?;
            if want(f.kind, f.stream) {
                return Some(f);
            }
        }
        None
    }

    /// Sends a GET on `stream` and waits for its response's status.
    pub fn status(&mut self, stream: u32, path: &str) -> Option<u16> {
        if !self.send(&h2_get(stream, path, &[])) {
            return None;
        }
        let f = self.wait_for(|t, s| s == stream && (t == HEADERS || t == RST_STREAM))?;
        if f.kind == HEADERS {
            status_of(&f.payload)
        } else {
            None
        }
    }

    /// Reads (and drops) frames until the server closes the connection;
    /// returns the GOAWAY seen on the way, if any. Panics if the connection
    /// is still open after `limit`.
    pub fn until_closed(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = Instant::now() + limit;
        let mut goaway = None;
        while Instant::now() < deadline {
            match self.read_frame() {
                Ok(f) if f.kind == GOAWAY => goaway = Some(f),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(_) => return goaway,
            }
        }
        panic!("the connection is still open after {limit:?} (GOAWAY: {goaway:?})");
    }
}

impl Conn {
    /// Writes `first`, then `count` frames made by `next(i)`, from another
    /// thread on a clone of the socket (so this side can read meanwhile,
    /// without writing: SETTINGS are not acknowledged). Returns the frames
    /// and bytes the socket took before a write failed (the server closed
    /// the connection) or stalled for the write timeout.
    pub fn flood(
        &mut self,
        first: Vec<u8>,
        count: usize,
        next: impl Fn(usize) -> Vec<u8> + Send + 'static,
    ) -> std::thread::JoinHandle<(usize, u64)> {
        self.ack_settings = false;
        let mut s = self.s.try_clone().unwrap();
        std::thread::spawn(move || {
            if s.write_all(&first).is_err() {
                return (0, 0);
            }
            let mut bytes = first.len() as u64;
            let mut batch = Vec::new();
            let mut in_batch = 0;
            let mut sent = 0;
            for i in 0..count {
                batch.extend(next(i));
                in_batch += 1;
                if batch.len() >= 64 * 1024 || i + 1 == count {
                    if s.write_all(&batch).is_err() {
                        break;
                    }
                    sent += in_batch;
                    bytes += batch.len() as u64;
                    batch.clear();
                    in_batch = 0;
                }
            }
            (sent, bytes)
        })
    }
}

/// Forgets the peak resident size of `pid` (`VmHWM` starts again from
/// `VmRSS`, proc(5) `clear_refs`); false if the kernel refused.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// A field of `/proc/{pid}/status` in KiB, e.g. `VmRSS` (resident now) or
/// `VmHWM` (the most ever resident).
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
