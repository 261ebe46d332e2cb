//! The access log (`server.access_log`): one JSON line per request, written
//! off the request path.
//!
//! ```text
//! proxy `logging` phase ── format the line ── try_send ──▶ bounded channel
//!                                   (full: drop it, count it)      │
//! background service "access log" ◀────────────────────────────────┘
//!   writes through a 64 KiB buffer, flushes whenever the channel runs dry;
//!   SIGUSR1: flush, reopen the path (rotation)
//! ```
//!
//! The request path never waits for the disk: it only formats and hands over.
//! Memory is bounded by [`QUEUE_LINES`]; lines that do not fit are dropped
//! and counted in `switchyard_access_log_dropped_total`. The writer runs as a
//! Pingora background service, so it lives in the daemon after the fork and
//! keeps writing through the grace period while in-flight requests finish.
//!
//! Line fields, in order: `time` (request start, RFC 3339 UTC, milliseconds),
//! `client_ip`, `method`, `host`, `path` (path and query as routed), `status`
//! (499: the client went away first), `listener`, `route`, `upstream`,
//! `backend` (the last one tried; `null` when none was), `duration_ms`,
//! `bytes_sent` (response body bytes sent to the client), `retries`, and
//! `request_id` when `server.request_id` is set.

mod time;
mod writer;

pub use time::rfc3339_millis;
pub use writer::Writer;

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus::IntCounter;
use serde::Serialize;
use tokio::sync::mpsc;

/// Lines waiting for the writer at most; more are dropped (and counted).
pub const QUEUE_LINES: usize = 16 * 1024;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub client_ip: Option<IpAddr>,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub listener: &'a str,
    pub route: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub backend: Option<&'a str>,
    pub duration_ms: f64,
    pub bytes_sent: usize,
    pub retries: usize,
    /// The request id (`server.request_id`), when requests get one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
}

/// The request side of the log: cheap to share, never blocks.
pub struct AccessLog {
    lines: mpsc::Sender<String>,
    dropped: IntCounter,
}

impl AccessLog {
    /// Opens (appends to, creating) `path` now, so a bad path fails at start;
    /// returns the handle for the proxy and the writer service to add to the
    /// server. `dropped` counts lines lost to a full queue.
    pub fn open(path: &Path, dropped: IntCounter) -> std::io::Result<(Arc<Self>, Writer)> {
        // Absolute, so a reopen after the daemon's chdir finds the same file.
        let path: PathBuf = std::path::absolute(path)?;
        let file = open_append(&path)?;
        let (tx, rx) = mpsc::channel(QUEUE_LINES);
        let log = Arc::new(Self { lines: tx, dropped });
        Ok((log, Writer::new(path, file, rx)))
    }

    /// Queues the line for `entry`, or drops and counts it if the queue is full.
    pub fn record(&self, entry: &Entry<'_>) {
        let line = match serde_json::to_string(entry) {
            Ok(l) => l,
            Err(e) => {
                log::warn!("access log: cannot format a line: {e}");
                return;
            }
        };
        if self.lines.try_send(line).is_err() {
            self.dropped.inc();
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Keeps a SIGUSR1 (the reopen signal) from killing the process before the
/// writer listens for it, or when no access log is configured: its default
/// action is to terminate. Call once at start, before any thread exists.
pub fn ignore_reopen_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions;
    // the writer's tokio listener replaces it later with its own handler.
    unsafe {
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_every_field() {
        let e = Entry {
            time: "2026-01-02T03:04:05.006Z".into(),
            client_ip: Some("10.0.0.1".parse().unwrap()),
            method: "GET",
            host: "a.example",
            path: "/x?y=\"z\"",
            status: 502,
            listener: "web",
            route: Some("api"),
            upstream: Some("api"),
            backend: None,
            duration_ms: 1.5,
            bytes_sent: 12,
            retries: 2,
            request_id: Some("abc"),
        };
        let line = serde_json::to_string(&e).unwrap();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["client_ip"], "10.0.0.1");
        assert_eq!(v["path"], "/x?y=\"z\"");
        assert_eq!(v["backend"], serde_json::Value::Null);
        assert_eq!(v["retries"], 2);
        assert_eq!(v["request_id"], "abc");
        assert_eq!(v.as_object().unwrap().len(), 14);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = IntCounter::new("d", "d").unwrap();
        let (log, _writer) = AccessLog::open(&dir.path().join("a.log"), dropped.clone()).unwrap();
        let e = Entry {
            time: String::new(),
            client_ip: None,
            method: "GET",
            host: "",
            path: "/",
            status: 200,
            listener: "l",
            route: None,
            upstream: None,
            backend: None,
            duration_ms: 0.0,
            bytes_sent: 0,
            retries: 0,
            request_id: None,
        };
        // Nobody writes: the queue fills, then every further line is counted.
        for _ in 0..QUEUE_LINES + 10 {
            log.record(&e);
        }
        assert_eq!(dropped.get(), 10);
    }
}
