//! Response compression for routes with `compress` (SPEC "Route policies"):
//! decided once here, applied by each engine.
//!
//! ```text
//! request  ── Offer::new: the route's rules + the coding the client's
//!             Accept-Encoding picks (accept.rs); none for HEAD
//! response ── Offer::decide on status and fields: compress with that
//!             coding, or not; and whether `Vary: Accept-Encoding` is added
//! head     ── Content-Encoding set, Content-Length out (the body goes in
//!             chunks, or close-delimited to an HTTP/1.0 client), Vary
//! body     ── Encoder (encoder.rs), streamed: the HTTP/1 forwarder and the
//!             HTTP/2 front through `relay` (writer.rs), which flushes
//!             the codec whenever the backend pauses; Pingora's path
//!             through `pingora.rs`, a flush per backend read
//! ```
//!
//! A route without `compress` has no [`Offer`]: the engines check one
//! `Option` per response and do nothing else.

mod accept;
pub mod encoder;
pub mod pingora;
mod writer;

use std::sync::Arc;

use crate::config::{Compress, MediaRange};
use crate::proxy::headers::{has_token, last_coding_is_chunked};

pub use encoder::Encoder;
pub use writer::relay;

/// A content coding switchyard produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br,
    Zstd,
    Gzip,
}

impl Coding {
    /// The server's preference on equal weight, best first.
    pub const PREFERRED: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// Its `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// `name` (an `Accept-Encoding` item) is this coding.
    fn matches(self, name: &[u8]) -> bool {
        name.eq_ignore_ascii_case(self.token().as_bytes())
            || (self == Coding::Gzip && name.eq_ignore_ascii_case(b"x-gzip"))
    }
}

/// What a request to a `compress` route brings to its response: the
/// route's rules and the coding the client takes best, if any.
#[derive(Debug, Clone)]
pub struct Offer {
    rules: Arc<Compress>,
    coding: Option<Coding>,
}

/// What becomes of one response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Compress the body with it.
    pub coding: Option<Coding>,
    pub vary: Vary,
}

/// What `Vary: Accept-Encoding` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vary {
    /// Nothing: the response does not depend on Accept-Encoding, or its
    /// `Vary` already says so (or is `*`).
    Keep,
    /// A `Vary: Accept-Encoding` field of its own (the response has none).
    Add,
    /// `, Accept-Encoding` appended to the response's first `Vary`.
    Append,
}

impl Decision {
    /// Nothing changes.
    pub const NONE: Decision = Decision {
        coding: None,
        vary: Vary::Keep,
    };
}

impl Offer {
    /// The offer of a request with `method` and `Accept-Encoding` lines
    /// `accept_encoding`.
    pub fn new<'v>(
        rules: &Arc<Compress>,
        method: &http::Method,
        accept_encoding: impl IntoIterator<Item = &'v [u8]>,
    ) -> Self {
        // A HEAD response is never compressed (its fields would describe a
        // body that is not sent).
        let coding = if method == http::Method::HEAD {
            None
        } else {
            accept::best(accept_encoding)
        };
        Self {
            rules: Arc::clone(rules),
            coding,
        }
    }

    /// The offer for a request whose header map is built.
    pub fn for_request(rules: &Arc<Compress>, req: &::pingora::http::RequestHeader) -> Self {
        let lines = req.headers.get_all(http::header::ACCEPT_ENCODING);
        Self::new(rules, &req.method, lines.iter().map(|v| v.as_bytes()))
    }

    /// Decides for a response with `status` and header `fields`. Compressed
    /// only when the response has no `Content-Encoding`, `Content-Range`,
    /// `Trailer` (announced trailers: see [`pingora`]) or `Cache-Control:
    /// no-transform`, its `Content-Type` matches the
    /// route's `types`, its `Content-Length` (if any) is at least
    /// `min_bytes` (and not 0), its status has a body to compress (not 1xx, 204, 206
    /// or 304), no transfer coding but `chunked` frames it, and the client
    /// accepts a coding. A response that qualifies but for the client's
    /// `Accept-Encoding` still gets `Vary: Accept-Encoding`.
    pub fn decide<'f>(
        &self,
        status: u16,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
    ) -> Decision {
        if status < 200 || matches!(status, 204 | 206 | 304) {
            return Decision::NONE;
        }
        let (mut typed, mut small, mut refused) = (false, false, false);
        let (mut vary_present, mut vary_listed) = (false, false);
        for (name, value) in fields {
            if name.eq_ignore_ascii_case(b"content-type") {
                typed = media_type(value)
                    .is_some_and(|t| self.rules.types.iter().any(|r| r.matches(t)));
            } else if name.eq_ignore_ascii_case(b"content-length") {
                let len = crate::h1::head::plain_number(value);
                // (An empty body stays empty, whatever `min_bytes` says.)
                small = len.is_some_and(|n| n == 0 || n < self.rules.min_bytes);
            } else if name.eq_ignore_ascii_case(b"content-encoding")
                || name.eq_ignore_ascii_case(b"content-range")
                || name.eq_ignore_ascii_case(b"trailer")
            {
                refused = true;
            } else if name.eq_ignore_ascii_case(b"cache-control") {
                refused |= has_token(value, b"no-transform");
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                refused |= !last_coding_is_chunked(value);
            } else if name.eq_ignore_ascii_case(b"vary") {
                vary_present = true;
                vary_listed |= has_token(value, b"accept-encoding") || has_token(value, b"*");
            }
        }
        if !typed || small || refused {
            return Decision::NONE;
        }
        let vary = match (vary_listed, vary_present) {
            (true, _) => Vary::Keep,
            (false, true) => Vary::Append,
            (false, false) => Vary::Add,
        };
        Decision {
            coding: self.coding,
            vary,
        }
    }
}

/// `type/subtype` of a `Content-Type` value, parameters and spaces left
/// out (compared without case by [`MediaRange::matches`]).
fn media_type(value: &[u8]) -> Option<&[u8]> {
    let essence = value.split(|b| *b == b';').next()?.trim_ascii();
    (!essence.is_empty()).then_some(essence)
}

impl MediaRange {
    /// `media_type` (`type/subtype`, any case) is in this range.
    pub fn matches(&self, media_type: &[u8]) -> bool {
        match self {
            MediaRange::Exact(t) => media_type.eq_ignore_ascii_case(t.as_bytes()),
            MediaRange::AnySubtype(t) => {
                media_type.len() > t.len() + 1
                    && media_type[..t.len()].eq_ignore_ascii_case(t.as_bytes())
                    && media_type[t.len()] == b'/'
            }
        }
    }
}

/// What a compressed head does with one backend field: keep it, drop it
/// (`Content-Length`), or write it with `, Accept-Encoding` appended (the
/// first `Vary`). `vary` becomes [`Vary::Keep`] once appended.
pub fn edit_field(decision: &mut Decision, name: &[u8], value: &[u8]) -> Edit {
    if decision.coding.is_some() && name.eq_ignore_ascii_case(b"content-length") {
        return Edit::Drop;
    }
    if decision.vary == Vary::Append && name.eq_ignore_ascii_case(b"vary") {
        decision.vary = Vary::Keep;
        let mut v = value.to_vec();
        v.extend_from_slice(b", Accept-Encoding");
        return Edit::Replace(v);
    }
    Edit::Keep
}

/// See [`edit_field`].
pub enum Edit {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

/// The fields a head gains after the backend's: `Content-Encoding`, and
/// `Vary` when the response had none. `chunk`: the body had a length, and
/// an HTTP/1.1 client now gets it in chunks.
pub fn added_fields(
    decision: &Decision,
    chunk: bool,
) -> impl Iterator<Item = (&'static [u8], &'static [u8])> {
    let coding = decision
        .coding
        .map(|c| (&b"Content-Encoding"[..], c.token().as_bytes()));
    let chunked = (decision.coding.is_some() && chunk)
        .then_some((&b"Transfer-Encoding"[..], &b"chunked"[..]));
    let vary = (decision.vary == Vary::Add).then_some((&b"Vary"[..], &b"Accept-Encoding"[..]));
    coding.into_iter().chain(chunked).chain(vary)
}

#[cfg(test)]
mod tests;
