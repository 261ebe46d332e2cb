//! Clients of the compression tests: a raw HTTP/1 client that keeps the
//! body's bytes (and its framing), curl for HTTP/2, and the decoders.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// A chunked body ended with its last chunk, a length body was whole.
    pub complete: bool,
}

impl Resp {
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.all(name).next()
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded by its Content-Encoding.
    pub fn decoded(&self) -> Vec<u8> {
        decode(self.header("content-encoding"), &self.body)
    }
}

pub fn decode(coding: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        None => out.extend_from_slice(data),
        Some("gzip") => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .expect("gzip");
        }
        Some("br") => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .expect("br");
        }
        Some("zstd") => {
            zstd::stream::read::Decoder::new(data)
                .unwrap()
                .read_to_end(&mut out)
                .expect("zstd");
        }
        Some(other) => panic!("unexpected coding {other}"),
    }
    out
}

/// A client connection that may carry several requests.
pub struct Conn(BufReader<TcpStream>);

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        Conn(BufReader::new(s))
    }

    /// Sends `method target` with `headers` (HTTP/1.1 unless `version`
    /// says otherwise) and reads the response.
    pub fn request(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.request_as("HTTP/1.1", method, target, headers)
    }

    pub fn request_as(
        &mut self,
        version: &str,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = format!("{method} {target} {version}\r\nHost: compress.test\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.0.get_mut().write_all(req.as_bytes()).unwrap();
        read(&mut self.0, method == "HEAD")
    }
}

/// One request on a fresh connection.
pub fn fetch(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    Conn::open(addr).request(method, target, headers)
}

fn read(r: &mut BufReader<TcpStream>, head_request: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .expect("a status line")
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
        complete: true,
    };
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return resp;
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        resp.complete = chunked(r, &mut resp);
    } else if let Some(len) = resp.header("content-length") {
        let mut b = vec![0; len.parse().unwrap()];
        resp.complete = r.read_exact(&mut b).is_ok();
        resp.body = b;
    } else {
        let _ = r.read_to_end(&mut resp.body);
    }
    resp
}

/// Reads a chunked body into `resp`; false if it ended before its last chunk.
fn chunked(r: &mut BufReader<TcpStream>, resp: &mut Resp) -> bool {
    loop {
        let mut size = String::new();
        if r.read_line(&mut size).unwrap_or(0) == 0 {
            return false;
        }
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16) else {
            return false;
        };
        if n == 0 {
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return false;
                }
                if line.trim().is_empty() {
                    return true;
                }
                let (k, v) = line.trim_end().split_once(':').unwrap();
                resp.trailers
                    .push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut chunk = vec![0; n + 2];
        if r.read_exact(&mut chunk).is_err() {
            return false;
        }
        resp.body.extend_from_slice(&chunk[..n]);
    }
}

/// A GET over HTTP/2 by prior knowledge (curl, which decodes nothing
/// unless asked): the status, the headers (lower-case names) and the body.
pub fn h2_get(addr: SocketAddr, target: &str, accept: Option<&str>) -> Resp {
    let dir = tempfile::tempdir().unwrap();
    let (heads, body) = (dir.path().join("h"), dir.path().join("b"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--http2-prior-knowledge"])
        .arg("-D")
        .arg(&heads)
        .arg("-o")
        .arg(&body);
    if let Some(a) = accept {
        cmd.args(["-H", &format!("Accept-Encoding: {a}")]);
    }
    let out = cmd.arg(format!("http://{addr}{target}")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(heads).unwrap();
    let mut lines = text.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: std::fs::read(body).unwrap(),
        trailers: Vec::new(),
        complete: true,
    }
}
