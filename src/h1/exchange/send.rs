//! The request to the backend (head, then the body as it streams, cut at
//! `max_body_bytes`) and the backend's response head, interim ones passed
//! on.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Exchange, Failed, RequestBody, MAX_RESPONSE_HEAD, RESPONSE_READ};
use crate::h1::body::{self, Broken, Output};
use crate::h1::client::Client;
use crate::h1::head::{self, Framing, Parsed};
use crate::h1::within::within;
use crate::policy::body_limit::Capped;
use crate::proxy::{headers, retry};

impl<C: Client> Exchange<'_, C> {
    /// Sends the request on `conn` and reads the response head. Returns it
    /// with the bytes read after it.
    pub(super) async fn exchange(
        &mut self,
        conn: &mut TcpStream,
        wire: &[u8],
        additions: &headers::ResponseAdditions,
    ) -> Result<(Box<head::Response<C::Head>>, Vec<u8>), Failed> {
        let read_timeout = self.upstream.spec.read_timeout;
        // The head and whatever of the body is already here, in one write.
        let body_len = match self.body {
            RequestBody::None => 0,
            RequestBody::Length(n) => n,
            RequestBody::Chunked => u64::MAX,
        };
        let bodiless = body_len == 0;
        let mut with_body = Vec::new();
        let (out, inline) = if bodiless || self.body == RequestBody::Chunked {
            (wire, 0)
        } else {
            with_body.reserve(wire.len() + 256);
            with_body.extend_from_slice(wire);
            let inline = self.client.take_buffered(body_len as usize, &mut with_body);
            (&with_body[..], inline as u64)
        };
        match within(read_timeout, conn.write_all(out)).await {
            Some(Ok(())) => {}
            Some(Err(_)) if bodiless => return Err(Failed::Stale),
            Some(Err(_)) => return Err(Failed::Reset),
            None => return Err(Failed::Timeout),
        }
        if inline < body_len {
            // A body of unknown length goes in chunks, ended by the last
            // chunk when the client's stream ends.
            let (framing, output) = match self.body {
                RequestBody::Chunked => (Framing::UntilClose, Output::Chunked),
                _ => (Framing::Length(body_len - inline), Output::AsIs),
            };
            let gaps = body::Gaps {
                read: self.client_timeout,
                write: self.upstream.spec.read_timeout,
            };
            let (mut from_backend, mut to_backend) = conn.split();
            // (A request body is copied as it is: trailers included.)
            let mut none = Vec::new();
            let mut byte = [0u8; 1];
            // The body is read from the client as it comes: a failed read
            // is the client's, a failed write the backend's. Meanwhile the
            // backend may answer (or close) before it has the whole body:
            // that answer is passed on at once, as on Pingora's path, and
            // the client's connection closes after it (the rest of its body
            // is never read).
            let limit = match self.route.policy.max_body_bytes {
                0 => u64::MAX,
                n => n,
            };
            let mut from_client = Capped::new(&mut *self.client, limit);
            let relayed = tokio::select! {
                biased;
                r = body::relay(&mut from_client, &mut to_backend, framing, output, &[], gaps, &mut none) => Some(r),
                _ = from_backend.peek(&mut byte) => None,
            };
            let over = from_client.over;
            match relayed {
                Some(Ok(_)) => {}
                Some(Err(Broken::From)) if over => return Err(Failed::TooLarge),
                Some(Err(Broken::From)) => return Err(Failed::Client),
                Some(Err(Broken::To)) => return Err(Failed::Reset),
                None => self.body_unfinished = true,
            }
        }
        let head_request = self.req.method == http::Method::HEAD;
        // Read into spare capacity: nothing is zeroed first.
        let mut buf: Vec<u8> = Vec::with_capacity(RESPONSE_READ);
        // An interim response went to the client: the backend answered, so
        // a close now is a failure, not a stale connection.
        let mut interim = false;
        loop {
            let had = buf.len();
            if buf.capacity() - had < RESPONSE_READ / 2 {
                buf.reserve(RESPONSE_READ);
            }
            // While the backend thinks, a client that gives up (an HTTP/2
            // stream reset) ends the exchange: its backend connection is
            // closed rather than left working for nobody.
            let read = tokio::time::timeout(read_timeout, conn.read_buf(&mut buf));
            let client = &mut *self.client;
            let gone = std::future::poll_fn(|cx| client.poll_gone(cx));
            let read = tokio::select! {
                biased;
                read = read => read,
                () = gone => return Err(Failed::Client),
            };
            let n = match read {
                Ok(Ok(n)) => n,
                Ok(Err(_)) if had == 0 && bodiless && !interim => return Err(Failed::Stale),
                Ok(Err(_)) if interim => return Err(Failed::Backend),
                Ok(Err(_)) => return Err(Failed::Reset),
                Err(_) => return Err(Failed::Timeout),
            };
            if n == 0 {
                return Err(if had == 0 && bodiless && !interim {
                    Failed::Stale
                } else if interim {
                    Failed::Backend
                } else {
                    Failed::Reset
                });
            }
            loop {
                match head::response::<C::Head>(&buf, head_request, additions) {
                    Parsed::Partial if buf.len() > MAX_RESPONSE_HEAD => {
                        return Err(Failed::Backend)
                    }
                    Parsed::Partial => break,
                    Parsed::Malformed => return Err(Failed::Backend),
                    Parsed::Done(r) if r.status == 101 => return Err(Failed::Backend),
                    // Interim responses (100, 102, 103) are passed on at
                    // once (RFC 9110 §15.2), as Pingora's path does.
                    Parsed::Done(r) if r.status < 200 => {
                        buf.drain(..r.head_len);
                        interim = true;
                        self.interim_sent = true;
                        let sent = self.client.send_interim(r.head);
                        if within(self.client_timeout, sent)
                            .await
                            .is_none_or(|r| r.is_err())
                        {
                            return Err(Failed::Client);
                        }
                    }
                    Parsed::Done(r) => {
                        if r.status == 429 || r.status == 503 {
                            self.note_retry_after(r.status, &buf[..r.head_len]);
                        }
                        // What follows the head (the body's first bytes)
                        // stays in this buffer.
                        buf.drain(..r.head_len);
                        return Ok((r, buf));
                    }
                }
            }
        }
    }
}

impl<C: Client> Exchange<'_, C> {
    /// `honor_retry_after` for the current attempt's backend, from the raw
    /// response head.
    fn note_retry_after(&self, status: u16, raw_head: &[u8]) {
        let Some(attempt) = &self.ctx.attempt else {
            return;
        };
        let value = retry::raw_header(raw_head, "retry-after");
        retry::note_retry_after(self.upstream, attempt.index, status, value);
    }
}
