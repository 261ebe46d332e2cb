//! Accepting client connections for the HTTP and TCP listeners, in place of
//! Pingora's listening `Service`.
//!
//! Pingora spawns each accepted connection as one task whose future also
//! holds the state of a TLS handshake; a task's memory is the size of its
//! largest state, so every connection, idle keep-alive ones included, kept
//! about 8.8 KiB for a handshake long finished (measured with heaptrack),
//! plus a 64 KiB read buffer nothing above it needed. Here the per
//! connection task holds only the connection and the app's boxed future;
//! the TLS handshake runs in its own box, freed once done. Everything else
//! is as in Pingora: the listening socket comes from (and is registered in)
//! the fd table handed over on `upgrade`, `SO_REUSEADDR`, a 65,535 backlog,
//! `TCP_NODELAY` on accepted sockets, a 60 s limit on the TLS handshake, and
//! on shutdown the listener stops accepting while connections carry on
//! until the runtime stops after the grace period. Each connection runs on
//! one of the listener's per-thread runtimes (see `server::server_conf`).
//!
//! With `proxy_protocol`, the connection's PROXY header is read first (in a
//! box of its own, like the TLS handshake, within `server.header_timeout`),
//! bytes read past it are put back, and its source becomes the socket
//! digest's peer address: the client address of everything above.
//!
//! Each connection's task holds its
//! [`OpenConn`](crate::conn_limit::OpenConn) (the listener's open
//! connections gauge; 32 bytes more per task); under
//! `max_connections_per_ip` a connection from an IP at the cap is closed at
//! once, unanswered: at accept, or with `proxy_protocol` once the header
//! named the client.
//!
//! Before each `accept` the loop takes the connection's slots under
//! `server.max_connections` and the listener's `max_connections`
//! ([`crate::conn_cap`]); at a cap it waits for a connection to close, so
//! new clients wait in the backlog instead of being accepted and dropped.
//! Slots are taken only once the socket is readable (a client is waiting),
//! so an idle listener holds none of the server-wide cap: the listening
//! socket is watched through `AsyncFd` and accepted with std's `accept`,
//! which costs one `ioctl` (non-blocking mode) per connection more than
//! tokio's `accept4`.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest, Stream};
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::conn_cap::Caps;
use crate::conn_limit::ConnLimit;

/// How long a client may take over its TLS handshake (Pingora's limit).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Pending connections the kernel may queue (Pingora's backlog).
const BACKLOG: u32 = 65_535;

/// One listening address served by a Pingora [`ServerApp`].
pub struct Listener<A> {
    name: String,
    addr: String,
    tls: Option<TlsSettings>,
    /// `proxy_protocol`: the time a connection gets to send its header.
    proxy_header: Option<Duration>,
    conns: Arc<ConnLimit>,
    caps: Caps,
    app: Option<A>,
}

impl<A> Listener<A> {
    /// `addr` is the key of this socket in the fd table passed on upgrade, so
    /// it must be spelled the same way in the old and the new instance.
    pub fn new(
        name: String,
        addr: String,
        tls: Option<TlsSettings>,
        conns: Arc<ConnLimit>,
        caps: Caps,
        app: A,
    ) -> Self {
        Self {
            name,
            addr,
            tls,
            proxy_header: None,
            conns,
            caps,
            app: Some(app),
        }
    }

    /// Every connection must start with a PROXY header, within `timeout`;
    /// its source is the connection's client address from then on.
    pub fn with_proxy_protocol(mut self, timeout: Duration) -> Self {
        self.proxy_header = Some(timeout);
        self
    }
}

/// Ready (for services that depend on it, like the admin listener whose
/// `/status` tells `switchyard upgrade` and operators the instance is up)
/// once its socket is listening.
#[async_trait]
impl<A> ServiceWithDependents for Listener<A>
where
    A: ServerApp + Send + Sync + 'static,
{
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
        ready: ServiceReadyNotifier,
    ) {
        let listener = match listen(&self.addr, fds).await {
            Ok(l) => l,
            Err(e) => {
                // `run` checks every address before starting; this is a race
                // with another process, and a proxy missing a listener is broken.
                log::error!("{}: cannot listen on {}: {e}", self.name, self.addr);
                std::process::exit(2);
            }
        };
        let tls = self.tls.take().map(|t| Arc::new(t.build()));
        let app = Arc::new(self.app.take().expect("start_service runs once"));
        // Readiness is watched apart from `accept` so that slots are only
        // taken once a client is waiting: a listener with nobody to accept
        // holds none of the server-wide cap that other listeners need.
        let watched = listener.into_std().and_then(|l| {
            // SAFETY: the std listener owns its fd, which stays open as
            // long as the AsyncFd holds the listener.
            unsafe { AsyncFd::register_with_interest(l, Interest::READABLE) }.map_err(Into::into)
        });
        let listener = match watched {
            Ok(l) => l,
            Err(e) => {
                log::error!("{}: cannot watch {}: {e}", self.name, self.addr);
                std::process::exit(2);
            }
        };
        ready.notify_ready();
        loop {
            let mut pending = tokio::select! {
                pending = listener.readable() => match pending {
                    Ok(p) => p,
                    Err(e) => {
                        log::error!("{}: waiting for connections failed: {e}", self.name);
                        break;
                    }
                },
                changed = shutdown.changed() => match changed {
                    Ok(()) if !*shutdown.borrow() => continue,
                    _ => break,
                },
            };
            // A client is waiting. At a cap this waits (the backlog holds
            // it) until a connection closes; shutdown still ends the loop.
            let slots = tokio::select! {
                slots = self.caps.take() => slots,
                changed = shutdown.changed() => match changed {
                    Ok(()) if !*shutdown.borrow() => continue,
                    _ => break,
                },
            };
            let accepted = match pending.try_io(|l| l.get_ref().accept()) {
                Ok(accepted) => accepted,
                // Taken already (readiness was stale): wait again.
                Err(_would_block) => continue,
            };
            match accepted {
                Ok((socket, peer)) => {
                    // One of the listener's per-thread runtimes, picked as
                    // Pingora's own listener does; the socket moves to that
                    // runtime's reactor, so its events wake its own thread.
                    if socket.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let mut conn = self.conns.open();
                    if self.proxy_header.is_none() && !conn.admit(peer.ip()) {
                        // Over the per-IP cap: closed here, unanswered.
                        continue;
                    }
                    let (app, tls, shutdown) = (Arc::clone(&app), tls.clone(), shutdown.clone());
                    let handle = pingora_runtime::current_handle();
                    // Two tasks rather than one with a branch: a listener
                    // without `proxy_protocol` spawns exactly what it did.
                    match self.proxy_header {
                        None => handle.spawn(async move {
                            if let Ok(socket) = TcpStream::from_std(socket) {
                                serve(connection(socket, peer), app, tls, shutdown).await;
                            }
                            drop((conn, slots));
                        }),
                        Some(timeout) => handle.spawn(async move {
                            let Ok(socket) = TcpStream::from_std(socket) else {
                                return;
                            };
                            let Some((l4, client)) = proxied(socket, peer, timeout).await else {
                                return;
                            };
                            if conn.admit(client.ip()) {
                                serve(l4, app, tls, shutdown).await;
                            }
                            drop((conn, slots));
                        }),
                    };
                }
                Err(e) => {
                    log::error!("{}: accept failed: {e}", self.name);
                    if e.raw_os_error() == Some(libc::EMFILE) {
                        // Out of file descriptors: accept would fail at once
                        // again; wait for connections to close.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
        log::info!("{}: stopped accepting on {}", self.name, self.addr);
        app.cleanup().await;
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(vec![self.addr.clone()])
    }
}

/// Takes the socket for `addr` from the upgrade fd table, or binds it and
/// records it there for the next upgrade.
async fn listen(addr: &str, fds: Option<ListenFds>) -> std::io::Result<TcpListener> {
    let Some(fds) = fds else {
        return bind(addr).await;
    };
    let inherited = fds.lock().get(addr).copied();
    if let Some(fd) = inherited {
        // SAFETY: the fd table holds listening sockets passed from the old
        // instance; each address is taken by exactly one listener.
        let std = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        std.set_nonblocking(true)?;
        return TcpListener::from_std(std);
    }
    let listener = bind(addr).await?;
    fds.lock().add(addr.to_string(), listener.as_raw_fd());
    Ok(listener)
}

async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        // Config addresses are IP:port; a name would be resolved here.
        Err(_) => tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
        })?,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Pingora's stream for an accepted socket. Unbuffered both ways: the
/// HTTP layers above buffer for themselves (`http_guard::Prefixed` gathers
/// response writes). Boxed at once, so the connection's task holds a pointer.
fn connection(socket: TcpStream, peer: SocketAddr) -> Box<L4Stream> {
    let _ = socket.set_nodelay(true);
    let mut l4 = Box::new(L4Stream::from(socket));
    set_peer(&mut l4, peer);
    l4
}

/// `peer` is the client address every layer above sees (`peer_ip`,
/// Pingora's `client_addr`).
fn set_peer(l4: &mut L4Stream, peer: SocketAddr) {
    let digest = SocketDigest::from_raw_fd(l4.as_raw_fd());
    let _ = digest.peer_addr.set(Some(peer.into()));
    l4.set_socket_digest(digest);
}

/// A connection past its PROXY header, and the client address it named.
type Proxied = (Box<L4Stream>, SocketAddr);

/// The connection once its PROXY header is read (before any TLS), its
/// source as the peer (and returned); `None` (the connection is dropped,
/// nothing answered) for a missing, malformed or late header. Boxed like the
/// TLS handshake: listeners without `proxy_protocol` carry none of its state.
fn proxied(
    socket: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Proxied>> + Send>> {
    Box::pin(async move {
        let _ = socket.set_nodelay(true);
        let mut l4 = Box::new(L4Stream::from(socket));
        let read = crate::proxy_protocol::read_header(&mut *l4);
        let (header, rest) = match tokio::time::timeout(timeout, read).await {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                log::debug!("connection from {peer}: {e}; closing it");
                return None;
            }
            Err(_) => {
                log::debug!("connection from {peer}: no PROXY header in {timeout:?}; closing it");
                return None;
            }
        };
        if !rest.is_empty() {
            // Read before anything else: the request (or TLS hello) after it.
            l4.rewind(&rest);
        }
        let client = header.source().unwrap_or(peer);
        set_peer(&mut l4, client);
        Some((l4, client))
    })
}

/// One client connection, for as long as the app keeps it. The task's
/// future holds pointers only: its size is what every idle connection costs.
async fn serve<A>(
    l4: Box<L4Stream>,
    app: Arc<A>,
    tls: Option<Arc<pingora::listeners::tls::Acceptor>>,
    shutdown: ShutdownWatch,
) where
    A: ServerApp + Send + Sync + 'static,
{
    let stream: Stream = match tls {
        None => l4,
        Some(acceptor) => match tls_handshake(l4, acceptor).await {
            Some(tls) => tls,
            None => return,
        },
    };
    let mut next = app.process_new(stream, &shutdown).await;
    while let Some(stream) = next {
        next = app.process_new(stream, &shutdown).await;
    }
}

/// The TLS handshake in a box of its own, freed when it ends (its state,
/// rustls's included, is several KiB).
fn tls_handshake(
    l4: Box<L4Stream>,
    acceptor: Arc<pingora::listeners::tls::Acceptor>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Stream>> + Send>> {
    Box::pin(async move {
        let peer = l4.get_socket_digest().and_then(|d| d.peer_addr().cloned());
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.tls_handshake(*l4)).await {
            Ok(Ok(tls)) => Some(Box::new(tls) as Stream),
            Ok(Err(e)) => {
                log::debug!("TLS handshake from {peer:?} failed: {e}");
                None
            }
            Err(_) => {
                log::debug!("TLS handshake from {peer:?} timed out");
                None
            }
        }
    })
}
