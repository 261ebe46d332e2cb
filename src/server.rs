//! Builds the Pingora server from a validated config: the live generation
//! ([`crate::live`]), one proxy service per http listener reading its site
//! from it, one per tcp listener, the health supervisor, the SIGHUP reload
//! and state file services, the admin service, and the `server:` settings
//! mapped onto Pingora's `ServerConf`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::listening::Service;

use crate::accept::Listener;
use crate::access_log::AccessLog;
use crate::admin::{AdminApp, Metrics};
use crate::config::{Config, ListenerKind, ServerSettings};
use crate::conn_cap::{Cap, Caps};
use crate::conn_limit::ConnLimit;
use crate::fd_limit;
use crate::filters::sticky::StickyKey;
use crate::h1::Forwarder;
use crate::http2::H2Front;
use crate::http_guard::{HeadGuard, HeadLimits};
use crate::l4::TcpProxy;
use crate::live::dns::DnsRefresh;
use crate::live::health::HealthSupervisor;
use crate::live::signal::ReloadOnHangup;
use crate::live::state_file::StateWriter;
use crate::live::{Live, Shared};
use crate::proxy::HttpProxy;
use crate::tls::LiveCerts;

/// How to start: the `-d`/`-u` flags of `switchyard run`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StartOptions {
    pub daemon: bool,
    pub upgrade: bool,
}

/// Maps `server:` onto Pingora's settings. Pingora counts grace periods in
/// whole seconds, so sub-second values round up.
pub fn server_conf(s: &ServerSettings, daemon: bool) -> ServerConf {
    let secs = |d: std::time::Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let threads = s
        .threads
        .map(|n| n.get())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    ServerConf {
        version: 1,
        daemon,
        threads,
        pid_file: s.pid_file.to_string_lossy().into_owned(),
        upgrade_sock: s.upgrade_sock.to_string_lossy().into_owned(),
        error_log: s
            .error_log
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        grace_period_seconds: Some(secs(s.grace_period)),
        graceful_shutdown_timeout_seconds: Some(secs(s.shutdown_timeout)),
        // One single-threaded runtime per worker thread instead of one
        // work-stealing runtime: tokio's multi-thread scheduler moves tasks
        // past its 256-slot local queue to a global queue it drains far less
        // often, so with 1,000 busy connections a quarter of requests waited
        // 90–250 ms (p99 231 ms vs 50–70 ms this way; README "Benchmarks").
        work_stealing: false,
        // A daemon stays in the directory it was started from (the default
        // is `/`): relative paths in the config (certificates, token and
        // state files) mean the same at a reload as they did at start.
        working_directory: std::env::current_dir().ok(),
        ..ServerConf::default()
    }
}

/// Every address this config listens on, for the bind pre-check.
pub fn listen_addrs(config: &Config) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = config.listeners.iter().map(|l| l.listen).collect();
    addrs.extend(config.admin.as_ref().map(|a| a.listen));
    addrs
}

/// Pingora panics in a worker thread when a listener cannot bind; try each
/// address first so `run` can exit 2 with a clear message instead.
pub fn check_bindable(config: &Config) -> Result<(), String> {
    for addr in listen_addrs(config) {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            return Err(format!("cannot listen on {addr}: {e}"));
        }
    }
    Ok(())
}

/// Builds the server with all services added; call `run_forever` on it.
/// `file` is the config file `config` came from, which reloads read again.
/// Fails (before binding anything) when `SWITCHYARD_STICKY_KEY` is unusable.
pub fn build(config: &Config, file: &Path, start: StartOptions) -> Result<Server, String> {
    crate::access_log::ignore_reopen_signal();
    crate::live::signal::ignore_until_ready();
    let sticky_key = StickyKey::from_env_or_random()
        .map_err(|e| format!("{}: {e}", crate::filters::sticky::KEY_ENV))?;
    if sticky_key.is_random() && uses_sticky(config) {
        log::info!(
            "sticky cookies are signed with a key generated at start: set {} to keep them valid across restarts and instances",
            crate::filters::sticky::KEY_ENV
        );
    }
    let sticky_key = Arc::new(sticky_key);
    let opt = Opt {
        upgrade: start.upgrade,
        daemon: start.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&config.server, start.daemon));

    server.add_service(pingora::services::background::background_service(
        "handover watch",
        crate::proxy::drain::HandoverWatch,
    ));
    let metrics = Arc::new(Metrics::new());
    let access_log = match &config.server.access_log {
        Some(path) => {
            let (log, writer) = AccessLog::open(path, metrics.access_log_dropped.clone())
                .map_err(|e| format!("cannot open access_log {}: {e}", path.display()))?;
            server.add_service(pingora::services::background::background_service(
                "access log",
                writer,
            ));
            Some(log)
        }
        None => None,
    };
    let shared = Shared {
        metrics: Arc::clone(&metrics),
        sticky_key,
        access_log,
    };
    let live = Live::new(config.clone(), file.to_path_buf(), shared)?;
    use pingora::services::background::background_service as background;
    server.add_service(background(
        "health checks",
        HealthSupervisor(Arc::clone(&live)),
    ));
    server.add_service(background("state file", StateWriter(Arc::clone(&live))));
    server.add_service(background("DNS backends", DnsRefresh(Arc::clone(&live))));
    let hangup = server.add_service(background(
        "reload on SIGHUP",
        ReloadOnHangup(Arc::clone(&live)),
    ));

    // Every client connection, on every listener, holds a slot of this
    // (the admin listener's excepted).
    let server_cap = Cap::new(fd_limit::server_cap(
        config.server.max_connections,
        nofile(),
    ));

    // The admin listener starts last: its `/status` answering means every
    // listener is up (HTTP listeners say so once their socket listens) and
    // SIGHUP reloads.
    let mut listening = vec![hangup];
    for listener in &config.listeners {
        let conns = ConnLimit::new(&listener.name, listener.max_connections_per_ip, &metrics);
        let caps = Caps::new(&server_cap, listener.max_connections);
        if let ListenerKind::Tcp { idle_timeout, .. } = &listener.kind {
            let app = TcpProxy::new(
                &listener.name,
                Arc::clone(&live),
                *idle_timeout,
                Arc::clone(&metrics),
            );
            let name = format!("tcp listener {}", listener.name);
            let addr = listener.listen.to_string();
            let mut accepting = Listener::new(name, addr, None, conns, caps, app);
            if listener.proxy_protocol {
                accepting = accepting.with_proxy_protocol(config.server.header_timeout);
            }
            listening.push(server.add_service(accepting));
            continue;
        }
        let Some(slot) = live.site(&listener.name) else {
            continue;
        };
        let limits = HeadLimits {
            header_timeout: config.server.header_timeout,
            max_header_bytes: config.server.max_header_bytes,
            max_uri_bytes: config.server.max_uri_bytes,
            idle_timeout: config.server.idle_timeout,
        };
        let forwarder = Forwarder::new(Arc::clone(&slot), config.server.idle_timeout);
        // HTTP/2 streams go through the forwarder's pipeline while the
        // current routes allow it (`Site::h2_front`); else Pingora's.
        let h2_front = listener.forwarder.then(|| {
            H2Front::new(
                Arc::clone(&slot),
                config.server.header_timeout,
                config.server.idle_timeout,
                config.server.max_header_bytes,
            )
        });
        let app = HttpProxy::new(slot);
        let mut proxy = pingora::proxy::http_proxy(&server.configuration, app);
        if listener.h2c {
            let mut options = HttpServerOptions::default();
            options.h2c = true;
            proxy.server_options = Some(options);
        }
        let id_header = config.server.request_id.as_ref().map(|r| r.header.clone());
        let mut guarded = HeadGuard::new(proxy, limits)
            .with_h2c(listener.h2c)
            .with_request_id(id_header);
        if listener.forwarder {
            guarded = guarded.with_forwarder(forwarder);
        }
        if let Some(front) = h2_front {
            guarded = guarded.with_h2(front);
        }
        let addr = listener.listen.to_string();
        let tls = match (&listener.tls, live.certs(&listener.name)) {
            (Some(tls), Some(certs)) => {
                // The files were checked by the config loader; this can only
                // fail if they changed since. Fail before taking any socket.
                let settings = tls_settings(tls, certs).map_err(|e| {
                    format!(
                        "listener {}: cannot load TLS certificate: {e}",
                        listener.name
                    )
                })?;
                Some(settings)
            }
            _ => None,
        };
        let name = format!("listener {}", listener.name);
        let mut accepting = Listener::new(name, addr, tls, conns, caps, guarded);
        if listener.proxy_protocol {
            accepting = accepting.with_proxy_protocol(config.server.header_timeout);
        }
        listening.push(server.add_service(accepting));
    }

    if let Some(admin) = &config.admin {
        let app = AdminApp {
            live: Arc::clone(&live),
            started: std::time::Instant::now(),
            max_connections: server_cap.max(),
        };
        let mut service = Service::new("admin".to_string(), app);
        service.add_tcp(&admin.listen.to_string());
        service.threads = Some(1);
        server.add_service(service).add_dependencies(&listening);
    }
    // Last: with `-u` this waits for the old instance's listening sockets,
    // which it only sends after SIGQUIT. Everything that can fail (a TLS
    // certificate) has failed by now, while the old instance is untouched.
    server.bootstrap();
    Ok(server)
}

/// TLS for an http listener: certificates chosen by SNI from `certs`
/// (loaded at validation, replaced by reloads), ALPN offering h2, then
/// http/1.1.
fn tls_settings(
    tls: &crate::config::ListenerTls,
    certs: Arc<LiveCerts>,
) -> pingora::Result<TlsSettings> {
    let (cert, key) = (
        tls.default.cert.to_string_lossy(),
        tls.default.key.to_string_lossy(),
    );
    let mut settings = TlsSettings::intermediate(&cert, &key)?;
    settings.set_cert_resolver(certs);
    settings.enable_h2();
    Ok(settings)
}

fn uses_sticky(config: &Config) -> bool {
    config.listeners.iter().any(|l| match &l.kind {
        ListenerKind::Http { routes } => routes.iter().any(|r| r.sticky.is_some()),
        ListenerKind::Tcp { .. } => false,
    })
}

/// Raises the open-file limit to the hard limit (logged) and returns it.
fn nofile() -> u64 {
    match fd_limit::raise() {
        Ok(n) if n.now > n.was => {
            log::info!("open-file limit raised from {} to {}", n.was, n.now);
            n.now
        }
        Ok(n) => n.now,
        Err(e) => {
            log::warn!("cannot raise the open-file limit: {e}");
            // SAFETY: sysconf only reads.
            let n = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
            u64::try_from(n).unwrap_or(1024)
        }
    }
}
