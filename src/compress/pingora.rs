//! Compression on Pingora's proxy path: the head edited in
//! `response_filter` ([`apply`]), the body in `response_body_filter`
//! ([`BodyEncoder::filter`]). Pingora calls the body filter once per
//! backend read, and no later call says whether the backend paused, so
//! each read is compressed and flushed at once (a few bytes per read;
//! server-sent events arrive event by event). See [`BodyEncoder::finish`]
//! for a body that ends with trailers.

use std::sync::Mutex;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, Result};

use super::{Coding, Decision, Encoder, Offer, Vary};

/// The decision for `resp` under `offer`, applied to its head: `Content-
/// Encoding` set, `Content-Length` out and the body chunked (Pingora then
/// writes it close-delimited to an HTTP/1.0 client, and HTTP/2 frames it
/// itself), `Vary` extended. Returns the body's encoder when compressing.
pub fn apply(offer: &Offer, resp: &mut ResponseHeader) -> Result<Option<BodyEncoder>> {
    let fields = resp
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    let decision = offer.decide(resp.status.as_u16(), fields);
    if decision == Decision::NONE {
        return Ok(None);
    }
    match decision.vary {
        Vary::Keep => {}
        Vary::Add => {
            resp.append_header(http::header::VARY, "Accept-Encoding")?;
        }
        Vary::Append => {
            let mut joined = Vec::new();
            for v in resp.headers.get_all(http::header::VARY) {
                joined.extend_from_slice(v.as_bytes());
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(b"Accept-Encoding");
            let value = http::HeaderValue::from_bytes(&joined)
                .map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "vary"))?;
            resp.insert_header(http::header::VARY, value)?;
        }
    }
    let Some(coding) = decision.coding else {
        return Ok(None);
    };
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.insert_header(http::header::CONTENT_ENCODING, coding.token())?;
    resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    BodyEncoder::new(coding).map(Some)
}

/// One response body's encoder, in the request's context. (Behind a
/// `Mutex` only because Pingora wants the context `Sync`; it is reached
/// through `&mut`, so never locked.)
pub struct BodyEncoder(Mutex<Encoder>);

impl BodyEncoder {
    fn new(coding: Coding) -> Result<Self> {
        let encoder = Encoder::new(coding).map_err(internal)?;
        Ok(Self(Mutex::new(encoder)))
    }

    /// Compresses one piece of the body in place: what it makes decodable
    /// now, or at `end` the rest of the stream. A piece that makes nothing
    /// leaves `None` (an empty chunk would end an HTTP/1 body).
    pub fn filter(&mut self, body: &mut Option<Bytes>, end: bool) -> Result<()> {
        let encoder = self.0.get_mut().map_err(|_| internal("poisoned"))?;
        let mut out = Vec::new();
        if let Some(data) = body.as_deref().filter(|d| !d.is_empty()) {
            encoder.push(data, &mut out).map_err(internal)?;
            if !end {
                encoder.flush(&mut out).map_err(internal)?;
            }
        }
        if end {
            encoder.finish(&mut out).map_err(internal)?;
        }
        *body = (!out.is_empty()).then(|| Bytes::from(out));
        Ok(())
    }

    /// The end of the stream, when trailers end the body instead of a
    /// last piece marked `end` (an HTTP/2 backend). Pingora filters a
    /// batch of body pieces before writing any, so the end cannot be
    /// written ahead of the trailers: it takes their place (they are
    /// dropped). Announced trailers (`Trailer`) keep a response
    /// uncompressed on every path, so this is only for unannounced ones.
    pub fn finish(&mut self) -> Result<Option<Bytes>> {
        let mut body = None;
        self.filter(&mut body, true)?;
        Ok(body)
    }
}

fn internal(e: impl std::fmt::Display) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("compressing: {e}"))
}
