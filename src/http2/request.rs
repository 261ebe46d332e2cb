//! One HTTP/2 request: the checks Pingora's path makes (`request_filter`),
//! then the forwarder's pipeline ([`crate::h1::forward`]) with the stream
//! as its client.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::header::CONTENT_LENGTH;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;

use super::head::Fields;
use super::stream::H2Client;
use crate::h1::client::Client;
use crate::h1::head::HeadOut;
use crate::h1::{self, answer, RequestBody};
use crate::policy;

use crate::proxy::{self, framing, RequestCtx, Site};
use crate::proxy_protocol::ConnAddrs;
use crate::router::request_host;

/// Serves one stream to its end.
pub async fn serve(
    site: Arc<Site>,
    req: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    client_ip: Option<IpAddr>,
    proxy_addrs: Option<ConnAddrs>,
    client_timeout: std::time::Duration,
    shutdown: &ShutdownWatch,
) {
    let site = &*site;
    let (parts, body) = req.into_parts();
    let ended = body.is_end_stream();
    let mut client = H2Client::new(body, respond);
    // Control bytes in `:path` are no URI's; they would be dangerous on an
    // HTTP/1 wire (RFC 9113 §8.1.1: malformed, a stream error).
    let forbidden = |b: &u8| *b < 0x21 || *b == 0x7f;
    let raw = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    if raw.bytes().any(|b| forbidden(&b)) {
        client.reset(Reason::PROTOCOL_ERROR);
        return;
    }
    let target_len = raw.len();
    let connect = parts.method == http::Method::CONNECT;
    let authority_ok = authority_agrees(&parts);
    let mut header = RequestHeader::from(parts);
    // The connection's address goes on X-Forwarded-For; the client IP the
    // request is judged by may be a trusted proxy's client.
    let judged_ip = policy::client_ip_of(client_ip, &site.trusted_proxies, &header);
    let refused = if connect {
        // Not a proxy for tunnels (as on HTTP/1).
        Some(405)
    } else if !authority_ok || framing::ambiguity(&header).is_some() {
        Some(400)
    } else if target_len > site.max_uri_bytes {
        Some(414)
    } else if proxy::to_origin_form(&mut header).is_err() {
        Some(400)
    } else {
        None
    };
    if let Some(code) = refused {
        return own_answer(site, &mut client, &header, code, judged_ip).await;
    }
    let host = request_host(&header);
    let Some(route) = site.router.find(&host, header.uri.path()) else {
        return own_answer(site, &mut client, &header, 404, judged_ip).await;
    };
    let length = header
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| h1::head::plain_number(v.as_bytes()));
    let body = match (ended, length) {
        (true, _) | (false, Some(0)) => RequestBody::None,
        (false, Some(n)) => RequestBody::Length(n),
        (false, None) => RequestBody::Chunked,
    };
    // `Expect: 100-continue` is answered here, as soon as the body is
    // wanted, and not forwarded: the body then streams to the backend like
    // any other (an interim answer from the backend would otherwise stop
    // the upload as an early final one).
    if header.headers.contains_key(http::header::EXPECT) {
        header.remove_header(&http::header::EXPECT);
        if body != RequestBody::None {
            let mut head = Fields::with_room(0);
            head.status(100, "Continue");
            let _ = client.send_interim(head).await;
        }
    }
    let fields = super::head::backend_fields(
        &header,
        client_ip,
        site.scheme,
        body == RequestBody::Chunked,
    );
    let request = h1::Request {
        route,
        req: &header,
        fields: &fields,
        body,
        client_ip: judged_ip,
        proxy_addrs: route
            .upstream
            .as_ref()
            .and_then(|u| u.spec.send_proxy_protocol)
            .and(proxy_addrs),
    };
    h1::forward(site, request, &mut client, client_timeout, false, shutdown).await;
}

/// RFC 9113 §8.3.1: a request names its host once — `:authority`, or one
/// `Host` — and when both are there they agree; else it is malformed (400,
/// as an HTTP/1 request without or with two `Host` is).
fn authority_agrees(parts: &http::request::Parts) -> bool {
    let mut hosts = parts.headers.get_all(http::header::HOST).iter();
    let (host, more) = (hosts.next(), hosts.next().is_some());
    match (parts.uri.authority(), host) {
        _ if more => false,
        (None, None) => false,
        (Some(a), Some(h)) => a.as_str().as_bytes() == h.as_bytes(),
        _ => true,
    }
}

/// Answers `code` itself (no route, a refused request) and counts and logs
/// it as Pingora's path does.
async fn own_answer(
    site: &Site,
    client: &mut H2Client,
    header: &RequestHeader,
    code: u16,
    client_ip: Option<IpAddr>,
) {
    let mut ctx = RequestCtx::new();
    ctx.own_status = Some(code);
    ctx.request_id = policy::request_id(site.request_id.as_ref(), header);
    let extra = ctx.answer_headers(&[]);
    if let Err(e) = client.answer(&answer::bytes(code, &extra)).await {
        log::debug!("could not send {code} to the client: {e}");
    }
    site.settle(&mut ctx, code, None);
    if let Some(log) = &site.access_log {
        let sent = proxy::respond::body_for(code).len();
        proxy::access::record(log, header, client_ip, &ctx, &site.listener, code, sent);
    }
}
