//! The processes under test: an NGINX backend pair, and switchyard, NGINX
//! and HAProxy as proxies in front of it, each started in its own process
//! group (so stopping it stops its workers) and optionally pinned with
//! `taskset`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running process group; killed when dropped.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
}

impl Running {
    /// Resident memory of the whole group (master and workers), KiB.
    pub fn rss_kib(&self) -> u64 {
        crate::host::group_pids(self.child.id() as i32)
            .into_iter()
            .map(|pid| {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// The process group's id (its leader's pid).
    #[allow(dead_code)] // used by benches/edge_peers
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: signals the process group this bench started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts `program args` in a new process group, on `cpus` if given, and
/// waits until `addr` answers HTTP.
fn spawn(program: &str, args: &[&str], cpus: Option<&str>, addr: SocketAddr) -> Running {
    let running = launch(program, args, cpus, addr);
    wait_answering(addr);
    running
}

/// [`spawn`] without the wait, for listeners that do not speak plain HTTP.
pub fn launch(program: &str, args: &[&str], cpus: Option<&str>, addr: SocketAddr) -> Running {
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus, program]);
            c
        }
        None => Command::new(program),
    };
    let child = cmd
        .args(args)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    Running { child, addr }
}

fn wait_answering(addr: SocketAddr) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = TcpStream::connect(addr).ok().and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head).ok()?;
            head.ends_with(b"200").then_some(())
        });
        if ok.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} never answered 200");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many workers and where.
#[derive(Clone, Copy)]
pub struct Placement<'a> {
    pub workers: usize,
    pub cpus: Option<&'a str>,
}

/// Two NGINX servers in one process answering a short text: the backends.
pub fn backends(dir: &Path, cpus: Option<&str>) -> (Running, [SocketAddr; 2]) {
    let (a, b) = (free_addr(), free_addr());
    let conf = dir.join("backends.conf");
    let server = |addr: SocketAddr| {
        format!(
            "  server {{ listen {addr}; location / {{ return 200 \"hello from {addr}\\n\"; }} }}\n"
        )
    };
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {d}/backends.pid;\nerror_log {d}/backends.err;\nworker_rlimit_nofile 16384;\nevents {{ worker_connections 8192; }}\nhttp {{\n  access_log off;\n  keepalive_requests 1000000;\n{}{}}}\n",
            server(a),
            server(b),
            d = dir.display()
        ),
    )
    .unwrap();
    let running = spawn("nginx", &nginx_args(dir, &conf), cpus, a);
    wait_answering(b);
    (running, [a, b])
}

pub fn nginx_args<'a>(dir: &'a Path, conf: &'a Path) -> Vec<&'a str> {
    vec![
        "-p",
        dir.to_str().unwrap(),
        "-c",
        conf.to_str().unwrap(),
        "-e",
        "stderr",
    ]
}

/// What a switchyard under test has configured beyond a plain route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    /// The route also has request ids, a header rule and an allow-list
    /// (what a route pays for them).
    Policies,
    /// Outlier detection on the upstream, connection caps on the server and
    /// the listener, `max_conns` on the backends (what the guards of a
    /// busy edge cost a request when nothing trips them).
    Guards,
}

pub fn switchyard(
    dir: &Path,
    backends: [SocketAddr; 2],
    at: Placement,
    variant: Variant,
) -> Running {
    let listen = free_addr();
    let name = match variant {
        Variant::Plain => "sy",
        Variant::Policies => "sy-policies",
        Variant::Guards => "sy-guards",
    };
    let conf = dir.join(format!("{name}.yaml"));
    let (server, route, listener, upstream, backend) = match variant {
        Variant::Plain => ("", "", "", "", ""),
        Variant::Policies => (
            "  request_id: { header: X-Request-Id }\n",
            ", request_headers: { set: { X-Env: prod } }, allow: [127.0.0.0/8]",
            "",
            "",
            "",
        ),
        Variant::Guards => (
            "  max_connections: 8000\n",
            "",
            ", max_connections: 5000",
            "    outlier_detection: { consecutive_5xx: 5, consecutive_gateway_failures: 3, latency_factor: 3, interval: 10s }\n",
            ", max_conns: 1000",
        ),
    };
    std::fs::write(
        &conf,
        format!(
            "server:\n  threads: {}\n  pid_file: {d}/{name}.pid\n  upgrade_sock: {d}/{name}.sock\n{server}listeners:\n  web: {{ listen: \"{listen}\", routes: [{{ upstream: b{route} }}]{listener} }}\nupstreams:\n  b:\n    policy: round_robin\n{upstream}    backends: [{{ addr: \"{}\"{backend} }}, {{ addr: \"{}\"{backend} }}]\n",
            at.workers,
            backends[0],
            backends[1],
            d = dir.display()
        ),
    )
    .unwrap();
    let bin = crate::host::switchyard_bin();
    spawn(
        &bin,
        &["run", "-c", conf.to_str().unwrap()],
        at.cpus,
        listen,
    )
}

pub fn nginx(dir: &Path, backends: [SocketAddr; 2], at: Placement) -> Running {
    let listen = free_addr();
    let conf = dir.join("nginx-proxy.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes {};\ndaemon off;\npid {d}/nginx-proxy.pid;\nerror_log {d}/nginx-proxy.err;\nworker_rlimit_nofile 19000;\nevents {{ worker_connections 18000; }}\nhttp {{\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 300s;\n  upstream b {{ server {}; server {}; keepalive 128; keepalive_requests 1000000; }}\n  server {{\n    listen {listen};\n    location / {{ proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}\n}}\n",
            at.workers,
            backends[0],
            backends[1],
            d = dir.display()
        ),
    )
    .unwrap();
    spawn("nginx", &nginx_args(dir, &conf), at.cpus, listen)
}

pub fn haproxy(dir: &Path, backends: [SocketAddr; 2], at: Placement) -> Running {
    let listen = free_addr();
    let conf = dir.join("haproxy.cfg");
    std::fs::write(
        &conf,
        format!(
            "global\n  nbthread {}\n  maxconn 9900\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 300s\n  timeout server 60s\n  timeout http-keep-alive 300s\nfrontend web\n  bind {listen}\n  default_backend b\nbackend b\n  balance roundrobin\n  server b1 {}\n  server b2 {}\n",
            at.workers, backends[0], backends[1]
        ),
    )
    .unwrap();
    spawn(
        "haproxy",
        &["-f", conf.to_str().unwrap(), "-db"],
        at.cpus,
        listen,
    )
}
