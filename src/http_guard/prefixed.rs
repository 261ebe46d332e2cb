//! A stream with bytes already read in front of it: what [`super::HeadGuard`]
//! buffered while checking a request head is read again by Pingora first.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most one read takes from the socket.
const READ_CHUNK: usize = 8 * 1024;
/// The most kept of a pipelined request while the one before it is served.
const HOLD_MAX: usize = 64 * 1024;
/// Writes smaller than this are gathered until a flush (one TCP segment).
const WRITE_CHUNK: usize = 1460;

thread_local! {
    /// Where [`Prefixed::fill_at_least_one`] reads, shared by every
    /// connection on the thread: only one poll runs on a thread at a time.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
}

#[derive(Debug)]
pub struct Prefixed {
    inner: Stream,
    /// Read ahead, not yet passed on: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// Written, not yet sent: `wbuf[wpos..]`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// How much more the reader may take (see [`Prefixed::set_fence`]).
    fence: Option<u64>,
    /// Small writes are gathered until a flush (see the `AsyncWrite` impl).
    /// Off while Pingora writes: it does not flush a Content-Length body
    /// until its end, so gathered bytes would wait on the backend.
    gather: bool,
}

impl Prefixed {
    pub fn new(inner: Stream) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            pos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            fence: None,
            gather: true,
        }
    }

    /// Whether small writes are gathered until a flush: yes for the
    /// forwarder, which flushes whenever its next read would wait; no for
    /// Pingora, whose writes must each reach the client.
    pub fn set_gather(&mut self, gather: bool) {
        self.gather = gather;
    }

    /// Bytes buffered and not yet read by Pingora.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Length of the request head at the front of the buffer (through its
    /// blank line), if it is all there. Leading blank lines (allowed between
    /// requests) count towards it.
    pub fn head_end(&self) -> Option<usize> {
        end_of_head(&self.buf[self.pos..])
    }

    /// The first `len` buffered bytes.
    pub fn head(&self, len: usize) -> &[u8] {
        &self.buf[self.pos..self.pos + len]
    }

    /// Reads more from the socket into the buffer. `Ok(false)` on EOF.
    /// Cancel-safe: dropped before completion (a timeout), it leaves the
    /// buffer as it was.
    ///
    /// While it waits nothing is allocated for the read: the socket is read
    /// into a per-thread scratch buffer only once it is readable, and just
    /// the bytes that arrived are kept. An idle keep-alive connection thus
    /// holds no read buffer at all (reserving one before waiting cost 8 KiB
    /// per idle connection).
    pub async fn fill_at_least_one(&mut self) -> std::io::Result<bool> {
        if self.pos > 0 && self.pos == self.buf.len() {
            // Everything was consumed: release the memory.
            self.buf = Vec::new();
            self.pos = 0;
        }
        std::future::poll_fn(|cx| {
            SCRATCH.with_borrow_mut(|scratch| {
                let mut out = ReadBuf::new(&mut scratch[..]);
                match Pin::new(&mut self.inner).poll_read(cx, &mut out) {
                    Poll::Ready(Ok(())) => {
                        self.buf.extend_from_slice(out.filled());
                        Poll::Ready(Ok(!out.filled().is_empty()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
        })
        .await
    }

    /// Drops the first `n` buffered bytes (a request head just forwarded).
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    /// Moves up to `max` buffered bytes onto the end of `out`; how many.
    pub fn take_buffered(&mut self, max: usize, out: &mut Vec<u8>) -> usize {
        let n = self.buffered().min(max);
        out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
        self.consume(n);
        n
    }

    /// The client's IP, from the socket (never from a header).
    pub fn peer_ip(&self) -> Option<std::net::IpAddr> {
        let digest = self.inner.get_socket_digest()?;
        digest.peer_addr()?.as_inet().map(|a| a.ip())
    }

    /// The client (PROXY source or socket peer) and local addresses.
    pub fn conn_addrs(&self) -> Option<crate::proxy_protocol::ConnAddrs> {
        crate::proxy_protocol::ConnAddrs::of(&*self.inner.get_socket_digest()?)
    }

    pub fn inner_mut(&mut self) -> &mut Stream {
        &mut self.inner
    }
}

/// Reads pass on the buffered bytes first, then the socket's, up to the
/// fence when one is set.
impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let room = match this.fence {
            Some(0) => return this.poll_hold(cx),
            Some(left) => out
                .remaining()
                .min(usize::try_from(left).unwrap_or(usize::MAX)),
            None => out.remaining(),
        };
        let n = if this.pos < this.buf.len() {
            let n = room.min(this.buf.len() - this.pos);
            out.put_slice(&this.buf[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.buf.len() {
                this.buf = Vec::new();
                this.pos = 0;
            }
            n
        } else {
            // At most `room` bytes from the socket (as `tokio::io::Take`).
            let mut part = out.take(room);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut part))?;
            let n = part.filled().len();
            // SAFETY: the inner read initialised these `n` bytes of `out`.
            unsafe { out.assume_init(n) };
            out.advance(n);
            n
        };
        if let Some(left) = &mut this.fence {
            *left -= n as u64;
        }
        Poll::Ready(Ok(()))
    }
}

impl Prefixed {
    /// At the fence: whatever the client sends (the next pipelined request)
    /// is kept here for the guard, and the reader waits. At most
    /// [`HOLD_MAX`] bytes are kept; a client's close is left for the guard
    /// to find.
    fn poll_hold(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.buffered() < HOLD_MAX {
            let polled = SCRATCH.with_borrow_mut(|scratch| {
                let mut into = ReadBuf::new(&mut scratch[..]);
                match Pin::new(&mut self.inner).poll_read(cx, &mut into) {
                    Poll::Ready(Ok(())) if !into.filled().is_empty() => {
                        self.buf.extend_from_slice(into.filled());
                        true
                    }
                    _ => false,
                }
            });
            if !polled {
                break;
            }
        }
        Poll::Pending
    }

    /// Lets the reader (Pingora) take at most `fence` more bytes: the rest
    /// of the request it was handed, when its length is known. `None`: no
    /// limit (a chunked body, an upgrade).
    pub fn set_fence(&mut self, fence: Option<u64>) {
        self.fence = fence;
    }
}

impl Prefixed {
    /// Writes out everything gathered by `poll_write`.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wbuf[self.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        self.wbuf.clear();
        self.wpos = 0;
        Poll::Ready(Ok(()))
    }
}

/// Writes are gathered as by a `BufWriter` of [`WRITE_CHUNK`] bytes (what
/// Pingora's own stream did), so a small response head and body leave in
/// one segment, but the buffer is only allocated while there is something
/// to send and is released at each flush: idle connections hold none.
impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if !this.gather || this.wbuf.len() + buf.len() > WRITE_CHUNK {
            ready!(this.poll_write_out(cx))?;
        }
        if !this.gather || buf.len() >= WRITE_CHUNK {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        if this.wbuf.capacity() == 0 {
            this.wbuf.reserve_exact(WRITE_CHUNK);
        }
        this.wbuf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_write_out(cx))?;
        this.wbuf = Vec::new();
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_write_out(cx))?;
        this.wbuf = Vec::new();
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    /// Vectored writes (Pingora's chunk framing: size line, data, CRLF) go
    /// out in one call when nothing is gathered.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.gather {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            return Pin::new(this).poll_write(cx, first);
        }
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        !self.gather && self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Prefixed {
    async fn shutdown(&mut self) {
        // Whatever is still gathered goes out first.
        let _ = tokio::io::AsyncWriteExt::flush(self).await;
        Shutdown::shutdown(self.inner.as_mut()).await
    }
}

impl UniqueID for Prefixed {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Prefixed {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Prefixed {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Prefixed {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Prefixed {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

/// Peeking is only used by Pingora to detect an h2c preface; [`super::HeadGuard`]
/// has already done that, so say it is not supported (Pingora then trusts
/// its `h2c` option).
#[async_trait]
impl Peek for Prefixed {}

/// Where the head at the front of `data` ends: after the first "\r\n\r\n"
/// or "\n\n" (bare-LF line endings are accepted by Pingora's parser as
/// well), found from one scan for line feeds.
fn end_of_head(data: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', data).find_map(|i| {
        let next = data.get(i + 1..)?;
        if next.first() == Some(&b'\n') {
            Some(i + 2)
        } else if i > 0 && data[i - 1] == b'\r' && next.starts_with(b"\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Pingora is handed one request; a pipelined next one, buffered or
    /// arriving later, stays for the guard.
    #[tokio::test]
    async fn the_reader_stops_at_the_fence_and_what_follows_is_kept() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(256);
        let mut p = Prefixed::new(Box::new(server));
        client
            .write_all(b"GET /a HTTP/1.1\r\n\r\nGET /b")
            .await
            .unwrap();
        assert!(p.fill_at_least_one().await.unwrap());
        p.set_fence(Some(19));
        let mut got = vec![0u8; 64];
        let n = p.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"GET /a HTTP/1.1\r\n\r\n");
        client.write_all(b" HTTP/1.1\r\n\r\n").await.unwrap();
        let more = tokio::time::timeout(Duration::from_millis(50), p.read(&mut got)).await;
        assert!(more.is_err(), "read past the fence");
        assert_eq!(p.head(p.buffered()), b"GET /b HTTP/1.1\r\n\r\n");
        p.set_fence(None);
        let n = p.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"GET /b HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_timed_out_fill_leaves_nothing_behind() {
        let (client, server) = tokio::io::duplex(64);
        let mut p = Prefixed::new(Box::new(server));
        let r = tokio::time::timeout(Duration::from_millis(20), p.fill_at_least_one()).await;
        assert!(r.is_err());
        assert_eq!(p.buffered(), 0);
        drop(client);
        assert!(!p.fill_at_least_one().await.unwrap());
    }

    #[test]
    fn a_head_ends_at_its_first_blank_line() {
        assert_eq!(
            end_of_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"),
            Some(27)
        );
        assert_eq!(end_of_head(b"GET / HTTP/1.1\nHost: a\n\nrest"), Some(24));
        assert_eq!(end_of_head(b"\r\n\r\n"), Some(4));
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r"), None);
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        // A bare LF then CRLF is neither form.
        assert_eq!(end_of_head(b"GET / HTTP/1.1\r\nHost: a\n\r\n"), None);
        assert_eq!(end_of_head(b""), None);
    }
}
