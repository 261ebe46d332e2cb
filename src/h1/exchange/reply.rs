//! The backend's response passed on to the client: the head, then the
//! body streamed (compressed when the route and the client agree), the
//! backend connection back to the idle pool when the response ended cleanly.

use pingora::server::ShutdownWatch;
use tokio::net::TcpStream;

use super::Exchange;
use crate::compress;
use crate::h1::body::{self, Broken};
use crate::h1::client::{self, Client};
use crate::h1::head::{self, Framing};
use crate::h1::within::within;
use crate::proxy::drain;
use crate::upstream::Ended;

impl<C: Client> Exchange<'_, C> {
    /// Passes the backend's response on to the client.
    pub(super) async fn respond(
        &mut self,
        mut conn: TcpStream,
        index: usize,
        resp: head::Response<C::Head>,
        rest: Vec<u8>,
        client_close: bool,
        shutdown: &ShutdownWatch,
    ) -> (u16, Option<Ended>, bool) {
        let status = resp.status;
        self.ctx.upstream_status = Some(status);
        let keep = !client_close
            && !self.body_unfinished
            && (resp.framing != Framing::UntilClose || resp.rechunk)
            && !*shutdown.borrow()
            && !drain::handing_over();
        let output = self.client.output(&resp);
        let ends = client::bodiless(&resp);
        let head::Response {
            head,
            framing,
            reusable,
            coding,
            ..
        } = resp;
        let sent = within(self.client_timeout, self.client.send_head(head, keep, ends)).await;
        if !matches!(sent, Some(Ok(()))) {
            return (status, None, false);
        }
        // A client that stops taking the body (an HTTP/1 client that does
        // not read, an HTTP/2 one that withholds its window) is given up on
        // after the client timeout, as a silent backend is after its own.
        let gaps = body::Gaps {
            read: self.upstream.spec.read_timeout,
            write: self.client_timeout,
        };
        let mut trailers = Vec::new();
        let to = &mut Counted(self);
        let relayed = match coding {
            // Boxed: its state would otherwise enlarge every connection's
            // future, compressing or not.
            Some(coding) => {
                let chunked = !C::FRAMES_DATA;
                Box::pin(compress::relay(
                    &mut conn,
                    to,
                    framing,
                    coding,
                    chunked,
                    &rest,
                    gaps,
                    &mut trailers,
                ))
                .await
            }
            None => body::relay(&mut conn, to, framing, output, &rest, gaps, &mut trailers).await,
        };
        match relayed {
            Ok(left) => {
                let ended = within(self.client_timeout, self.client.end(&trailers)).await;
                // (Not when the request body was cut short: the backend
                // still waits for the rest of it.)
                if reusable && left.is_empty() && !self.body_unfinished {
                    self.route.idle.put(index, conn, self.owner().copied());
                }
                let client_ok = matches!(ended, Some(Ok(())));
                (status, Some(Ended::Answered(status)), keep && client_ok)
            }
            // Cut short by the backend: the client must not mistake the
            // response for complete, so its connection closes (its
            // stream is reset).
            Err(Broken::From) => {
                within(self.client_timeout, self.client.abort()).await;
                (status, Some(Ended::Reset), false)
            }
            Err(Broken::To) => (status, None, false),
        }
    }
}

/// The client side of a response body: counts what is sent.
struct Counted<'e, 'a, C>(&'e mut Exchange<'a, C>);

impl<C: Client> tokio::io::AsyncWrite for Counted<'_, '_, C> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self.0;
        let polled = std::pin::Pin::new(&mut *this.client).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            this.sent += n;
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0.client).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0.client).poll_shutdown(cx)
    }
}
