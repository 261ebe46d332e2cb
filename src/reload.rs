//! `switchyard reload -c FILE`: make the running instance apply FILE again.
//!
//! FILE is validated here first (every problem printed, exit 1, nothing
//! sent). The running process is found through `server.pid_file` and sent
//! SIGHUP — the same reload as `kill -HUP` and `POST /reload`, and no token
//! needed: whoever may signal the process may reload it. The outcome is read
//! from the admin listener's `/status`: `reloads` grows once the process has
//! tried, and `last_reload` says whether it applied the file (exit 0) or
//! refused it (exit 1, its message printed: the problems it found, or the
//! listener change that needs `switchyard upgrade`). FILE must be the file
//! the process was started with (`/status` `config_file`): a reload cannot
//! switch files. No process, or none
//! answering within 30 s: exit 2. Without an `admin` listener the outcome
//! cannot be read back: the signal is sent and the log has the result.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::upgrade::{running_pid, signal, status};

/// Why a reload did not apply: [`ReloadError::exit_code`] says how to exit.
#[derive(Debug)]
pub enum ReloadError {
    /// The running process refused the file (exit 1).
    Refused(String),
    /// No running process answered (exit 2).
    NoProcess(String),
}

impl ReloadError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ReloadError::Refused(_) => 1,
            ReloadError::NoProcess(_) => 2,
        }
    }
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Refused(m) | ReloadError::NoProcess(m) => f.write_str(m),
        }
    }
}

/// How long the process gets to report its reload.
const WAIT: Duration = Duration::from_secs(30);

/// Signals the instance `config` names (its `pid_file`) to reload and waits
/// for the outcome on its admin listener. `Ok` with the process's summary.
pub fn reload(file: &Path, config: &Config) -> Result<String, ReloadError> {
    let pid =
        running_pid(&config.server.pid_file).map_err(|e| ReloadError::NoProcess(e.to_string()))?;
    let Some(admin) = config.admin.as_ref().map(|a| a.listen) else {
        signal(pid, libc::SIGHUP)
            .map_err(|e| ReloadError::NoProcess(format!("cannot signal pid {pid}: {e}")))?;
        return Ok(format!(
            "sent SIGHUP to pid {pid}; without an admin listener the outcome is in its log"
        ));
    };
    let count = |s: &serde_json::Value| s.get("reloads").and_then(|n| n.as_u64());
    let answered = status(admin).ok_or_else(|| {
        ReloadError::NoProcess(format!(
            "pid {pid} does not answer on its admin listener {admin}"
        ))
    })?;
    let before = count(&answered).ok_or_else(|| {
        ReloadError::NoProcess(format!(
            "{admin} answers without a reload count: not a switchyard that reloads (use `switchyard upgrade`)"
        ))
    })?;
    // The process reads the file it was started with: FILE must be it, or
    // what was validated here is not what would be applied.
    let serves = answered["config_file"].as_str().unwrap_or("");
    let given = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    if !serves.is_empty() && Path::new(serves) != given {
        return Err(ReloadError::Refused(format!(
            "pid {pid} serves {serves}, not {}: a reload reads the file the process was started with; edit that one, or switch files with `switchyard upgrade`",
            given.display()
        )));
    }
    signal(pid, libc::SIGHUP)
        .map_err(|e| ReloadError::NoProcess(format!("cannot signal pid {pid}: {e}")))?;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let Some(now) = status(admin) else {
            continue;
        };
        if count(&now).is_none_or(|n| n <= before) {
            continue;
        }
        let last = &now["last_reload"];
        let message = last["message"].as_str().unwrap_or("").to_string();
        return match last["result"].as_str() {
            Some("ok") => Ok(message),
            _ => Err(ReloadError::Refused(message)),
        };
    }
    Err(ReloadError::NoProcess(format!(
        "pid {pid} did not report a reload within {}s",
        WAIT.as_secs()
    )))
}
