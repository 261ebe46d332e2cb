//! Shared harness for the integration tests: the real `switchyard` binary on
//! loopback with a temp config, demo backends on ephemeral ports that say who
//! answered, and a small raw HTTP/1.1 client (so tests control every byte).
#![allow(dead_code)]

pub mod certs;
pub mod daemon;
pub mod dns;
pub mod h2frames;
pub mod redis_server;
pub mod reload;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use switchyard::demo::DemoServer;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// A loopback port that was free a moment ago, and that this test process
/// hands out only once.
///
/// Ports come from below Linux's ephemeral range (32768..), so a backend or
/// client that binds port 0 in a parallel test can never be given the port
/// between this check and switchyard binding it; a process-wide cursor keeps
/// two picks in one process apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = CURSOR.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (LOW + CURSOR.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN)
}

/// `n` demo backends named `{prefix}-1` .. `{prefix}-n`.
pub fn backends(prefix: &str, n: usize) -> Vec<DemoServer> {
    (1..=n)
        .map(|i| DemoServer::start(&format!("{prefix}-{i}"), "127.0.0.1:0").unwrap())
        .collect()
}

/// `backends: [...]` YAML for demo servers.
pub fn backend_list(servers: &[DemoServer]) -> String {
    let items: Vec<String> = servers
        .iter()
        .map(|s| format!("{{ addr: \"{}\" }}", s.addr))
        .collect();
    format!("[{}]", items.join(", "))
}

/// A running `switchyard run`; killed when dropped.
pub struct Proxy {
    child: Child,
    pub dir: tempfile::TempDir,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    /// The address `{TCP}` stood for.
    pub tcp: SocketAddr,
    /// The placeholders the config used: only those are waited for.
    waits: Vec<SocketAddr>,
}

impl Proxy {
    /// Starts switchyard on `config`, in which `{HTTP}`, `{ADMIN}` and `{TCP}`
    /// are replaced by fresh loopback addresses. Waits until those used accept.
    pub fn start(config: &str) -> Proxy {
        Self::start_with_env(config, &[])
    }

    /// As [`Proxy::start`], with extra environment variables for switchyard.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Proxy {
        Self::start_wrapped(config, env, &[])
    }

    /// As [`Proxy::start_with_env`], run through `wrapper` (a command and
    /// its arguments that end by running the rest, like `prlimit ... --`).
    pub fn start_wrapped(config: &str, env: &[(&str, &str)], wrapper: &[&str]) -> Proxy {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let tcp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let waits = [("{HTTP}", http), ("{ADMIN}", admin), ("{TCP}", tcp)]
            .into_iter()
            .filter(|(k, _)| config.contains(k))
            .map(|(_, a)| a)
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let text = config
            .replace("{HTTP}", &http.to_string())
            .replace("{ADMIN}", &admin.to_string())
            .replace("{TCP}", &tcp.to_string())
            .replace("{DIR}", &dir.path().to_string_lossy());
        let conf = dir.path().join("switchyard.yaml");
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::File::create(dir.path().join("switchyard.log")).unwrap();
        let mut command = match wrapper.split_first() {
            None => Command::new(BIN),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
        };
        let child = command
            .args(["run", "-c"])
            .arg(&conf)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut p = Proxy {
            child,
            dir,
            http,
            admin,
            tcp,
            waits,
        };
        p.wait_ready();
        p
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("switchyard exited early ({status}):\n{}", self.log());
            }
            let up = |a| TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok();
            if self.waits.iter().all(|a| up(*a)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("switchyard did not start listening:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("switchyard.log")).unwrap_or_default()
    }

    /// The switchyard process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn get(&self, host: &str, target: &str) -> Response {
        get(self.http, host, target)
    }

    pub fn metrics(&self) -> String {
        get(self.admin, "admin", "/metrics").body
    }

    /// The value of one metric sample, e.g. `switchyard_upstream_retries_total{upstream="a"}`.
    /// Labels are matched as a set, in any order.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric_value(&self.metrics(), name, labels)
    }

    /// Requests the proxy counts in flight on `backend` of `upstream` now
    /// (`switchyard_backend_inflight`, read live at each scrape). A request's
    /// count is released when the proxy has finished with it, just *after*
    /// its client has the whole response: a client that sends its next
    /// request at once can still find the previous one counted.
    pub fn inflight(&self, upstream: &str, backend: &DemoServer) -> f64 {
        let addr = backend.addr.to_string();
        let labels = [("upstream", upstream), ("backend", addr.as_str())];
        self.metric("switchyard_backend_inflight", &labels)
            .unwrap_or_else(|| panic!("no switchyard_backend_inflight for {upstream}/{addr}"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = match series.find('{') {
                Some(i) => (&series[..i], &series[i..]),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            let count = rest.matches("=\"").count();
            (all && count == labels.len())
                .then(|| value.parse().ok())
                .flatten()
        })
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Which demo backend answered.
    pub fn backend(&self) -> Option<&str> {
        self.line_value("backend: ")
    }

    /// The target the backend saw.
    pub fn target(&self) -> Option<&str> {
        self.line_value("target: ")
    }

    /// A request header as the backend received it (lower-case name).
    pub fn seen_header(&self, name: &str) -> Option<&str> {
        self.line_value(&format!("header {name}: "))
    }

    pub fn seen_headers(&self, name: &str) -> Vec<&str> {
        let prefix = format!("header {name}: ");
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    fn line_value(&self, prefix: &str) -> Option<&str> {
        self.body.lines().find_map(|l| l.strip_prefix(prefix))
    }
}

pub fn get(addr: SocketAddr, host: &str, target: &str) -> Response {
    send(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// One keep-alive `GET /cap` on `conn`: it is open and answered 200 (the
/// overload tests' probe of a connection switchyard accepted).
pub fn served_keep_alive(conn: &mut BufReader<TcpStream>) {
    conn.get_mut()
        .write_all(b"GET /cap HTTP/1.1\r\nHost: cap.test\r\n\r\n")
        .unwrap();
    let resp = read_response(conn).expect("a response");
    assert_eq!(resp.status, 200);
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn send(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(raw).unwrap();
    read_response(&mut BufReader::new(s)).expect("a response")
}

/// Reads one response (Content-Length, chunked, or until close; an
/// interim 1xx is returned as a response of its own).
pub fn read_response<R: Read>(r: &mut BufReader<R>) -> Option<Response> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Response {
        status,
        headers,
        body: String::new(),
    };
    // An interim response (1xx) is a head alone; the final one follows.
    if (100..200).contains(&status) {
        return Some(resp);
    }
    let mut body = Vec::new();
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let digits = size.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(digits, 16).ok()?;
            if n == 0 {
                // Trailer lines, up to the blank line.
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).ok()? == 0 || line.trim().is_empty() {
                        break;
                    }
                    let (k, v) = line.trim_end().split_once(':')?;
                    resp.headers
                        .push((k.trim().to_string(), v.trim().to_string()));
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = resp.header("content-length") {
        let mut b = vec![0; len.parse().ok()?];
        r.read_exact(&mut b).ok()?;
        body = b;
    } else if status != 204 && status != 304 {
        r.read_to_end(&mut body).ok()?;
    }
    resp.body = String::from_utf8_lossy(&body).into_owned();
    Some(resp)
}

/// Runs `switchyard check -c FILE`; returns (exit code, stdout, stderr).
pub fn check(file: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs curl with `args` (bounded by `--max-time 10`); returns (success,
/// stdout, stderr).
pub fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed by scripts/install-deps.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
