//! The HTTP/1 connection loop, with limits Pingora does not enforce.
//!
//! Pingora reads a request head with a timeout *per read* and accepts up to
//! 1 MiB of headers, so a client trickling one byte just inside each timeout
//! can hold a connection forever. [`HeadGuard`] wraps a Pingora HTTP app and
//! runs the keep-alive loop itself (as Pingora's own `ServerApp` does); before
//! each request it reads the head into memory under two limits:
//!
//! - `server.header_timeout`: the *whole* head must arrive within it, however
//!   slowly it trickles, else `408 Request Timeout` and close;
//! - `server.max_header_bytes`: a head larger than this gets
//!   `431 Request Header Fields Too Large` and close; nothing is forwarded;
//! - `server.max_uri_bytes`: a request-target longer than this gets
//!   `414 URI Too Long` and close, checked while the request line arrives.
//!
//! A complete head is also checked as raw bytes ([`raw::check`]) for the
//! ambiguities Pingora's parser would silently normalise (400), and a
//! chunked body's framing in the bytes that came with the head (400: a bad
//! first chunk size is refused before the head goes anywhere). The bytes
//! read are handed back to Pingora through [`Prefixed`], so parsing and
//! everything after it is unchanged. Between requests a keep-alive
//! connection may stay idle for `server.idle_timeout` (Pingora's keep-alive
//! timeout), then it is closed. HTTP/2 connections (ALPN `h2`, or, on a
//! plain listener with `h2c: true`, a connection that opens with the HTTP/2
//! preface) go straight to Pingora's HTTP/2 server.

mod prefixed;
pub mod raw;

pub use prefixed::Prefixed;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{GetSocketDigest, Stream, ALPN};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::h1::body::Chunked;
use crate::h1::{Forwarder, Served};
use crate::http2::H2Front;
use crate::policy::request_id;

/// Limits on reading a request head; see the module doc.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
    pub idle_timeout: Duration,
}

pub struct HeadGuard<A> {
    app: Arc<A>,
    limits: HeadLimits,
    /// Look for the HTTP/2 prior-knowledge preface on plain connections.
    h2c: bool,
    /// Offered each request first; what it declines goes to `app`.
    forwarder: Option<Forwarder>,
    /// Serves HTTP/2 connections in place of Pingora's HTTP/2 server.
    h2: Option<H2Front>,
    /// `server.request_id`'s header: the guard's own answers carry a new id.
    request_id: Option<http::HeaderName>,
}

impl<A> HeadGuard<A> {
    pub fn new(app: A, limits: HeadLimits) -> Self {
        Self {
            app: Arc::new(app),
            limits,
            h2c: false,
            forwarder: None,
            h2: None,
            request_id: None,
        }
    }

    /// Gives the guard's own answers (408, 414, 431, 400) a request id
    /// in this header.
    pub fn with_request_id(mut self, header: Option<http::HeaderName>) -> Self {
        self.request_id = header;
        self
    }

    /// Serves HTTP/2 connections with `front` instead of `app`.
    pub fn with_h2(mut self, front: H2Front) -> Self {
        self.h2 = Some(front);
        self
    }

    /// Offers every HTTP/1 request to `forwarder` before Pingora.
    pub fn with_forwarder(mut self, forwarder: Forwarder) -> Self {
        self.forwarder = Some(forwarder);
        self
    }

    /// Serves HTTP/2 by prior knowledge (RFC 9113 §3.3) on plain
    /// connections; the wrapped app must have `h2c` in its server options.
    pub fn with_h2c(mut self, h2c: bool) -> Self {
        self.h2c = h2c;
        self
    }
}

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How reading a head ended.
enum Head {
    /// A complete head of this length (and maybe more) is buffered; the
    /// whole request's length, when it is known from the head.
    Complete(usize, Option<u64>),
    /// The client closed before sending anything: a normal end of keep-alive.
    Closed,
    /// Answer this status and close.
    Reject(u16),
}

#[async_trait]
impl<A> ServerApp for HeadGuard<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            if let Some(front) = self.h2.as_ref().filter(|f| f.takes()) {
                let conn = stream.get_socket_digest();
                Box::pin(front.serve(stream, conn, shutdown)).await;
                return None;
            }
            return self.app.process_new(stream, shutdown).await;
        }
        let h2c = self.h2c && stream.get_ssl_digest().is_none();
        let mut stream = Prefixed::new(stream);
        if h2c {
            let deadline = tokio::time::Instant::now() + self.limits.header_timeout;
            if has_h2_preface(&mut stream, deadline).await? {
                if let Some(front) = self.h2.as_ref().filter(|f| f.takes()) {
                    // The `h2` crate reads the buffered preface first. It
                    // gathers its frames itself and writes them vectored.
                    stream.set_gather(false);
                    let conn = stream.get_socket_digest();
                    Box::pin(front.serve(stream, conn, shutdown)).await;
                    return None;
                }
                // Pingora replays the buffered preface through `Prefixed`.
                return self.app.process_new(Box::new(stream), shutdown).await;
            }
        }
        let mut settings = None;
        // One idle timer per connection, moved forward before each wait:
        // tokio extends a registered timer with one atomic update, where a
        // new timeout per request was a timer-wheel insertion and removal.
        let mut idle: Option<Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let (head_len, request_len) = match read_head(&mut stream, &self.limits).await {
                Head::Complete(len, request_len) => (len, request_len),
                Head::Closed => return None,
                Head::Reject(code) => {
                    Box::pin(reject(&mut stream, code, self.request_id.as_ref())).await;
                    return None;
                }
            };
            let served = match &self.forwarder {
                // Boxed: the connection future stays small while idle.
                Some(f) => Box::pin(f.serve(&mut stream, head_len, shutdown)).await,
                None => Served::Declined,
            };
            match served {
                Served::KeepAlive => {}
                Served::Close => {
                    let _ = Box::pin(stream.shutdown()).await;
                    return None;
                }
                Served::Declined => {
                    // Pingora reads no further than this request, when its
                    // length is known: a pipelined next one stays in
                    // `stream`, for this loop to read (Pingora would close
                    // the connection on bytes read past the request).
                    stream.set_fence(request_len);
                    let reused = self.request(stream, settings.take(), shutdown).await?;
                    let (next, next_settings) = reused.consume();
                    settings = next_settings;
                    // We always hand Pingora a `Prefixed`; take it back to
                    // keep any bytes of the next request it holds.
                    stream = *next.into_any().downcast::<Prefixed>().ok()?;
                    stream.set_gather(true);
                    stream.set_fence(None);
                }
            }
            // Between requests the client may be idle up to idle_timeout
            // (a pipelined request may already be here).
            if stream.buffered() == 0 {
                let deadline = tokio::time::Instant::now() + self.limits.idle_timeout;
                let timer = match &mut idle {
                    Some(timer) => {
                        timer.as_mut().reset(deadline);
                        timer
                    }
                    None => idle.insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                tokio::select! {
                    biased;
                    filled = stream.fill_at_least_one() => match filled {
                        Ok(true) => {}
                        _ => return None,
                    },
                    () = timer.as_mut() => return None,
                }
            }
        }
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

impl<A> HeadGuard<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    /// Hands one request, its head buffered in `stream`, to Pingora.
    ///
    /// Not `async`: the session built here is moved into Pingora's boxed
    /// future, and a local in the connection loop's future would keep room
    /// for it (680 bytes) in every connection, idle ones included.
    fn request<'a>(
        self: &'a Arc<Self>,
        mut stream: Prefixed,
        settings: Option<pingora::apps::HttpPersistentSettings>,
        shutdown: &'a ShutdownWatch,
    ) -> futures::future::BoxFuture<'a, Option<pingora::apps::ReusedHttpStream>> {
        stream.set_gather(false);
        let mut session = ServerSession::new_http1(Box::new(stream));
        if *shutdown.borrow() {
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(self.limits.idle_timeout.as_secs().max(1)));
        }
        if let Some(s) = settings {
            pingora::apps::HttpPersistentSettings::apply_to_session(s, &mut session);
        }
        self.app.process_new_http(session, shutdown)
    }
}

/// Reads until the buffer starts with the HTTP/2 preface, or cannot.
/// `None` when the client closed or stalled before that was clear.
async fn has_h2_preface(stream: &mut Prefixed, deadline: tokio::time::Instant) -> Option<bool> {
    loop {
        let have = stream.head(stream.buffered().min(H2_PREFACE.len()));
        if !H2_PREFACE.starts_with(have) {
            return Some(false);
        }
        if have.len() == H2_PREFACE.len() {
            return Some(true);
        }
        match tokio::time::timeout_at(deadline, stream.fill_at_least_one()).await {
            Ok(Ok(true)) => {}
            _ => return None,
        }
    }
}

/// Buffers one request head under the limits (the whole head within
/// `header_timeout`, at most `max_header_bytes`, a request-target of at most
/// `max_uri_bytes`). A chunked body's framing is checked in the bytes that
/// came with the head, so a fault there is refused before anything is
/// forwarded.
async fn read_head(stream: &mut Prefixed, limits: &HeadLimits) -> Head {
    let deadline = tokio::time::Instant::now() + limits.header_timeout;
    loop {
        // Checked first, while the line still arrives: a long target is a
        // 414 however large the head it is part of.
        let target = raw::target_len(stream.head(stream.buffered()));
        if target > limits.max_uri_bytes {
            return Head::Reject(414);
        }
        if let Some(end) = stream.head_end() {
            if end > limits.max_header_bytes {
                return Head::Reject(431);
            }
            let shape = match raw::check(stream.head(end)) {
                Ok(shape) => shape,
                Err(why) => {
                    log::debug!("refusing request: {why}");
                    return Head::Reject(400);
                }
            };
            if shape.transfer_encoding {
                let body = &stream.head(stream.buffered())[end..];
                if Chunked::default().advance(body).is_err() {
                    log::debug!("refusing request: bad chunked framing");
                    return Head::Reject(400);
                }
            }
            return Head::Complete(end, shape.request_len(end));
        }
        if stream.buffered() > limits.max_header_bytes {
            return Head::Reject(431);
        }
        match tokio::time::timeout_at(deadline, stream.fill_at_least_one()).await {
            Err(_) => {
                return if stream.buffered() == 0 {
                    Head::Closed
                } else {
                    Head::Reject(408)
                }
            }
            Ok(Ok(true)) => {}
            // EOF or error: nothing to answer (a half-sent head is abandoned).
            Ok(Ok(false)) | Ok(Err(_)) => return Head::Closed,
        }
    }
}

/// Writes a short final answer (with a new request id in `id_header`)
/// and closes.
async fn reject(stream: &mut Prefixed, code: u16, id_header: Option<&http::HeaderName>) {
    let reason = match code {
        408 => "Request Timeout",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let body = format!("{code} {reason}\n");
    // Dated, as every answer switchyard makes (RFC 9110 §6.6.1).
    let date = pingora::protocols::http::date::get_cached_date();
    let id = match id_header {
        Some(name) => format!(
            "{name}: {}\r\n",
            request_id::generate().to_str().unwrap_or_default()
        ),
        None => String::new(),
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{id}Date: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        date.to_str().unwrap_or_default()
    );
    let inner = stream.inner_mut();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = inner.write_all(head.as_bytes()).await;
        let _ = inner.flush().await;
        let _ = inner.shutdown().await;
        // Drain briefly so the close is not a reset that eats our answer.
        // (On the heap: an array here would be part of every connection's
        // future, idle or not.)
        let mut sink = vec![0u8; 4096];
        while let Ok(n) = inner.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[async_trait]
    impl HttpServerApp for Nothing {
        async fn process_new_http(
            self: &Arc<Self>,
            _: ServerSession,
            _: &ShutdownWatch,
        ) -> Option<pingora::apps::ReusedHttpStream> {
            None
        }
    }

    /// The connection loop's future lives as long as the connection, idle
    /// or not, so its size is part of what each keep-alive connection
    /// costs. A local held across an await (a session, a buffer, an array)
    /// grows it for every connection; this catches that.
    #[test]
    fn the_connection_loop_future_stays_small() {
        let limits = HeadLimits {
            header_timeout: Duration::from_secs(1),
            max_header_bytes: 1024,
            max_uri_bytes: 256,
            idle_timeout: Duration::from_secs(1),
        };
        let guard = Arc::new(HeadGuard::new(Nothing, limits));
        let (_client, server) = tokio::io::duplex(8);
        let (_tx, shutdown) = tokio::sync::watch::channel(false);
        let future = guard.process_new(Box::new(server), &shutdown);
        let size = std::mem::size_of_val(&*future);
        assert!(size <= 512, "HeadGuard::process_new future is {size} bytes");
    }
}
