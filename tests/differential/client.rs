//! The client side: one connection that keeps every byte it received and
//! when, and reads responses from it by their framing into [`Resp`]. Only
//! std: the `engines` fuzz target includes this file too.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::wire::{describe_head, field, find, header_fields, show, status_of};

/// A client connection that keeps every byte received, and when it came.
pub struct Client {
    pub s: TcpStream,
    pub buf: Vec<u8>,
    /// Read position in `buf`.
    pub pos: usize,
    /// (length of `buf` after a read, when that read returned).
    arrivals: Vec<(usize, Instant)>,
    pub closed: bool,
    /// The longest a write, or the reading of one response, may take.
    wait: Duration,
}

/// What one read brought.
pub enum Fill {
    Data,
    Closed,
    Timeout,
}

/// Why a message could not be read whole.
fn stop_reason(f: Fill) -> String {
    match f {
        Fill::Closed => "cut short (connection closed)".into(),
        _ => "stalled (nothing more within the wait)".into(),
    }
}

impl Client {
    /// Connects to `addr`; `wait` bounds each write and each response.
    pub fn connect(addr: SocketAddr, wait: Duration) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_write_timeout(Some(wait)).unwrap();
        Client {
            s,
            buf: Vec::new(),
            pos: 0,
            arrivals: Vec::new(),
            closed: false,
            wait,
        }
    }

    /// Bytes received and not read yet.
    pub fn avail(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads what arrives next, waiting at most until `deadline`.
    pub fn fill(&mut self, deadline: Instant) -> Fill {
        let mut tmp = vec![0u8; 64 * 1024];
        for _ in 0..100 {
            if self.closed {
                return Fill::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Fill::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            let _ = self.s.set_read_timeout(Some(wait));
            match self.s.read(&mut tmp) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    self.arrivals.push((self.buf.len(), Instant::now()));
                    return Fill::Data;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Fill::Timeout
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
        Fill::Timeout
    }

    /// When the byte at `offset` arrived.
    pub fn arrival(&self, offset: usize) -> Option<Instant> {
        self.arrivals
            .iter()
            .find(|(end, _)| *end > offset)
            .map(|(_, t)| *t)
    }

    /// A complete head at the read position: its lines, consumed.
    fn head(&mut self, deadline: Instant) -> Result<Vec<String>, String> {
        loop {
            if let Some(i) = find(&self.buf[self.pos..], b"\r\n\r\n") {
                let head = &self.buf[self.pos..self.pos + i];
                let lines = head
                    .split(|b| *b == b'\n')
                    .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into())
                    .collect();
                self.pos += i + 4;
                return Ok(lines);
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Closed if self.avail() == 0 => {
                    return Err("connection closed without a response".into())
                }
                Fill::Closed => {
                    return Err(format!(
                        "connection closed mid-head: {}",
                        show(&self.buf[self.pos..])
                    ))
                }
                Fill::Timeout if self.avail() == 0 => return Err("no response (timed out)".into()),
                Fill::Timeout => {
                    return Err(format!(
                        "incomplete head, then nothing: {}",
                        show(&self.buf[self.pos..])
                    ))
                }
            }
        }
    }

    /// A CRLF-ended line, consumed, without its CRLF.
    fn line(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = find(&self.buf[self.pos..], b"\r\n") {
                let line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.avail() > 64 * 1024 {
                return Err("line too long".into());
            }
            match self.fill(deadline) {
                Fill::Data => {}
                f => return Err(stop_reason(f)),
            }
        }
    }

    /// `n` body bytes into `resp`.
    fn body_bytes(&mut self, n: usize, resp: &mut Resp, deadline: Instant) -> Result<(), String> {
        let mut left = n;
        while left > 0 {
            if self.avail() == 0 {
                match self.fill(deadline) {
                    Fill::Data => {}
                    f => return Err(stop_reason(f)),
                }
            }
            let k = left.min(self.avail());
            resp.segments.push((resp.body.len(), self.pos, k));
            resp.body
                .extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            left -= k;
        }
        Ok(())
    }

    fn chunked_body(&mut self, resp: &mut Resp, deadline: Instant) -> Result<(), String> {
        for _ in 0..100_000 {
            let line = self.line(deadline)?;
            let text = String::from_utf8_lossy(&line).into_owned();
            let size = text.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(size, 16)
                .ok()
                .filter(|n| *n <= 64 << 20)
                .ok_or_else(|| format!("bad chunk size line {}", show(&line)))?;
            if n == 0 {
                loop {
                    let line = self.line(deadline)?;
                    if line.is_empty() {
                        return Ok(());
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    resp.trailers.extend(header_fields(&[text]));
                }
            }
            self.body_bytes(n, resp, deadline)?;
            if !self.line(deadline)?.is_empty() {
                return Err("chunk data not followed by CRLF".into());
            }
        }
        Err("too many chunks".into())
    }

    fn until_close(&mut self, resp: &mut Resp, deadline: Instant) -> Result<(), String> {
        loop {
            let k = self.avail();
            if k > 0 {
                resp.segments.push((resp.body.len(), self.pos, k));
                resp.body.extend_from_slice(&self.buf[self.pos..]);
                self.pos += k;
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Closed => return Ok(()),
                Fill::Timeout => return Err(stop_reason(Fill::Timeout)),
            }
        }
    }

    /// One response, with the interim responses before it.
    pub fn response(&mut self, head_request: bool, interim: Vec<String>) -> Result<Resp, String> {
        let deadline = Instant::now() + self.wait;
        let mut resp = Resp {
            interim,
            ..Resp::default()
        };
        let lines = loop {
            let lines = match self.head(deadline) {
                Ok(lines) => lines,
                Err(e) if resp.interim.is_empty() => return Err(e),
                Err(e) => return Err(format!("{:?}, then {e}", resp.interim)),
            };
            let status = status_of(&lines[0])?;
            if (100..200).contains(&status) && status != 101 {
                resp.interim.push(describe_head(&lines));
                continue;
            }
            break lines;
        };
        resp.status_line = lines[0].clone();
        resp.status = status_of(&lines[0])?;
        resp.headers = header_fields(&lines[1..]);
        resp.head_end = self.pos;
        let coded = field(&resp.headers, "transfer-encoding").map(str::to_string);
        let length = field(&resp.headers, "content-length").map(str::to_string);
        let result = if head_request || resp.status == 204 || resp.status == 304 {
            resp.framing = "no body";
            Ok(())
        } else if resp.status == 101 {
            resp.framing = "switched";
            Ok(())
        } else if let Some(coding) = coded {
            if coding.to_ascii_lowercase().trim_end().ends_with("chunked") {
                resp.framing = "chunked";
                self.chunked_body(&mut resp, deadline)
            } else {
                resp.framing = "close-delimited (non-chunked coding)";
                self.until_close(&mut resp, deadline)
            }
        } else if let Some(length) = length {
            resp.framing = "length";
            match length.parse::<usize>() {
                Ok(n) => self.body_bytes(n, &mut resp, deadline),
                Err(_) => Err(format!("bad Content-Length {length:?}")),
            }
        } else {
            resp.framing = "close-delimited";
            self.until_close(&mut resp, deadline)
        };
        resp.end = match result {
            Ok(()) => "complete".into(),
            Err(e) => e,
        };
        Ok(resp)
    }
}

/// One response as the client got it.
#[derive(Default)]
pub struct Resp {
    pub interim: Vec<String>,
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub framing: &'static str,
    /// "complete", or how it ended early.
    pub end: String,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// Offset in the connection's bytes just past the head.
    pub head_end: usize,
    /// (offset in body, offset in the connection's bytes, length).
    pub segments: Vec<(usize, usize, usize)>,
}

impl Resp {
    /// Where body byte `i` was in the connection's bytes.
    pub fn raw_offset(&self, i: usize) -> Option<usize> {
        self.segments
            .iter()
            .find(|(at, _, len)| (*at..at + len).contains(&i))
            .map(|(at, raw, _)| raw + (i - at))
    }
}
