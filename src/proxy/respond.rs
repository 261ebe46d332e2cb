//! Answers switchyard makes itself, and which status an error becomes.
//!
//! The SPEC's table: 404 no route, 502 connect failed on every backend tried
//! (or the backend's response was malformed), 503 nothing selectable, 504
//! backend too slow. Bodies are a short `text/plain` naming the status and
//! never reveal an address, path or panic text.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use std::net::IpAddr;

use super::ctx::RequestCtx;
use pingora::{Error, ErrorSource, ErrorType};

/// The status a failed request is answered with; 0 = the client is gone,
/// answer nothing.
pub fn status_for(e: &Error) -> u16 {
    use ErrorType::*;
    match e.etype() {
        HTTPStatus(code) => *code,
        _ => match e.esource() {
            ErrorSource::Upstream => match e.etype() {
                ReadTimedout | WriteTimedout => 504,
                _ => 502,
            },
            ErrorSource::Downstream => match e.etype() {
                ReadError | WriteError | ConnectionClosed | ReadTimedout | WriteTimedout => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// The reason phrase for `code` (`Error` when it has none).
pub fn reason(code: u16) -> &'static str {
    http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// The short `text/plain` body of an answer switchyard makes: `502 Bad Gateway\n`.
pub fn body_for(code: u16) -> String {
    format!("{code} {}\n", reason(code))
}

/// Writes `code` with a short text body (plus `extra` headers) and closes
/// the client connection afterwards. Does nothing if a response has already
/// started.
pub async fn answer(session: &mut Session, code: u16, extra: &[(&str, String)]) {
    let body = Bytes::from(body_for(code));
    let resp = ResponseHeader::build(code, Some(3)).and_then(|mut r| {
        r.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
        r.insert_header(http::header::CONTENT_LENGTH, body.len())?;
        for (name, value) in extra {
            r.insert_header(name.to_string(), value.as_str())?;
        }
        Ok(r)
    });
    let result = match resp {
        Ok(r) => {
            session
                .as_downstream_mut()
                .write_error_response(r, body)
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        log::debug!("could not send {code} to the client: {e}");
    }
}

/// Answers `code` (with `extra` headers and the request id) and ends the
/// request: `request_filter`'s `Ok(true)`.
pub(super) async fn refuse(
    session: &mut Session,
    ctx: &mut RequestCtx,
    code: u16,
    extra: &[(&'static str, String)],
) -> Result<bool> {
    ctx.own_status = Some(code);
    answer(session, code, &ctx.answer_headers(extra)).await;
    Ok(true)
}

/// The client's socket IP (never a header).
pub(super) fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_errors_to_the_spec_statuses() {
        let up = |t| Error::new_up(t);
        assert_eq!(status_for(&up(ErrorType::ConnectRefused)), 502);
        assert_eq!(status_for(&up(ErrorType::ConnectTimedout)), 502);
        assert_eq!(status_for(&up(ErrorType::InvalidHTTPHeader)), 502);
        assert_eq!(status_for(&up(ErrorType::ReadTimedout)), 504);
        assert_eq!(status_for(&Error::new(ErrorType::HTTPStatus(503))), 503);
        assert_eq!(status_for(&Error::new_down(ErrorType::ConnectionClosed)), 0);
    }
}
