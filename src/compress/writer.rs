//! A compressed body on the forwarder's engines (the HTTP/1 forwarder and
//! the HTTP/2 front): [`relay`] passes the backend's body through
//! [`crate::h1::body::relay`] as data only (its chunk framing taken off),
//! into a writer that compresses each piece and writes the result on,
//! framed as chunks for an HTTP/1.1 client, bare for an HTTP/2 stream.
//!
//! Flushing follows the relay's: when the next backend read would wait,
//! the relay flushes its writer, and here that is a codec flush first, so
//! what the backend sent so far reaches the client decodable (an SSE event
//! is not held back for the next one). A body that arrives at once is
//! compressed in as few blocks as it fits.

use std::io::{self, Write as _};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Coding, Encoder};
use crate::h1::body::{self, Broken, Gaps, Output};
use crate::h1::head::Framing;
use crate::h1::within::within;

/// Copies a body framed by `framing` from `from` to `to`, compressed with
/// `coding`, as [`body::relay`] does (same gaps, same handling of a cut:
/// `Err(Broken::From)`, and the client is then not sent an end). `chunked`:
/// `to` gets chunks, ended by the last chunk with the backend's trailers;
/// else bare bytes, and the trailers are left in `trailers` for the client
/// to send its own way. Returns what followed the body, as the relay does.
#[allow(clippy::too_many_arguments)]
pub async fn relay<R, W>(
    from: &mut R,
    to: &mut W,
    framing: Framing,
    coding: Coding,
    chunked: bool,
    pending: &[u8],
    gaps: Gaps,
    trailers: &mut Vec<u8>,
) -> Result<Vec<u8>, Broken>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let encoder = Encoder::new(coding).map_err(|_| Broken::To)?;
    let mut out = Compressing {
        to,
        encoder,
        chunked,
        framed: Vec::new(),
        written: 0,
        scratch: Vec::new(),
        dirty: false,
    };
    // The data alone reaches the encoder: a chunked body is de-chunked.
    let data = match framing {
        Framing::Chunked => Output::Dechunked,
        _ => Output::AsIs,
    };
    let rest = body::relay(from, &mut out, framing, data, pending, gaps, trailers).await?;
    let finished = within(gaps.write, out.finish(trailers)).await;
    match finished {
        Some(Ok(())) => Ok(rest),
        _ => Err(Broken::To),
    }
}

/// The compressing writer between the relay and the client.
struct Compressing<'w, W> {
    to: &'w mut W,
    encoder: Encoder,
    chunked: bool,
    /// Compressed bytes, framed, not yet written to `to` (from `written`).
    framed: Vec<u8>,
    written: usize,
    /// The encoder's output before framing.
    scratch: Vec<u8>,
    /// Data went in since the last codec flush.
    dirty: bool,
}

impl<W: AsyncWrite + Unpin> Compressing<'_, W> {
    /// Frames what the encoder put in `scratch` onto `framed`.
    fn frame(&mut self) {
        if self.scratch.is_empty() {
            return;
        }
        if self.chunked {
            let _ = write!(self.framed, "{:x}\r\n", self.scratch.len());
            self.framed.extend_from_slice(&self.scratch);
            self.framed.extend_from_slice(b"\r\n");
        } else {
            self.framed.extend_from_slice(&self.scratch);
        }
        self.scratch.clear();
    }

    /// Writes out `framed`.
    fn poll_framed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.framed.len() {
            let n = ready!(Pin::new(&mut *self.to).poll_write(cx, &self.framed[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.framed.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// The end of the stream, then (chunked) the last chunk with the
    /// trailer lines; everything written and flushed.
    async fn finish(&mut self, trailers: &[u8]) -> io::Result<()> {
        self.encoder.finish(&mut self.scratch)?;
        self.frame();
        if self.chunked {
            self.framed.extend_from_slice(b"0\r\n");
            self.framed.extend_from_slice(trailers);
            self.framed.extend_from_slice(b"\r\n");
        }
        std::future::poll_fn(|cx| self.poll_framed(cx)).await?;
        self.to.flush().await
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Compressing<'_, W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // What is still waiting goes first: the client sets the pace.
        ready!(this.poll_framed(cx))?;
        this.encoder.push(buf, &mut this.scratch)?;
        this.dirty = true;
        this.frame();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if std::mem::take(&mut this.dirty) {
            this.encoder.flush(&mut this.scratch)?;
            this.frame();
        }
        ready!(this.poll_framed(cx))?;
        Pin::new(&mut *this.to).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut *self.to).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::encoder::tests::decode;
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    fn gaps() -> Gaps {
        Gaps::both(Duration::from_secs(2))
    }

    /// The data of an HTTP/1 chunked body and its trailer lines.
    fn dechunk(wire: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut data = Vec::new();
        let mut trailers = Vec::new();
        let mut c = body::Chunked::default();
        let end = c
            .advance_with(wire, &mut |r| data.extend_from_slice(&wire[r]), &mut |b| {
                trailers.push(b)
            })
            .unwrap();
        assert_eq!(end, Some(wire.len()));
        (data, trailers)
    }

    #[tokio::test]
    async fn a_chunked_body_is_compressed_in_chunks_with_its_trailers() {
        let (mut tx, mut rx) = tokio::io::duplex(4096);
        tx.write_all(b"lo\r\n6\r\n world\r\n0\r\nX-Sum: 5\r\n\r\nNEXT")
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut trailers = Vec::new();
        let rest = relay(
            &mut rx,
            &mut out,
            Framing::Chunked,
            Coding::Gzip,
            true,
            b"5\r\nhel",
            gaps(),
            &mut trailers,
        )
        .await
        .unwrap();
        assert_eq!(rest, b"NEXT");
        let (data, sent_trailers) = dechunk(&out);
        assert_eq!(sent_trailers, b"X-Sum: 5\r\n");
        assert_eq!(decode(Coding::Gzip, &data), b"hello world");
    }

    #[tokio::test]
    async fn a_length_body_goes_bare_to_a_client_that_frames_data() {
        let (mut tx, mut rx) = tokio::io::duplex(4096);
        tx.write_all(b"defgh").await.unwrap();
        for coding in Coding::PREFERRED {
            let mut out = Vec::new();
            let rest = relay(
                &mut rx,
                &mut out,
                Framing::Length(8),
                coding,
                false,
                b"abc",
                gaps(),
                &mut Vec::new(),
            )
            .await
            .unwrap();
            assert!(rest.is_empty());
            assert_eq!(decode(coding, &out), b"abcdefgh");
            tx.write_all(b"defgh").await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_body_cut_short_is_broken_and_not_ended() {
        let (tx, mut rx) = tokio::io::duplex(64);
        drop(tx);
        let mut out = Vec::new();
        let r = relay(
            &mut rx,
            &mut out,
            Framing::Length(10),
            Coding::Gzip,
            true,
            b"abc",
            gaps(),
            &mut Vec::new(),
        )
        .await;
        assert!(matches!(r, Err(Broken::From)));
        assert!(!out.ends_with(b"0\r\n\r\n"));
    }

    #[tokio::test]
    async fn what_came_before_a_pause_is_sent_decodable() {
        let (mut tx, mut rx) = tokio::io::duplex(4096);
        let (mut client, mut seen) = tokio::io::duplex(64 * 1024);
        let relaying = tokio::spawn(async move {
            relay(
                &mut rx,
                &mut client,
                Framing::UntilClose,
                Coding::Br,
                false,
                b"",
                gaps(),
                &mut Vec::new(),
            )
            .await
            .is_ok()
        });
        tx.write_all(b"data: one\n\n").await.unwrap();
        // The backend pauses: the event must arrive whole before more comes.
        let mut decoded = Vec::new();
        let mut d = brotli::DecompressorWriter::new(&mut decoded, 4096);
        let mut buf = [0u8; 1024];
        while d.get_ref().len() < 11 {
            let n = tokio::time::timeout(Duration::from_secs(2), seen.read(&mut buf))
                .await
                .expect("the event before the pause ends")
                .unwrap();
            assert!(n > 0);
            d.write_all(&buf[..n]).unwrap();
            d.flush().unwrap();
        }
        assert_eq!(d.get_ref().as_slice(), b"data: one\n\n");
        drop(tx);
        assert!(relaying.await.unwrap());
    }
}
