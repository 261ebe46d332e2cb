//! A small HTTP/1.1 backend that says who answered: `make run` starts a few
//! behind the example config, and the integration tests use it as their
//! mock backend.
//!
//! Every request gets `200 OK` (keep-alive) with `X-Backend: <name>` and a
//! text body listing the backend name, method, target, body size and every
//! request header, one per line (`header <name>: <value>`). Query parameters
//! steer it: `sleep_ms=N` waits before answering, `status=N` answers N,
//! `pad=N` appends N bytes of `x` to the body (for large responses).
//! Request bodies may use Content-Length or chunked encoding.
//!
//! [`DemoState`] is shared with whoever started the server: it counts
//! requests, remembers the last targets seen (bounded), and can force every
//! answer to one status (tests use that to fail health checks) or delay
//! every answer (a slow backend, for outlier detection).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 64 * 1024;

/// How many recent request targets [`DemoState`] remembers.
const RECENT: usize = 1024;

/// What a demo backend shares with its owner.
pub struct DemoState {
    pub name: String,
    hits: AtomicUsize,
    /// 0 = answer normally.
    forced_status: AtomicU16,
    /// Milliseconds every answer waits (0 = none), besides `sleep_ms`.
    forced_delay_ms: AtomicU64,
    recent: Mutex<VecDeque<(Instant, String)>>,
}

impl DemoState {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_string(),
            hits: AtomicUsize::new(0),
            forced_status: AtomicU16::new(0),
            forced_delay_ms: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
        })
    }

    /// Requests answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// Answer every request with `status` (None: answer normally).
    pub fn force_status(&self, status: Option<u16>) {
        self.forced_status
            .store(status.unwrap_or(0), Ordering::Relaxed);
    }

    /// Delay every answer by `delay` (None: answer at once), as a backend
    /// that turned slow.
    pub fn force_delay(&self, delay: Option<Duration>) {
        let ms = delay.map_or(0, |d| d.as_millis().min(60_000) as u64);
        self.forced_delay_ms.store(ms, Ordering::Relaxed);
    }

    /// When each of the last requests whose target starts with `prefix` arrived.
    pub fn arrivals(&self, prefix: &str) -> Vec<Instant> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .filter(|(_, t)| t.starts_with(prefix))
            .map(|(at, _)| *at)
            .collect()
    }

    fn record(&self, target: &str) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back((Instant::now(), target.to_string()));
    }
}

/// Serves `listener` forever as the backend described by `state`.
pub async fn serve(listener: TcpListener, state: Arc<DemoState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &state).await {
                log::debug!("demo backend {}: {e}", state.name);
            }
        });
    }
}

struct Request {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body_len: usize,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, key: &str) -> Option<&str> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            _ => None,
        })
    }

    fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.version == "HTTP/1.0" {
            conn.contains("keep-alive")
        } else {
            !conn.contains("close")
        }
    }
}

async fn connection(stream: TcpStream, state: &DemoState) -> io::Result<()> {
    let name = state.name.as_str();
    let mut stream = BufReader::new(stream);
    loop {
        let Some(req) = read_request(&mut stream).await? else {
            return Ok(());
        };
        state.record(&req.target);
        if let Some(ms) = req.query("sleep_ms").and_then(|v| v.parse::<u64>().ok()) {
            tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
        }
        let delay = state.forced_delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let forced = state.forced_status.load(Ordering::Relaxed);
        let status = req
            .query("status")
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|s| (200..=599).contains(s))
            .unwrap_or(200);
        let status = if forced > 0 { forced } else { status };
        let mut body = format!(
            "backend: {name}\nmethod: {}\ntarget: {}\nbody-bytes: {}\n",
            req.method, req.target, req.body_len
        );
        for (k, v) in &req.headers {
            body.push_str(&format!("header {}: {v}\n", k.to_ascii_lowercase()));
        }
        if let Some(pad) = req.query("pad").and_then(|v| v.parse::<usize>().ok()) {
            body.push_str(&"x".repeat(pad.min(64 << 20)));
        }
        let keep = req.keep_alive();
        let head = format!(
            "HTTP/1.1 {status} {}\r\nX-Backend: {name}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Status"),
            body.len(),
            if keep { "keep-alive" } else { "close" },
        );
        let out = stream.get_mut();
        out.write_all(head.as_bytes()).await?;
        if req.method != "HEAD" {
            out.write_all(body.as_bytes()).await?;
        }
        out.flush().await?;
        if !keep {
            return Ok(());
        }
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one request; `None` when the client closed between requests.
async fn read_request(stream: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = stream.read_line(&mut line).await?;
        if n == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Err(bad("eof in head"))
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(bad("head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate blank lines between requests
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines[0].split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("bad request line"));
    };
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        body_len: 0,
    };
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    req.body_len = if chunked {
        read_chunked(stream).await?
    } else {
        let len: u64 = req
            .header("content-length")
            .map(|v| v.parse().map_err(|_| bad("bad content-length")))
            .transpose()?
            .unwrap_or(0);
        let copied = tokio::io::copy(&mut (&mut *stream).take(len), &mut tokio::io::sink()).await?;
        if copied != len {
            return Err(bad("body cut short"));
        }
        len as usize
    };
    Ok(Some(req))
}

async fn read_chunked(stream: &mut BufReader<TcpStream>) -> io::Result<usize> {
    let mut total = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await?;
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut t = String::new();
                if stream.read_line(&mut t).await? == 0 || t.trim().is_empty() {
                    return Ok(total);
                }
            }
        }
        let copied = tokio::io::copy(
            &mut (&mut *stream).take(size as u64 + 2),
            &mut tokio::io::sink(),
        )
        .await?;
        if copied != size as u64 + 2 {
            return Err(bad("chunk cut short"));
        }
        total += size;
    }
}

/// A demo backend on its own thread and runtime, for tests: stops (closing
/// its listener and every connection) when dropped.
pub struct DemoServer {
    pub name: String,
    pub addr: SocketAddr,
    pub state: Arc<DemoState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DemoServer {
    /// Binds `addr` (use `127.0.0.1:0` for an ephemeral port) and serves.
    pub fn start(name: &str, addr: &str) -> io::Result<Self> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let local = std_listener.local_addr()?;
        let state = DemoState::new(name);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread_state = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                tokio::select! {
                    _ = serve(listener, thread_state) => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime here aborts every open connection.
        });
        Ok(Self {
            name: name.to_string(),
            addr: local,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn hits(&self) -> usize {
        self.state.hits()
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
