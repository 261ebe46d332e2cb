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
//! Connections are accepted by [`crate::accept`], as on HTTP listeners:
//! the connection caps, the `switchyard_connections` gauge, the per-IP cap
//! and, with `proxy_protocol`, the client's PROXY header (its source is the
//! stream's peer address here; bytes that came with it are read first, so
//! they go to the backend first) are all done before this app sees the
//! connection. With the upstream's `send_proxy_protocol`, each backend
//! connection starts with a header naming the client and this listener's
//! address.
//!
//! A backend at `max_conns` is skipped; when every eligible one is full the
//! connection waits in the upstream's `queue` (closed when the queue is
//! full or the wait times out), see [`Upstream::select_waiting`].
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
use crate::live::Live;
use crate::proxy_protocol::{connect::ProxyConnect, ConnAddrs};
use crate::upstream::{Ended, Upstream};

pub struct TcpProxy {
    listener: String,
    /// Where the upstream of each new connection is looked up: a reload
    /// may point the listener at another one.
    live: Arc<Live>,
    idle_timeout: Duration,
    connector: TransportConnector,
    metrics: Arc<Metrics>,
    rx: IntCounter,
    tx: IntCounter,
}

impl TcpProxy {
    pub fn new(
        listener: &str,
        live: Arc<Live>,
        idle_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let rx = metrics.tcp_bytes.with_label_values(&[listener, "rx"]);
        let tx = metrics.tcp_bytes.with_label_values(&[listener, "tx"]);
        Self {
            listener: listener.to_string(),
            live,
            idle_timeout,
            connector: TransportConnector::new(None),
            metrics,
            rx,
            tx,
        }
    }

    /// Connects to a backend, trying others after a connect failure; with
    /// `send_proxy_protocol`, the connection starts with `addrs`' header.
    async fn connect(
        &self,
        upstream: &Upstream,
        client_ip: Option<IpAddr>,
        addrs: Option<ConnAddrs>,
    ) -> Option<(Stream, crate::upstream::Attempt)> {
        let spec = &upstream.spec;
        let key = client_ip.map(ip_key).unwrap_or_default();
        let mut tried = Vec::new();
        while tried.len() <= spec.retries as usize {
            let attempt = upstream.select_waiting(&key, &tried).await.ok()?;
            let backend = upstream.backend(attempt.index);
            if !tried.is_empty() {
                self.metrics
                    .upstream_retries
                    .with_label_values(&[&spec.name, "connect_failure"])
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
                    upstream.report(attempt, Ended::ConnectFailure);
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
        // The upstream of the generation serving when the connection came.
        let upstream = Arc::clone(self.live.current().tcp_upstream(&self.listener)?);
        self.metrics
            .tcp_connections
            .with_label_values(&[&self.listener, &upstream.spec.name])
            .inc();
        let digest = client.get_socket_digest();
        // The client: the socket peer, or the PROXY header's source.
        let peer = digest
            .as_deref()
            .and_then(|d| d.peer_addr()?.as_inet().copied());
        let addrs = upstream.spec.send_proxy_protocol.and_then(|_| {
            let local = *digest.as_deref()?.local_addr()?.as_inet()?;
            Some(ConnAddrs {
                client: peer?,
                local,
            })
        });
        let client_ip = peer.map(|a| a.ip());
        let Some((mut backend, attempt)) = self.connect(&upstream, client_ip, addrs).await else {
            log::warn!(
                "listener {}: no backend for a connection; closing it",
                self.listener
            );
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut client).await;
            return None;
        };
        // The connection is established: for the breaker, the backend works.
        let index = attempt.index;
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
                upstream.backend(index).addr
            );
        }
        upstream.report(attempt, Ended::Connected);
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
