//! `switchyard upgrade -c FILE`: replace the running instance with one that
//! serves FILE, with no refused connection and no failed request.
//!
//! Pingora hands listening sockets over only when the old process gets
//! SIGQUIT, and the new process serves only once it holds them, so "start the
//! new one, wait until it serves, then SIGQUIT the old one" cannot be done
//! literally. What each step waits for instead:
//!
//! 1. FILE was validated by the caller (`check`); nothing is touched yet.
//! 2. The old pid is read from `server.pid_file` *before* anything starts (the
//!    new daemon overwrites that file), and must be a live switchyard process.
//! 3. `run -u -d -c FILE` (this same binary) is started. It builds every
//!    service first, so a bad certificate or sticky key fails here, then binds
//!    `server.upgrade_sock` and waits for the sockets. A stale socket file was
//!    removed before the start, so the file appearing means the new process
//!    got that far. If it exits first: exit 2, the old instance untouched.
//! 4. SIGQUIT to the old pid. It sends its listening sockets, keeps accepting
//!    on them for 5 s (Pingora's `CLOSE_TIMEOUT`) while the new process
//!    starts its services on the same sockets, then stops accepting and
//!    finishes in-flight requests within `grace_period`. The kernel queues
//!    connections on the shared sockets throughout: none is refused.
//! 5. The new process's foreground half exits 0 once it holds the sockets and
//!    has forked the daemon; the daemon writes its pid to `pid_file`.
//! 6. Ready means the new pid answers: the admin listener's `GET /status`
//!    returns it. Both processes accept on the shared admin socket for those
//!    5 s, so an answer from the new pid proves its services run. Without an
//!    admin listener the check is weaker: the new pid is still alive a second
//!    after writing its pid file.
//!
//! Linux only, as is Pingora's socket handover. `pid_file` and `upgrade_sock`
//! must be the ones the running instance uses.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Config;

/// How long the new process may take to reach the socket handover.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Pingora retries the handover 5 times, 1 s apart, on each side.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(20);
/// From the daemon's pid file to an answer from the new pid.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// Why an upgrade did not complete; the message says what state it left.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UpgradeError(String);

/// Replaces the instance whose pid is in `config.server.pid_file` with
/// `run -u -d -c conf_file`. Returns (old pid, new pid) once the new one serves.
pub fn upgrade(conf_file: &Path, config: &Config) -> Result<(u32, u32), UpgradeError> {
    let fail = |m: String| Err(UpgradeError(m));
    let pid_file = &config.server.pid_file;
    let sock = &config.server.upgrade_sock;
    let old = running_pid(pid_file)?;
    remove_stale_socket(sock)?;

    let exe = std::env::current_exe()
        .map_err(|e| UpgradeError(format!("cannot find this executable: {e}")))?;
    let mut child = Command::new(exe)
        .args(["run", "-u", "-d", "-c"])
        .arg(conf_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| UpgradeError(format!("cannot start the new instance: {e}")))?;

    let untouched = format!("the running instance (pid {old}) was not signalled and still serves");
    match wait_for(START_TIMEOUT, || {
        if is_socket(sock) {
            return Some(Ok(()));
        }
        exited(&mut child).map(Err)
    }) {
        Some(Ok(())) => {}
        Some(Err(status)) => {
            return fail(format!(
                "the new instance exited before taking over ({status}); {untouched}"
            ))
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return fail(format!(
                "the new instance did not reach the handover on {} within {START_TIMEOUT:?}; {untouched}",
                sock.display()
            ));
        }
    }

    signal(old, libc::SIGQUIT)
        .map_err(|e| UpgradeError(format!("cannot send SIGQUIT to pid {old}: {e}")))?;
    let draining = format!(
        "the old instance (pid {old}) got SIGQUIT and stops after its grace period: check server.error_log, then start one with `switchyard run -d`"
    );

    match wait_for(HANDOVER_TIMEOUT, || exited(&mut child)) {
        Some(s) if s.success() => {}
        Some(s) => {
            return fail(format!(
                "the new instance failed to take over the listeners ({s}); {draining}"
            ))
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return fail(format!(
                "the new instance did not take over the listeners within {HANDOVER_TIMEOUT:?}; {draining}"
            ));
        }
    }

    let Some(new) = wait_for(READY_TIMEOUT, || {
        read_pid(pid_file).filter(|p| *p != old && alive(*p))
    }) else {
        return fail(format!(
            "no new pid in {} within {READY_TIMEOUT:?}; {draining}",
            pid_file.display()
        ));
    };
    let ready = match &config.admin {
        Some(admin) => wait_for(READY_TIMEOUT, || {
            (!alive(new) || status_pid(admin.listen) == Some(new)).then_some(())
        })
        .is_some(),
        None => {
            std::thread::sleep(Duration::from_secs(1));
            true
        }
    };
    if !ready || !alive(new) {
        return fail(format!(
            "the new instance (pid {new}) does not answer; {draining}"
        ));
    }
    Ok((old, new))
}

/// The pid in `pid_file`, if it is a live switchyard process.
pub(crate) fn running_pid(pid_file: &Path) -> Result<u32, UpgradeError> {
    let start_one = "start one with `switchyard run -d`";
    let pid = read_pid(pid_file).ok_or_else(|| {
        UpgradeError(format!(
            "no running instance: no pid in {} (server.pid_file; written in daemon mode); {start_one}",
            pid_file.display()
        ))
    })?;
    if !alive(pid) {
        return Err(UpgradeError(format!(
            "no running instance: pid {pid} from {} is not running; {start_one}",
            pid_file.display()
        )));
    }
    // A stale pid file may name an unrelated process now: never SIGQUIT it.
    if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        let comm = comm.trim();
        if !comm.starts_with("switchyard") && !is_own_name(comm) {
            return Err(UpgradeError(format!(
                "pid {pid} from {} is `{comm}`, not switchyard: refusing to signal it",
                pid_file.display()
            )));
        }
    }
    Ok(pid)
}

/// Whether `comm` (at most 15 bytes) is this executable's file name.
fn is_own_name(comm: &str) -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .is_some_and(|n| n.as_bytes().starts_with(comm.as_bytes()) && !comm.is_empty())
}

fn remove_stale_socket(sock: &Path) -> Result<(), UpgradeError> {
    match std::fs::symlink_metadata(sock) {
        Err(_) => Ok(()),
        Ok(_) if is_socket(sock) => std::fs::remove_file(sock)
            .map_err(|e| UpgradeError(format!("cannot remove the stale {}: {e}", sock.display()))),
        Ok(_) => Err(UpgradeError(format!(
            "server.upgrade_sock {} exists and is not a socket",
            sock.display()
        ))),
    }
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

fn read_pid(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    signal(pid, 0).is_ok()
}

pub(crate) fn signal(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid out of range"))?;
    if pid <= 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a process id",
        ));
    }
    // SAFETY: kill(2) takes any pid and signal number; bad ones are errors.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn exited(child: &mut Child) -> Option<std::process::ExitStatus> {
    child.try_wait().ok().flatten()
}

fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// The `pid` that the admin listener's `GET /status` reports, if it answers.
fn status_pid(admin: SocketAddr) -> Option<u32> {
    status(admin)?
        .get("pid")?
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
}

/// The admin listener's `GET /status` JSON, if it answers.
pub(crate) fn status(admin: SocketAddr) -> Option<serde_json::Value> {
    let addr = match admin.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), admin.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), admin.port())
        }
        _ => admin,
    };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /status HTTP/1.1\r\nHost: switchyard\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}
