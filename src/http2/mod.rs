//! HTTP/2 clients, terminated here with the `h2` crate, their streams
//! forwarded by the HTTP/1 forwarder's pipeline ([`crate::h1::forward`]).
//!
//! Pingora's HTTP/2 server spawns a task per stream and runs its whole
//! per-request proxy machinery for each (about 105,000 instructions per
//! request against the forwarder's 18,000, README "Benchmarks"). Here one
//! task serves a connection: it drives the `h2` connection and polls its
//! streams' futures side by side, each stream being a request forwarded
//! exactly as an HTTP/1 one is (same routing, selection, idle backend
//! connections, header rules, retries, breaker, metrics, access log):
//!
//! ```text
//! TLS (ALPN h2) or h2c preface ─▶ h2 handshake (server.header_timeout)
//!   loop: accept a stream ─▶ request::serve ─┐   (streams polled together)
//!         GOAWAY on shutdown, hand-over, or idle for server.idle_timeout
//!                                            ▼
//!   checks as request_filter (400/414/404) ─▶ h1::forward: rate limit,
//!   choose, backend exchange over HTTP/1.1, response head as HEADERS,
//!   body as DATA under the client's flow control
//! ```
//!
//! Used for listeners whose every route reaches plain HTTP/1.1 backends
//! (what the forwarder can reach); a listener with an HTTP/2 or TLS
//! upstream (gRPC) serves HTTP/2 through Pingora, as before.

mod gather;
mod head;
mod request;
mod stream;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use pingora::protocols::SocketDigest;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::proxy::{drain, SiteSlot};
use crate::proxy_protocol::ConnAddrs;

/// Streams one connection may have open at once (Pingora's default too).
const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Response bytes one stream may have queued ahead of the client's window.
const MAX_SEND_BUFFER: usize = 64 * 1024;

/// Serves HTTP/2 connections for one listener.
pub struct H2Front {
    /// Loaded per connection (whether it comes here) and per stream.
    slot: Arc<SiteSlot>,
    /// The handshake must be done within it (`server.header_timeout`).
    handshake_timeout: Duration,
    /// A connection with no open stream for this long is closed
    /// (`server.idle_timeout`); also the longest wait on a client.
    idle_timeout: Duration,
    /// `server.max_header_bytes`: the largest header list accepted.
    max_header_bytes: u32,
}

impl H2Front {
    pub fn new(
        slot: Arc<SiteSlot>,
        handshake_timeout: Duration,
        idle_timeout: Duration,
        max_header_bytes: usize,
    ) -> Self {
        Self {
            handshake_timeout,
            idle_timeout,
            max_header_bytes: u32::try_from(max_header_bytes).unwrap_or(u32::MAX),
            slot,
        }
    }

    /// Whether the current generation's routes can all be served here (a
    /// reload may have given one a TLS or HTTP/2 upstream): else the
    /// connection goes to Pingora.
    pub fn takes(&self) -> bool {
        self.slot.load().h2_front
    }

    /// Serves the connection `io` (its preface read or not) to its end;
    /// `conn` is its socket digest (the client address).
    pub async fn serve<T>(&self, io: T, conn: Option<Arc<SocketDigest>>, shutdown: &ShutdownWatch)
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let client_ip = conn.as_deref().and_then(peer_ip);
        let proxy_addrs = match self.slot.load().proxy_out {
            true => conn.as_deref().and_then(ConnAddrs::of),
            false => None,
        };
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .max_header_list_size(self.max_header_bytes)
            .max_send_buffer_size(MAX_SEND_BUFFER);
        let (socket, flusher) = gather::gathered(io);
        let handshake = tokio::time::timeout(self.handshake_timeout, builder.handshake(socket));
        let mut conn = match handshake.await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                log::debug!("HTTP/2 handshake from {client_ip:?} failed: {e}");
                return;
            }
            Err(_) => return,
        };
        let mut streams = FuturesUnordered::new();
        let mut watch = shutdown.clone();
        let mut closing = false;
        let idle = tokio::time::sleep(self.idle_timeout);
        tokio::pin!(idle);
        loop {
            if !closing && (*watch.borrow() || drain::handing_over()) {
                conn.graceful_shutdown();
                closing = true;
            }
            // Streams first: every stream a backend answer woke writes its
            // frames before the connection is polled, and the connection
            // then sends them together (one write for many responses).
            tokio::select! {
                biased;
                Some(()) = streams.next(), if !streams.is_empty() => {
                    if streams.is_empty() {
                        idle.as_mut().reset(tokio::time::Instant::now() + self.idle_timeout);
                    }
                }
                accepted = conn.accept() => match accepted {
                    Some(Ok((req, respond))) => {
                        let site = self.slot.load_full();
                        streams.push(Box::pin(request::serve(
                            site,
                            req,
                            respond,
                            client_ip,
                            proxy_addrs,
                            self.idle_timeout,
                            shutdown,
                        )));
                    }
                    Some(Err(e)) => {
                        log::debug!("HTTP/2 connection from {client_ip:?} failed: {e}");
                        break;
                    }
                    None => break,
                },
                // What the streams and the connection wrote in this pass
                // (after the connection queued its frames) leaves in one write (see `gather`).
                written = std::future::poll_fn(|cx| out_if_any(&flusher, cx)) => {
                    if let Err(e) = written {
                        log::debug!("HTTP/2 connection from {client_ip:?} failed: {e}");
                        break;
                    }
                }
                changed = watch.changed(), if !closing => {
                    if changed.is_err() {
                        closing = true;
                        conn.graceful_shutdown();
                    }
                }
                // Idle: GOAWAY; still open an idle period later: closed.
                () = &mut idle, if streams.is_empty() => {
                    if closing {
                        break;
                    }
                    conn.graceful_shutdown();
                    closing = true;
                    idle.as_mut().reset(tokio::time::Instant::now() + self.idle_timeout);
                }
            }
        }
        // A last GOAWAY may still wait to be written.
        let last = std::future::poll_fn(|cx| flusher.poll_out(cx));
        let _ = tokio::time::timeout(self.handshake_timeout, last).await;
    }
}

/// Writes out what `flusher` gathered: ready once written, pending while
/// there is nothing (the next pass of the loop looks again).
fn out_if_any<T: AsyncWrite + Unpin>(
    flusher: &gather::Flusher<T>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<std::io::Result<()>> {
    if !flusher.pending() {
        return std::task::Poll::Pending;
    }
    flusher.poll_out(cx)
}

/// The client's IP from a connection's socket digest.
fn peer_ip(digest: &SocketDigest) -> Option<IpAddr> {
    digest.peer_addr()?.as_inet().map(|a| a.ip())
}
