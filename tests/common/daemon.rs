//! Daemonized instances for the upgrade and operations tests: `run -d` and
//! `upgrade` through the real binary, pids from the pid file, and a guard that
//! kills every instance it saw (and whatever the pid file names) when the test
//! ends, pass or fail. Plus clients that never panic, for counting failures.
#![allow(dead_code)]

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{free_port, read_response, Response, BIN};

pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn alive(pid: u32) -> bool {
    signal(pid, "-0")
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Daemons sharing one pid file, upgrade socket and error log in a temp dir.
pub struct Daemons {
    pub dir: tempfile::TempDir,
    pub admin: SocketAddr,
    /// Seconds of `grace_period`.
    pub grace: u32,
    seen: Mutex<Vec<u32>>,
}

impl Daemons {
    pub fn new(grace: u32) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            admin: loopback(free_port()),
            grace,
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join("sy.pid")
    }

    /// Lines of the access log that all instances share.
    pub fn access_lines(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Writes `name` with the shared `server:` and `admin:` sections and the
    /// given `listeners:`/`upstreams:` text.
    pub fn conf(&self, name: &str, rest: &str) -> PathBuf {
        let d = self.dir.path().display();
        let text = format!(
            "server: {{ threads: 2, pid_file: {d}/sy.pid, upgrade_sock: {d}/upgrade.sock, error_log: {d}/error.log, access_log: {d}/access.log, grace_period: {}s, shutdown_timeout: 1s }}\nadmin: {{ listen: \"{}\" }}\n{rest}",
            self.grace, self.admin
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        self.seen.lock().unwrap().push(pid);
        Some(pid)
    }

    /// `run -d -c conf`; returns the daemon's pid once its admin answers.
    pub fn start(&self, conf: &std::path::Path) -> u32 {
        let _ = std::fs::remove_file(self.pid_file());
        let ok = Command::new(BIN)
            .args(["run", "-d", "-c"])
            .arg(conf)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "run -d failed:\n{}", self.error_log());
        let mut pid = None;
        let up = wait_until(Duration::from_secs(15), || {
            pid = self.pid();
            pid.is_some_and(|p| status_pid(self.admin) == Some(p))
        });
        assert!(up, "daemon did not come up:\n{}", self.error_log());
        pid.unwrap()
    }

    /// `switchyard upgrade -c conf`: (exit code, stdout + stderr).
    pub fn upgrade(&self, conf: &std::path::Path) -> (i32, String) {
        let out_path = self.dir.path().join("upgrade.out");
        let out = std::fs::File::create(&out_path).unwrap();
        let status = Command::new(BIN)
            .args(["upgrade", "-c"])
            .arg(conf)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        self.pid();
        let text = std::fs::read_to_string(out_path).unwrap_or_default();
        (status.code().unwrap_or(-1), text)
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        self.pid();
        for pid in self.seen.lock().unwrap().iter() {
            // A test may write someone else's pid into the pid file.
            let ours = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("switchyard"));
            if ours && alive(*pid) {
                signal(*pid, "-KILL");
            }
        }
    }
}

/// The `pid` field of the admin's `GET /status`.
pub fn status_pid(admin: SocketAddr) -> Option<u32> {
    let r = try_get(admin, "admin", "/status").ok()?;
    let json: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    json["pid"].as_u64().map(|p| p as u32)
}

/// A GET on a fresh connection that reports failure instead of panicking.
pub fn try_get(addr: SocketAddr, host: &str, target: &str) -> Result<Response, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("write: {e}"))?;
    read_response(&mut BufReader::new(s)).ok_or_else(|| "no complete response".to_string())
}

/// What one request on a keep-alive connection came to.
#[derive(Debug)]
pub enum KeepAlive {
    /// A complete response; `close` when it said `Connection: close`.
    Answered { status: u16, close: bool },
    /// The server closed the reused connection before any byte of a response:
    /// a clean close between requests, which clients retry (RFC 9112 §9.3.1).
    ClosedBetween,
    /// The connection broke after part of a response, or a fresh one failed.
    Broken(String),
}

/// Counts bytes read, to tell "closed before answering" from "cut short".
struct Counting {
    inner: TcpStream,
    read: usize,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

/// An HTTP/1.1 client that keeps its connection alive until the server says
/// `Connection: close` or closes it, then opens a new one.
pub struct KeepAliveClient {
    addr: SocketAddr,
    conn: Option<BufReader<Counting>>,
    /// Requests answered on the current connection.
    reused: usize,
}

impl KeepAliveClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            conn: None,
            reused: 0,
        }
    }

    pub fn get(&mut self, target: &str) -> KeepAlive {
        if self.conn.is_none() {
            match TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
                    self.conn = Some(BufReader::new(Counting { inner: s, read: 0 }));
                    self.reused = 0;
                }
                Err(e) => return KeepAlive::Broken(format!("connect: {e}")),
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return KeepAlive::Broken("no connection".into());
        };
        let before = conn.get_ref().read;
        let req = format!("GET {target} HTTP/1.1\r\nHost: ka\r\n\r\n");
        let wrote = conn.get_mut().inner.write_all(req.as_bytes());
        let resp = wrote.ok().and_then(|_| read_response(conn));
        let got_bytes = conn.get_ref().read > before || !conn.buffer().is_empty();
        match resp {
            Some(r) => {
                let close = r
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                if close {
                    self.conn = None;
                } else {
                    self.reused += 1;
                }
                KeepAlive::Answered {
                    status: r.status,
                    close,
                }
            }
            None => {
                let reused = self.reused > 0;
                self.conn = None;
                if reused && !got_bytes {
                    KeepAlive::ClosedBetween
                } else {
                    KeepAlive::Broken(format!(
                        "response cut short (reused connection: {reused}, bytes received: {got_bytes})"
                    ))
                }
            }
        }
    }
}
