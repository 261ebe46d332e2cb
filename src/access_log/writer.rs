//! The access log's writer: a Pingora background service that owns the file.
//!
//! It takes lines from the queue in batches, writes them through a buffer and
//! flushes when the queue is empty, so a line reaches the file within one
//! batch of being logged and every `write(2)` holds whole lines (two processes
//! appending during an upgrade never interleave inside a line). SIGUSR1
//! flushes and reopens the configured path, for rotation by renaming.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Lines written per batch before the writer looks at signals again.
const BATCH: usize = 1024;
const BUFFER: usize = 64 * 1024;

pub struct Writer {
    /// Taken once by `start`.
    parts: Mutex<Option<(Sink, mpsc::Receiver<String>)>>,
}

impl Writer {
    pub(super) fn new(path: PathBuf, file: File, rx: mpsc::Receiver<String>) -> Self {
        let sink = Sink {
            path,
            out: BufWriter::with_capacity(BUFFER, file),
            last_error: None,
        };
        Self {
            parts: Mutex::new(Some((sink, rx))),
        }
    }
}

#[async_trait]
impl BackgroundService for Writer {
    async fn start(&self, _shutdown: ShutdownWatch) {
        // Shutdown is not a reason to stop: requests finishing during the
        // grace period still log. The runtime ends this task at exit.
        let parts = self.parts.lock().map(|mut p| p.take()).ok().flatten();
        let Some((mut sink, mut rx)) = parts else {
            return;
        };
        let mut reopen = match signal(SignalKind::user_defined1()) {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("access log: cannot listen for SIGUSR1, rotation will not reopen: {e}");
                None
            }
        };
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    sink.write(&batch);
                    batch.clear();
                    if rx.is_empty() {
                        sink.flush();
                    }
                }
                Some(()) = async {
                    match reopen.as_mut() {
                        Some(s) => s.recv().await,
                        None => std::future::pending().await,
                    }
                } => sink.reopen(),
            }
        }
        sink.flush();
    }
}

/// The open file and how to reopen it.
pub(super) struct Sink {
    path: PathBuf,
    out: BufWriter<File>,
    last_error: Option<Instant>,
}

impl Sink {
    fn write(&mut self, lines: &[String]) {
        for line in lines {
            let r = self
                .out
                .write_all(line.as_bytes())
                .and_then(|_| self.out.write_all(b"\n"));
            if let Err(e) = r {
                self.failed("write", &e);
                return;
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            self.failed("write", &e);
        }
    }

    /// Flushes to the old file, then appends to whatever is at the path now.
    fn reopen(&mut self) {
        self.flush();
        match super::open_append(&self.path) {
            Ok(f) => {
                self.out = BufWriter::with_capacity(BUFFER, f);
                log::info!("access log: reopened {}", self.path.display());
            }
            Err(e) => self.failed("reopen", &e),
        }
    }

    /// Logs an I/O error at most once a minute (a full disk fails every line).
    fn failed(&mut self, what: &str, e: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_error
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
        {
            log::error!("access log: cannot {what} {}: {e}", self.path.display());
            self.last_error = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_after_a_rename_writes_to_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let file = super::super::open_append(&path).unwrap();
        let (_tx, rx) = mpsc::channel(1);
        let writer = Writer::new(path.clone(), file, rx);
        let (mut sink, _rx) = writer.parts.lock().unwrap().take().unwrap();

        sink.write(&["one".to_string()]);
        sink.flush();
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        sink.write(&["two".to_string()]);
        sink.reopen();
        sink.write(&["three".to_string()]);
        sink.flush();

        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
