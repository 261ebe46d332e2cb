//! One HTTP/2 stream as the forwarder's client ([`Client`]): reads give the
//! request's DATA, writes become the response's DATA as the client's flow
//! control allows, heads become HEADERS frames.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::head::Fields;
use crate::h1::body::Output;
use crate::h1::client::Client;
use crate::h1::head::{Framing, Response};

pub struct H2Client {
    body: RecvStream,
    /// DATA received and not yet read.
    pending: Bytes,
    respond: SendResponse<Bytes>,
    /// The response body, once its head went.
    send: Option<SendStream<Bytes>>,
    /// The stream was ended (or reset) from this side.
    done: bool,
}

impl H2Client {
    pub fn new(body: RecvStream, respond: SendResponse<Bytes>) -> Self {
        Self {
            body,
            pending: Bytes::new(),
            respond,
            send: None,
            done: false,
        }
    }

    /// Sends `resp` as the response's HEADERS, then `body` if there is one;
    /// `ends`: nothing more follows.
    fn respond_with(
        &mut self,
        resp: http::Response<()>,
        body: &[u8],
        ends: bool,
    ) -> io::Result<()> {
        let ends = ends && body.is_empty();
        let mut send = self.respond.send_response(resp, ends).map_err(h2_io)?;
        if !body.is_empty() {
            send.send_data(Bytes::copy_from_slice(body), true)
                .map_err(h2_io)?;
            self.done = true;
        }
        self.done |= ends;
        self.send = Some(send);
        Ok(())
    }

    /// Resets the stream (the response cannot be completed).
    pub fn reset(&mut self, reason: Reason) {
        if self.done {
            return;
        }
        self.done = true;
        match &mut self.send {
            Some(s) => s.send_reset(reason),
            None => self.respond.send_reset(reason),
        }
    }
}

fn h2_io(e: h2::Error) -> io::Error {
    io::Error::other(e)
}

fn broken(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, why)
}

impl Client for H2Client {
    type Head = Fields;
    const FRAMES_DATA: bool = true;

    fn take_buffered(&mut self, _max: usize, _out: &mut Vec<u8>) -> usize {
        0
    }

    async fn send_interim(&mut self, head: Fields) -> io::Result<()> {
        let resp = head.into_response().ok_or_else(|| broken("bad head"))?;
        self.respond.send_informational(resp).map_err(h2_io)
    }

    async fn send_head(&mut self, head: Fields, _keep: bool, ends: bool) -> io::Result<()> {
        let resp = head.into_response().ok_or_else(|| broken("bad head"))?;
        self.respond_with(resp, &[], ends)
    }

    fn output(&self, resp: &Response<Fields>) -> Output {
        if resp.framing == Framing::Chunked {
            Output::Dechunked
        } else {
            Output::AsIs
        }
    }

    async fn end(&mut self, trailers: &[u8]) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let send = self.send.as_mut().ok_or_else(|| broken("no response"))?;
        match super::head::trailers(trailers) {
            Some(map) => send.send_trailers(map).map_err(h2_io),
            None => send.send_data(Bytes::new(), true).map_err(h2_io),
        }
    }

    async fn abort(&mut self) {
        // The `h2` crate drops a stream's unsent frames when it is reset:
        // let the connection write the head and the body so far first (it
        // runs once this stream waits), as an HTTP/1 client gets them
        // before its connection closes.
        for _ in 0..2 {
            tokio::task::yield_now().await;
        }
        self.reset(Reason::CANCEL);
    }

    async fn answer(&mut self, wire: &[u8]) -> io::Result<()> {
        let (resp, len) = super::head::response(wire).ok_or_else(|| broken("bad answer"))?;
        self.respond_with(resp, wire.get(len..).unwrap_or_default(), true)
    }

    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let reset = match &mut self.send {
            Some(s) => s.poll_reset(cx),
            None => self.respond.poll_reset(cx),
        };
        reset.map(|_| ())
    }
}

/// The request body, as its DATA frames arrive; each is released to the
/// client's flow-control window once it is here, so at most one frame and
/// the window wait in memory.
impl AsyncRead for H2Client {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() {
            match ready!(this.body.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.body.flow_control().release_capacity(data.len());
                    this.pending = data;
                }
                Some(Err(e)) => return Poll::Ready(Err(h2_io(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

/// The response body: each write sends what the stream's flow-control
/// window takes (waiting while it is closed).
impl AsyncWrite for H2Client {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let Some(send) = self.send.as_mut() else {
            return Poll::Ready(Err(broken("no response")));
        };
        send.reserve_capacity(buf.len());
        loop {
            let room = send.capacity();
            if room > 0 {
                let n = room.min(buf.len());
                send.send_data(Bytes::copy_from_slice(&buf[..n]), false)
                    .map_err(h2_io)?;
                return Poll::Ready(Ok(n));
            }
            match ready!(send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(h2_io(e))),
                None => return Poll::Ready(Err(broken("stream closed"))),
            }
        }
    }

    /// Frames go out as the connection is driven; nothing is held here.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for H2Client {
    /// A stream left without its end (a task cancelled mid-response) is
    /// reset rather than left open.
    fn drop(&mut self) {
        self.reset(Reason::CANCEL);
    }
}
