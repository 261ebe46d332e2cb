//! This machine, as the proxy benches need it: settings from the
//! environment, tools on the PATH, their versions, the fd limit, and the
//! processes of a process group.

use std::process::Command;

/// `name` from the environment, parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether `tool` is on the PATH.
pub fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The first line a command prints (stdout or stderr): a version banner.
pub fn first_line(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| {
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            all.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

/// Raises this process's open-file limit to its hard limit (processes
/// started afterwards inherit it) and returns it.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on this process.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// The pids of every process in process group `pgid`.
pub fn group_pids(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        // SAFETY: getpgid only reads the process table.
        .filter(|pid| unsafe { libc::getpgid(*pid) } == pgid)
        .collect()
}

/// The switchyard binary under test: `BENCH_SWITCHYARD` (another build, e.g.
/// the one before a change, measured with the same peers and load), else
/// this build's.
pub fn switchyard_bin() -> String {
    std::env::var("BENCH_SWITCHYARD")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_switchyard").to_string())
}
