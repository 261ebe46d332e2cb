//! switchyard, NGINX and HAProxy as TLS-terminating proxies (ALPN h2 and
//! http/1.1) with a second, plain HTTP/2 (h2c) listener, in front of the
//! NGINX backend pair, with as many workers as asked, pinned where asked;
//! the certificate they share; their CPU time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::h2load::H2load;
use crate::peers::{self, free_addr, Placement, Running};

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

/// A proxy under test: its process group, whose `addr` is the TLS
/// listener, and its plain HTTP/2 (prior knowledge, h2c) listener.
pub struct Proxy {
    pub run: Running,
    pub h2c: SocketAddr,
}

/// Starts `name` with `at.workers` workers on `at.cpus` and waits until
/// both of its listeners answer over HTTP/2.
pub fn start(
    name: &str,
    dir: &Path,
    cert: &Cert,
    backends: [SocketAddr; 2],
    at: Placement,
) -> Proxy {
    let (tls, h2c) = (free_addr(), free_addr());
    let l = Listeners { tls, h2c, cert };
    let run = match name {
        "switchyard" => switchyard(dir, &l, backends, at),
        "nginx" => nginx(dir, &l, backends, at),
        _ => haproxy(dir, &l, backends, at),
    };
    wait_h2(&format!("https://{tls}/"));
    wait_h2(&format!("http://{h2c}/"));
    Proxy { run, h2c }
}

/// Where a proxy listens: TLS (ALPN h2 and http/1.1) and plain h2c.
struct Listeners<'a> {
    tls: SocketAddr,
    h2c: SocketAddr,
    cert: &'a Cert,
}

/// switchyard: the h2c listener is a plain http listener with `h2c: true`
/// (it takes HTTP/1.1 too; h2load only sends the HTTP/2 preface).
fn switchyard(dir: &Path, l: &Listeners, backends: [SocketAddr; 2], at: Placement) -> Running {
    let conf = dir.join(format!("switchyard-{}.yaml", l.tls.port()));
    std::fs::write(
        &conf,
        format!(
            "server:\n  threads: {}\n  pid_file: {d}/sy-{p}.pid\n  upgrade_sock: {d}/sy-{p}.sock\nlisteners:\n  web:\n    listen: \"{}\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: b }}]\n  plain:\n    listen: \"{}\"\n    h2c: true\n    routes: [{{ upstream: b }}]\nupstreams:\n  b:\n    policy: round_robin\n    backends: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}]\n",
            at.workers,
            l.tls,
            l.cert.cert.display(),
            l.cert.key.display(),
            l.h2c,
            backends[0],
            backends[1],
            d = dir.display(),
            p = l.tls.port()
        ),
    )
    .unwrap();
    let bin = crate::host::switchyard_bin();
    peers::launch(&bin, &["run", "-c", conf.to_str().unwrap()], at.cpus, l.tls)
}

/// NGINX 1.22: `ssl http2` on `listen` (the `http2` directive came in
/// 1.25.1), TLS 1.3 enabled explicitly (1.22's default `ssl_protocols`
/// stops at TLS 1.2), session cache and tickets left at their defaults.
/// `listen ... http2` without `ssl` is h2c by prior knowledge only.
fn nginx(dir: &Path, l: &Listeners, backends: [SocketAddr; 2], at: Placement) -> Running {
    let conf = dir.join(format!("nginx-{}.conf", l.tls.port()));
    std::fs::write(
        &conf,
        format!(
            "worker_processes {};\ndaemon off;\npid {d}/nginx-{p}.pid;\nerror_log {d}/nginx-{p}.err;\nworker_rlimit_nofile 19000;\nevents {{ worker_connections 18000; }}\nhttp {{\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 300s;\n  upstream b {{ server {}; server {}; keepalive 128; keepalive_requests 1000000; }}\n  server {{\n    listen {} ssl http2 backlog=4096;\n    listen {} http2 backlog=4096;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    ssl_protocols TLSv1.2 TLSv1.3;\n    location / {{ proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}\n}}\n",
            at.workers,
            backends[0],
            backends[1],
            l.tls,
            l.h2c,
            l.cert.cert.display(),
            l.cert.key.display(),
            d = dir.display(),
            p = l.tls.port()
        ),
    )
    .unwrap();
    peers::launch("nginx", &peers::nginx_args(dir, &conf), at.cpus, l.tls)
}

/// HAProxy 2.6, `nbthread` threads; TLS settings at their defaults (TLS 1.2
/// minimum, session cache and tickets on); `proto h2` makes the plain bind
/// h2c by prior knowledge.
fn haproxy(dir: &Path, l: &Listeners, backends: [SocketAddr; 2], at: Placement) -> Running {
    let conf = dir.join(format!("haproxy-{}.cfg", l.tls.port()));
    std::fs::write(
        &conf,
        format!(
            "global\n  nbthread {}\n  maxconn 9000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 300s\n  timeout server 60s\n  timeout http-keep-alive 300s\nfrontend web\n  bind {} ssl crt {} alpn h2,http/1.1 backlog 4096\n  bind {} proto h2 backlog 4096\n  default_backend b\nbackend b\n  balance roundrobin\n  server b1 {}\n  server b2 {}\n",
            at.workers,
            l.tls,
            l.cert.combined.display(),
            l.h2c,
            backends[0],
            backends[1]
        ),
    )
    .unwrap();
    peers::launch(
        "haproxy",
        &["-f", conf.to_str().unwrap(), "-db"],
        at.cpus,
        l.tls,
    )
}

/// Waits until `url` answers one request over HTTP/2: negotiated by ALPN
/// for `https://`, by prior knowledge for `http://`.
fn wait_h2(url: &str) {
    let want = if url.starts_with("https:") {
        " h2"
    } else {
        "h2c"
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = Command::new("h2load")
            .args(["-n1", "-c1", url])
            .output()
            .ok()
            .and_then(|o| crate::h2load::parse(&String::from_utf8_lossy(&o.stdout)))
            .is_some_and(|r| r.succeeded == 1 && r.negotiated.ends_with(want));
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never answered over HTTP/2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU time (user + system) of every process in the group so far.
pub fn cpu_time(p: &Proxy) -> Duration {
    let pgid = p.run.pid() as i32;
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
pub fn h2load<'a>(url: &'a str, load_cpu: Option<&'a str>) -> H2load<'a> {
    H2load {
        url,
        clients: 1,
        requests: 1,
        seconds: None,
        streams: 1,
        h1: false,
        openssl_conf: None,
        log: None,
        threads: 1,
        cpus: load_cpu,
    }
}
