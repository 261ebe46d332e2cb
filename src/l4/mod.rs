//! TCP (L4) listeners: each accepted connection goes to one backend of the
//! listener's upstream and bytes are copied both ways until both sides are
//! done.
//!
//! A Pingora `ServerApp` per `protocol: tcp` listener. Per connection:
//! 1. pick a backend through the upstream's policy and its one accept path
//!    (health, draining, breaker, slow start; `consistent_hash` keys on the
//!    client IP), holding an [`Attempt`](crate::upstream::Attempt) — so
//!    `least_conn` counts open connections and in-flight = open connections;
//! 2. connect within `connect_timeout`; on failure report it to the breaker
//!    and try another backend, up to `retries` more;
//! 3. [`copy::splice`] both directions, passing a half-close on, until both
//!    directions ended or nothing moved for `idle_timeout`.
//!
//! With `proxy_protocol`, the client's PROXY header is read first (within
//! `server.header_timeout`, else the connection is closed) and its source
//! is the client address; bytes that came with it go to the backend first.
//! With the upstream's `send_proxy_protocol`, each backend connection
//! starts with a header naming the client and this listener's address.
//!
//! Each connection holds its [`OpenConn`](crate::conn_limit::OpenConn) (the
//! `switchyard_connections` gauge); under `max_connections_per_ip` one from
//! an IP at the cap (the PROXY source with `proxy_protocol`) is closed at
//! once, before any backend is picked.
//!
//! No backend (all down, draining, breaker-open, or every connect failed):
//! the client connection is closed at once. On graceful shutdown or upgrade
//! the listener stops accepting and established connections keep going until
//! the runtime stops after `grace_period`.

mod copy;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::connectors::TransportConnector;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use pingora::upstreams::peer::{BasicPeer, PeerOptions};
use prometheus::IntCounter;

use crate::admin::Metrics;
use crate::conn_limit::ConnLimit;
use crate::proxy_protocol::{self, connect::ProxyConnect, ConnAddrs};
use crate::upstream::{Ended, Upstream};

pub struct TcpProxy {
    listener: String,
    upstream: Arc<Upstream>,
    idle_timeout: Duration,
    /// `proxy_protocol`: the time a client gets to send its header.
    proxy_header: Option<Duration>,
    connector: TransportConnector,
    metrics: Arc<Metrics>,
    /// Open connections and the per-IP cap.
    conns: Arc<ConnLimit>,
    connections: IntCounter,
    rx: IntCounter,
    tx: IntCounter,
}

impl TcpProxy {
    pub fn new(
        listener: &str,
        upstream: Arc<Upstream>,
        idle_timeout: Duration,
        conns: Arc<ConnLimit>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let connections = metrics
            .tcp_connections
            .with_label_values(&[listener, &upstream.spec.name]);
        let rx = metrics.tcp_bytes.with_label_values(&[listener, "rx"]);
        let tx = metrics.tcp_bytes.with_label_values(&[listener, "tx"]);
        Self {
            listener: listener.to_string(),
            upstream,
            idle_timeout,
            proxy_header: None,
            connector: TransportConnector::new(None),
            metrics,
            conns,
            connections,
            rx,
            tx,
        }
    }

    /// Every client connection must start with a PROXY header, within `timeout`.
    pub fn with_proxy_protocol(mut self, timeout: Duration) -> Self {
        self.proxy_header = Some(timeout);
        self
    }

    /// Reads the client's PROXY header: its source (if it names one) and
    /// the bytes after it; `None` when the connection is to be closed.
    async fn read_proxy_header(
        &self,
        client: &mut Stream,
        timeout: Duration,
    ) -> Option<(Option<std::net::SocketAddr>, Vec<u8>)> {
        match tokio::time::timeout(timeout, proxy_protocol::read_header(client)).await {
            Ok(Ok((header, rest))) => Some((header.source(), rest)),
            Ok(Err(e)) => {
                log::debug!("listener {}: {e}; closing the connection", self.listener);
                None
            }
            Err(_) => {
                log::debug!(
                    "listener {}: no PROXY header within {timeout:?}; closing the connection",
                    self.listener
                );
                None
            }
        }
    }

    /// Connects to a backend, trying others after a connect failure; with
    /// `send_proxy_protocol`, the connection starts with `addrs`' header.
    async fn connect(
        &self,
        client_ip: Option<IpAddr>,
        addrs: Option<ConnAddrs>,
    ) -> Option<(Stream, crate::upstream::Attempt)> {
        let spec = &self.upstream.spec;
        let key = client_ip.map(ip_key).unwrap_or_default();
        let mut tried = Vec::new();
        while tried.len() <= spec.retries as usize {
            let attempt = self.upstream.select(&key, &tried)?;
            let backend = self.upstream.backend(attempt.index);
            if !tried.is_empty() {
                self.metrics
                    .upstream_retries
                    .with_label_values(&[&spec.name])
                    .inc();
            }
            tried.push(attempt.index);
            self.metrics
                .backend_requests
                .with_label_values(&[&spec.name, &backend.addr])
                .inc();
            let mut options = PeerOptions::new();
            options.connection_timeout = Some(spec.connect_timeout);
            if let Some(version) = spec.send_proxy_protocol {
                let connect = ProxyConnect::new(version, addrs, spec.connect_timeout);
                options.custom_l4 = Some(Arc::new(connect));
            }
            let peer = BasicPeer {
                _address: SocketAddr::Inet(backend.socket),
                sni: String::new(),
                options,
            };
            match self.connector.new_stream(&peer).await {
                Ok(stream) => return Some((stream, attempt)),
                Err(e) => {
                    log::warn!(
                        "listener {}: connect to {} failed: {e}",
                        self.listener,
                        backend.addr
                    );
                    self.upstream.report(attempt, Ended::ConnectFailure);
                }
            }
        }
        None
    }
}

#[async_trait]
impl ServerApp for TcpProxy {
    async fn process_new(
        self: &Arc<Self>,
        mut client: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.connections.inc();
        // Held until this returns, which is when the client connection ends.
        let mut conn = self.conns.open();
        let digest = client.get_socket_digest();
        let socket_peer = digest
            .as_deref()
            .and_then(|d| d.peer_addr()?.as_inet().copied());
        let (peer, early) = match self.proxy_header {
            None => (socket_peer, Vec::new()),
            Some(timeout) => {
                let (source, rest) = self.read_proxy_header(&mut client, timeout).await?;
                (source.or(socket_peer), rest)
            }
        };
        if let Some(peer) = peer {
            if !conn.admit(peer.ip()) {
                // Over the per-IP cap: closed at once, no backend is asked.
                return None;
            }
        }
        let addrs = self.upstream.spec.send_proxy_protocol.and_then(|_| {
            let local = *digest.as_deref()?.local_addr()?.as_inet()?;
            Some(ConnAddrs {
                client: peer?,
                local,
            })
        });
        let client_ip = peer.map(|a| a.ip());
        let Some((mut backend, attempt)) = self.connect(client_ip, addrs).await else {
            log::warn!(
                "listener {}: no backend for a connection; closing it",
                self.listener
            );
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut client).await;
            return None;
        };
        // The connection is established: for the breaker, the backend works.
        let index = attempt.index;
        if !early.is_empty() {
            use tokio::io::AsyncWriteExt;
            self.rx.inc_by(early.len() as u64);
            let sent = backend.write_all(&early).await;
            if sent.is_err() || backend.flush().await.is_err() {
                self.upstream.report(attempt, Ended::Reset);
                return None;
            }
        }
        let copied = copy::splice(
            &mut client,
            &mut backend,
            self.idle_timeout,
            &self.rx,
            &self.tx,
        )
        .await;
        if let Err(e) = copied {
            log::debug!(
                "listener {}: connection via {} ended: {e}",
                self.listener,
                self.upstream.backend(index).addr
            );
        }
        self.upstream.report(attempt, Ended::Connected);
        None
    }
}

/// The consistent-hash key of a client: its address octets (IPv4-mapped
/// IPv6 as IPv4), as for `hash_key: client_ip` on HTTP routes.
fn ip_key(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}
