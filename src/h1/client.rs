//! The client side of a forwarded exchange: where the request body comes
//! from and where the response goes. An HTTP/1 connection ([`Prefixed`])
//! and an HTTP/2 stream ([`crate::h2`]) are both one; everything between
//! (routing, choice, the backend exchange, header rules, retries, breaker
//! outcomes, metrics, access log) is the same code for both.
//!
//! Response heads are written by [`super::head::response`] in the client's
//! own form ([`Client::Head`]): HTTP/1 text, or an HTTP/2 stream's fields.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::body::Output;
use super::head::{Framing, HeadOut, Response};
use crate::http_guard::Prefixed;

/// A client the forwarder can answer. Reads give the request body (for an
/// HTTP/1 connection, after what [`Client::take_buffered`] took); writes
/// carry the response body, as [`Client::output`] frames it.
pub(crate) trait Client: AsyncRead + AsyncWrite + Unpin + Send {
    /// A response head as this client takes it.
    type Head: HeadOut + Send;

    /// The client frames body data itself (HTTP/2 DATA frames): a body
    /// compressed here is written to it bare rather than in chunks.
    const FRAMES_DATA: bool = false;

    /// Moves up to `max` bytes of request body already received into
    /// `out`; how many.
    fn take_buffered(&mut self, max: usize, out: &mut Vec<u8>) -> usize;

    /// Sends an interim (1xx) head.
    async fn send_interim(&mut self, head: Self::Head) -> io::Result<()>;

    /// Sends the final head. `keep`: an HTTP/1 connection stays open after
    /// the response; `ends`: no body follows.
    async fn send_head(&mut self, head: Self::Head, keep: bool, ends: bool) -> io::Result<()>;

    /// How the body of `resp` is written to this client.
    fn output(&self, resp: &Response<Self::Head>) -> Output;

    /// The response body went whole: flush it, end the stream (with
    /// `trailers`, the trailer lines of a body sent [`Output::Dechunked`]).
    async fn end(&mut self, trailers: &[u8]) -> io::Result<()>;

    /// The response was cut short: the client must not take it for whole.
    async fn abort(&mut self);

    /// One of switchyard's own answers, `wire` a whole HTTP/1 response.
    async fn answer(&mut self, wire: &[u8]) -> io::Result<()>;

    /// Ready once the client has given the request up (an HTTP/2 stream
    /// reset). An HTTP/1 client's close is found when it is written to.
    fn poll_gone(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

impl Client for Prefixed {
    type Head = Vec<u8>;

    fn take_buffered(&mut self, max: usize, out: &mut Vec<u8>) -> usize {
        Prefixed::take_buffered(self, max, out)
    }

    async fn send_interim(&mut self, head: Vec<u8>) -> io::Result<()> {
        self.write_all(&head).await?;
        self.write_all(b"\r\n").await?;
        self.flush().await
    }

    async fn send_head(&mut self, mut head: Vec<u8>, keep: bool, _ends: bool) -> io::Result<()> {
        // Said either way, as Pingora's HTTP/1 server does.
        head.extend_from_slice(if keep {
            b"Connection: keep-alive\r\n\r\n"
        } else {
            b"Connection: close\r\n\r\n"
        });
        self.write_all(&head).await
    }

    fn output(&self, resp: &Response<Vec<u8>>) -> Output {
        if resp.rechunk {
            Output::Chunked
        } else {
            Output::AsIs
        }
    }

    async fn end(&mut self, _trailers: &[u8]) -> io::Result<()> {
        // (Trailers went with the body: chunked bodies are copied whole.)
        self.flush().await
    }

    async fn abort(&mut self) {
        // What came before the cut still goes; the connection then closes.
        let _ = self.flush().await;
    }

    async fn answer(&mut self, wire: &[u8]) -> io::Result<()> {
        self.write_all(wire).await?;
        self.flush().await
    }
}

/// A body of this framing has nothing to send.
pub(crate) fn bodiless<H>(resp: &Response<H>) -> bool {
    resp.framing == Framing::Empty
}
