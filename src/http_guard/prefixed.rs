//! A stream with bytes already read in front of it: what [`super::HeadGuard`]
//! buffered while checking a request head is read again by Pingora first.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug)]
pub struct Prefixed {
    inner: Stream,
    buf: Vec<u8>,
    pos: usize,
}

impl Prefixed {
    pub fn new(inner: Stream) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// Bytes buffered and not yet read by Pingora.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Length of the request head at the front of the buffer (through its
    /// blank line), if it is all there. Leading blank lines (allowed between
    /// requests) count towards it.
    pub fn head_end(&self) -> Option<usize> {
        let data = &self.buf[self.pos..];
        let crlf = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 4);
        // Bare-LF line endings are accepted by Pingora's parser as well.
        let lf = data.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
        match (crlf, lf) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first `len` buffered bytes.
    pub fn head(&self, len: usize) -> &[u8] {
        &self.buf[self.pos..self.pos + len]
    }

    /// Reads more from the socket into the buffer. `Ok(false)` on EOF.
    /// Cancel-safe: dropped before completion (a timeout), it leaves the
    /// buffer as it was.
    pub async fn fill_at_least_one(&mut self) -> std::io::Result<bool> {
        if self.pos > 0 && self.pos == self.buf.len() {
            // Everything was consumed: release the memory.
            self.buf = Vec::new();
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        // `read_buf` fills spare capacity and only then extends the length.
        let n = self.inner.read_buf(&mut self.buf).await?;
        Ok(n > 0)
    }

    pub fn inner_mut(&mut self) -> &mut Stream {
        &mut self.inner
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.buf.len() {
            let n = out.remaining().min(self.buf.len() - self.pos);
            let pos = self.pos;
            out.put_slice(&self.buf[pos..pos + n]);
            self.pos += n;
            if self.pos == self.buf.len() {
                self.buf = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Prefixed {
    async fn shutdown(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
