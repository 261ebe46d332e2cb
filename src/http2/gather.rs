//! The client socket as the `h2` crate writes to it: frames gather here and
//! leave when the connection loop says, after every stream that had
//! something to send has sent it — one write (one TLS flight) for all the
//! responses ready at that moment.
//!
//! The `h2` crate flushes its socket after each DATA frame larger than 256
//! bytes (it holds one such payload at a time), so on its own every 1 KiB
//! response cost a write, a TLS record and a system call. Here its flushes
//! only mark the end of a batch; [`Flusher::poll_out`], polled by the loop
//! once its streams and the connection are waiting, does the writing. At
//! most [`LIMIT`] bytes wait here: past that a write goes out first (the
//! client's reading pushes back on the connection as before). The buffer is
//! freed once written, so an idle connection keeps none.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes gathered before a write goes out on its own.
const LIMIT: usize = 64 * 1024;

struct Io<T> {
    io: T,
    /// Gathered, not yet written: `out[written..]`.
    out: Vec<u8>,
    written: usize,
}

/// The socket half given to the `h2` crate.
pub struct Socket<T>(Arc<Mutex<Io<T>>>);

/// The half the connection loop keeps, to write out what gathered.
pub struct Flusher<T>(Arc<Mutex<Io<T>>>);

/// Splits `io` into the socket `h2` reads and writes, and its flusher.
pub fn gathered<T>(io: T) -> (Socket<T>, Flusher<T>) {
    let shared = Arc::new(Mutex::new(Io {
        io,
        out: Vec::new(),
        written: 0,
    }));
    (Socket(Arc::clone(&shared)), Flusher(shared))
}

fn lock<T>(m: &Mutex<Io<T>>) -> MutexGuard<'_, Io<T>> {
    // One task uses both halves: a poisoned lock only follows a panic in it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: AsyncWrite + Unpin> Io<T> {
    /// Writes out everything gathered, then flushes the socket.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        if !self.out.is_empty() {
            // Freed, not kept: an idle connection holds no buffer.
            self.out = Vec::new();
            self.written = 0;
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn gather(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.out.len() - self.written >= LIMIT {
            ready!(self.poll_out(cx))?;
        }
        let mut n = 0;
        for b in bufs {
            self.out.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }
}

impl<T: AsyncWrite + Unpin> Flusher<T> {
    /// Ready once everything gathered is written (at once when nothing
    /// is); `Pending` while the socket is full.
    pub fn poll_out(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.0).poll_out(cx)
    }

    /// Whether anything waits to be written.
    pub fn pending(&self) -> bool {
        let io = lock(&self.0);
        io.written < io.out.len()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Socket<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut lock(&self.0).io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Socket<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        lock(&self.0).gather(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        lock(&self.0).gather(cx, bufs)
    }

    /// Vectored, so the `h2` crate hands over a frame and its payload in
    /// one call.
    fn is_write_vectored(&self) -> bool {
        true
    }

    /// The end of a batch: the connection loop writes it out.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut io = lock(&self.0);
        ready!(io.poll_out(cx))?;
        Pin::new(&mut io.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_wait_for_the_flusher_and_leave_together() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let (mut socket, flusher) = gathered(ours);
        socket.write_all(b"one ").await.unwrap();
        socket.write_all(b"two").await.unwrap();
        socket.flush().await.unwrap();
        assert!(flusher.pending());
        let mut got = [0u8; 16];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(50), theirs.read(&mut got)).await;
        assert!(early.is_err(), "written before the flusher ran");
        std::future::poll_fn(|cx| flusher.poll_out(cx))
            .await
            .unwrap();
        assert!(!flusher.pending());
        let n = theirs.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"one two");
    }

    #[tokio::test]
    async fn past_the_limit_a_write_goes_out_first() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let (mut socket, _flusher) = gathered(ours);
        let big = vec![7u8; LIMIT];
        socket.write_all(&big).await.unwrap();
        socket.write_all(b"x").await.unwrap();
        let mut got = vec![0u8; LIMIT];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
    }
}
