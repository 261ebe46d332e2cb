//! Keeping a request so it can go to another backend: when the upstream's
//! `retry_on` names more than connect failures and the request is
//! replayable ([`crate::proxy::retry::replayable`]), its body (≤ 64 KiB) is
//! read whole before the first try and sent with the head on every try.
//! Other requests stream their body as before, and are only retried after
//! a connect failure.

use tokio::io::AsyncReadExt;

use super::{Exchange, RequestBody};
use crate::config::RetryReason;
use crate::h1::client::Client;
use crate::h1::within::within;
use crate::proxy::retry;
use crate::proxy::retry::Next;

impl<C: Client> Exchange<'_, C> {
    /// Decides whether this request is replayable and, if so, appends its
    /// body to `wire` (the request head). False when the client failed to
    /// send the body it announced.
    pub(super) async fn keep_for_replay(&mut self, wire: &mut Vec<u8>) -> bool {
        let body_len = match self.body {
            RequestBody::None => Some(0),
            RequestBody::Length(n) => Some(n),
            RequestBody::Chunked => None,
        };
        self.replayable =
            self.upstream.spec.retry_on.beyond_connect() && retry::replayable(self.req, body_len);
        let RequestBody::Length(n) = self.body else {
            return true;
        };
        if !self.replayable {
            return true;
        }
        // At most MAX_REPLAY_BODY, as `replayable` said.
        let n = n as usize;
        let start = wire.len();
        wire.reserve(n);
        let got = self.client.take_buffered(n, wire);
        if got < n {
            wire.resize(start + n, 0);
            let rest = &mut wire[start + got..];
            let read = within(self.client_timeout, self.client.read_exact(rest)).await;
            if !matches!(read, Some(Ok(_))) {
                return false;
            }
        }
        // The body now travels with the head.
        self.body = RequestBody::None;
        true
    }

    /// The next attempt after the current one failed for `reason` (not a
    /// connect failure), if the request may be retried: the failed attempt
    /// is then reported to its breaker.
    pub(super) fn retry(&mut self, reason: RetryReason) -> Option<Next> {
        if self.interim_sent {
            return None;
        }
        let (route, req, ip) = (self.route, self.req, self.client_ip);
        let replayable = self.replayable;
        let key = &self.site.sticky_key;
        let next = retry::next_try(route, req, ip, key, self.ctx, reason, replayable)?;
        if let Some(failed) = self.ctx.attempt.take() {
            self.upstream.report(failed, retry::ended_of(reason));
        }
        Some(next)
    }
}
