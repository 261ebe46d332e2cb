//! switchyard, NGINX and HAProxy as TLS-terminating proxies (ALPN h2 and
//! http/1.1) in front of the NGINX backend pair, each one worker pinned
//! where asked; the certificate they share; their CPU time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::h2load::H2load;
use crate::peers::{self, free_addr, Running};

/// One certificate for every proxy, as PEM files: ECDSA P-256, for
/// `localhost` and `127.0.0.1`.
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Certificate then key in one file, as HAProxy's `crt` wants it.
    pub combined: PathBuf,
}

pub fn make_cert(dir: &Path) -> Cert {
    let cert = dir.join("edge.crt");
    let key = dir.join("edge.key");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let combined = dir.join("edge.pem");
    let both = std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap();
    std::fs::write(&combined, both).unwrap();
    Cert {
        cert,
        key,
        combined,
    }
}

/// A client-side OpenSSL config that turns TLS 1.3 off, so h2load (which
/// has no option for it) negotiates TLS 1.2 with every proxy alike.
pub fn tls12_only_conf(dir: &Path) -> PathBuf {
    let path = dir.join("openssl-tls12.cnf");
    std::fs::write(
        &path,
        "openssl_conf = conf\n[conf]\nssl_conf = ssl\n[ssl]\nsystem_default = defaults\n[defaults]\nProtocol = -TLSv1.3\n",
    )
    .unwrap();
    path
}

pub fn start(
    name: &str,
    dir: &Path,
    cert: &Cert,
    backends: [SocketAddr; 2],
    cpus: &str,
) -> Running {
    let running = match name {
        "switchyard" => switchyard(dir, cert, backends, cpus),
        "nginx" => nginx(dir, cert, backends, cpus),
        _ => haproxy(dir, cert, backends, cpus),
    };
    wait_tls(running.addr);
    running
}

fn switchyard(dir: &Path, cert: &Cert, backends: [SocketAddr; 2], cpus: &str) -> Running {
    let listen = free_addr();
    let conf = dir.join("switchyard-tls.yaml");
    std::fs::write(
        &conf,
        format!(
            "server:\n  threads: 1\n  pid_file: {d}/sy-tls.pid\n  upgrade_sock: {d}/sy-tls.sock\nlisteners:\n  web:\n    listen: \"{listen}\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: b }}]\nupstreams:\n  b:\n    policy: round_robin\n    backends: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}]\n",
            cert.cert.display(),
            cert.key.display(),
            backends[0],
            backends[1],
            d = dir.display()
        ),
    )
    .unwrap();
    let bin = crate::host::switchyard_bin();
    peers::launch(
        &bin,
        &["run", "-c", conf.to_str().unwrap()],
        Some(cpus),
        listen,
    )
}

/// NGINX 1.22: `ssl http2` on `listen` (the `http2` directive came in
/// 1.25.1), TLS 1.3 enabled explicitly (1.22's default `ssl_protocols`
/// stops at TLS 1.2), session cache and tickets left at their defaults.
fn nginx(dir: &Path, cert: &Cert, backends: [SocketAddr; 2], cpus: &str) -> Running {
    let listen = free_addr();
    let conf = dir.join("nginx-tls.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {d}/nginx-tls.pid;\nerror_log {d}/nginx-tls.err;\nworker_rlimit_nofile 19000;\nevents {{ worker_connections 18000; }}\nhttp {{\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 300s;\n  upstream b {{ server {}; server {}; keepalive 128; keepalive_requests 1000000; }}\n  server {{\n    listen {listen} ssl http2 backlog=4096;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    ssl_protocols TLSv1.2 TLSv1.3;\n    location / {{ proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}\n}}\n",
            backends[0],
            backends[1],
            cert.cert.display(),
            cert.key.display(),
            d = dir.display()
        ),
    )
    .unwrap();
    peers::launch("nginx", &peers::nginx_args(dir, &conf), Some(cpus), listen)
}

/// HAProxy 2.6, one thread; TLS settings at their defaults (TLS 1.2
/// minimum, session cache and tickets on).
fn haproxy(dir: &Path, cert: &Cert, backends: [SocketAddr; 2], cpus: &str) -> Running {
    let listen = free_addr();
    let conf = dir.join("haproxy-tls.cfg");
    std::fs::write(
        &conf,
        format!(
            "global\n  nbthread 1\n  maxconn 9000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 300s\n  timeout server 60s\n  timeout http-keep-alive 300s\nfrontend web\n  bind {listen} ssl crt {} alpn h2,http/1.1 backlog 4096\n  default_backend b\nbackend b\n  balance roundrobin\n  server b1 {}\n  server b2 {}\n",
            cert.combined.display(),
            backends[0],
            backends[1]
        ),
    )
    .unwrap();
    peers::launch(
        "haproxy",
        &["-f", conf.to_str().unwrap(), "-db"],
        Some(cpus),
        listen,
    )
}

/// Waits until `addr` completes a TLS handshake, negotiates h2 and answers
/// one request.
fn wait_tls(addr: SocketAddr) {
    let url = format!("https://{addr}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut cmd = Command::new("h2load");
        cmd.args(["-n1", "-c1", &url]);
        let ok = cmd
            .output()
            .ok()
            .and_then(|o| crate::h2load::parse(&String::from_utf8_lossy(&o.stdout)))
            .is_some_and(|r| r.succeeded == 1 && r.negotiated.ends_with(" h2"));
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never answered over TLS with h2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU time (user + system) of every process in the group so far.
pub fn cpu_time(r: &Running) -> Duration {
    let pgid = r.pid() as i32;
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut ticks = 0u64;
    for pid in crate::host::group_pids(pgid) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces): state is
        // field 3, utime 14 and stime 15.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = after.split_whitespace().collect();
        ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    Duration::from_secs_f64(ticks as f64 / hz)
}

/// h2load defaults for this bench's runs against `url`.
pub fn h2load<'a>(url: &'a str, load_cpu: &'a str) -> H2load<'a> {
    H2load {
        url,
        clients: 1,
        requests: 1,
        seconds: None,
        streams: 1,
        h1: false,
        openssl_conf: None,
        log: None,
        cpus: Some(load_cpu),
    }
}
