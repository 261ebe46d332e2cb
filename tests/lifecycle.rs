//! Process lifecycle through the real binary: daemon mode with a pid file,
//! graceful stop on SIGTERM, and `-u` taking over the listeners of a running
//! instance on SIGQUIT without failing a request.

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Kills a daemon by pid if the test ends early, so no process outlives it.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn config(
    dir: &std::path::Path,
    http: u16,
    admin: u16,
    backends: &[DemoServer],
) -> std::path::PathBuf {
    let d = dir.display();
    let conf = dir.join("switchyard.yaml");
    std::fs::write(
        &conf,
        format!(
            "server: {{ pid_file: {d}/sy.pid, upgrade_sock: {d}/upgrade.sock, error_log: {d}/error.log, grace_period: 1s, shutdown_timeout: 1s }}\nadmin: {{ listen: \"127.0.0.1:{admin}\" }}\nlisteners:\n  web: {{ listen: \"127.0.0.1:{http}\", routes: [{{ upstream: u }}] }}\nupstreams:\n  u: {{ backends: {} }}\n",
            backend_list(backends)
        ),
    )
    .unwrap();
    conf
}

#[test]
fn daemon_mode_writes_the_pid_file_and_stops_on_sigterm() {
    let b = backends("d", 1);
    let dir = tempfile::tempdir().unwrap();
    let (http, admin) = (free_port(), free_port());
    let conf = config(dir.path(), http, admin, &b);
    let status = Command::new(BIN)
        .args(["run", "-d", "-c"])
        .arg(&conf)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the foreground process returns once daemonized"
    );
    let pid_file = dir.path().join("sy.pid");
    let read_pid = || {
        std::fs::read_to_string(&pid_file)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    };
    assert!(
        wait_until(Duration::from_secs(10), || read_pid().is_some()),
        "no pid file"
    );
    let pid = read_pid().unwrap();
    let _guard = KillOnDrop(pid);
    let addr = format!("127.0.0.1:{http}").parse().unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_ok()
    }));
    assert_eq!(get(addr, "x", "/").backend(), Some("d-1"));
    signal(pid, "-TERM");
    assert!(
        wait_until(Duration::from_secs(15), || !alive(pid)),
        "daemon did not stop on SIGTERM"
    );
}

#[test]
fn upgrade_hands_listeners_over_without_failing_a_request() {
    let b = backends("u", 1);
    let dir = tempfile::tempdir().unwrap();
    let (http, admin) = (free_port(), free_port());
    let conf = config(dir.path(), http, admin, &b);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();

    let mut old = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_ok()
    }));

    // A client sends a bounded stream of requests on new connections throughout the switch.
    let client = std::thread::spawn(move || {
        let mut statuses = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(12);
        while statuses.len() < 400 && Instant::now() < deadline {
            let status = std::panic::catch_unwind(|| get(addr, "x", "/").status).unwrap_or(0);
            statuses.push(status);
            std::thread::sleep(Duration::from_millis(10));
        }
        statuses
    });

    std::thread::sleep(Duration::from_millis(300));
    let mut new = Command::new(BIN)
        .args(["run", "-u", "-c"])
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(old.id(), "-QUIT");

    // The old process hands over, drains and exits; the new one keeps serving.
    let old_exited = wait_until(Duration::from_secs(20), || {
        old.try_wait().unwrap().is_some()
    });
    let statuses = client.join().unwrap();
    let after = get(addr, "x", "/");
    let _ = old.kill();
    let _ = old.wait();
    let new_alive = new.try_wait().unwrap().is_none();
    let _ = new.kill();
    let _ = new.wait();

    assert!(old_exited, "old instance did not exit after SIGQUIT");
    assert!(new_alive, "new instance died");
    assert_eq!(after.status, 200);
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(statuses.len() >= 50, "too few requests: {}", statuses.len());
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during the upgrade",
        statuses.len()
    );
}
