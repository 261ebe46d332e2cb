//! `max_body_bytes` on a body that streams: a request whose
//! `Content-Length` is over the limit is refused before anything is
//! forwarded ([`super::admit`]); one of unannounced length (chunked, an
//! HTTP/2 stream without `content-length`) is counted as it passes, and the
//! read that would pass the limit fails instead: the backend connection is
//! then closed with the request incomplete, and the client gets 413 if no
//! response has started.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// What is left of a body's allowance.
#[derive(Debug, Clone, Copy)]
pub struct Allowance {
    left: u64,
}

impl Allowance {
    pub fn new(limit: u64) -> Self {
        Self { left: limit }
    }

    /// Counts `n` more bytes; false once the body is over the limit.
    pub fn take(&mut self, n: u64) -> bool {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }
}

/// A reader that fails the read that would pass the allowance, and says so.
pub struct Capped<'r, R> {
    inner: &'r mut R,
    allowance: Allowance,
    /// The limit was passed.
    pub over: bool,
}

impl<'r, R> Capped<'r, R> {
    pub fn new(inner: &'r mut R, limit: u64) -> Self {
        Self {
            inner,
            allowance: Allowance::new(limit),
            over: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Capped<'_, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut *this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = (buf.filled().len() - before) as u64;
            if !this.allowance.take(n) {
                // The bytes that passed the limit are not handed on.
                buf.set_filled(before);
                this.over = true;
                return Poll::Ready(Err(io::Error::other("request body over max_body_bytes")));
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn an_allowance_runs_out_past_its_limit() {
        let mut a = Allowance::new(10);
        assert!(a.take(4) && a.take(6));
        assert!(!a.take(1));
    }

    #[tokio::test]
    async fn the_read_that_passes_the_limit_fails() {
        let mut body: &[u8] = b"0123456789";
        let mut capped = Capped::new(&mut body, 5);
        let mut out = Vec::new();
        let read = capped.read_to_end(&mut out).await;
        assert!(read.is_err() && capped.over);
        assert!(out.len() <= 5);
        let mut body: &[u8] = b"01234";
        let mut capped = Capped::new(&mut body, 5);
        let mut out = Vec::new();
        capped.read_to_end(&mut out).await.unwrap();
        assert_eq!((out.len(), capped.over), (5, false));
    }
}
