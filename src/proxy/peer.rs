//! The Pingora peer for one attempt: the backend's address, the upstream's
//! timeouts, TLS when the upstream has `tls`, and HTTP/2 with `protocol: h2`.
//!
//! Pingora's rustls connector skips *all* certificate checks when the SNI is
//! empty; we never pass an empty one ([`crate::config::UpstreamTls::sni_for`]),
//! and validation makes sure a verified backend has a name to check.
//! Verification is off only with `verify: false`.
//!
//! With `send_proxy_protocol`, Pingora connects through
//! [`ProxyConnect`] (the header first, before any TLS) and pools by the
//! client's addresses ([`group_key`]).

use std::sync::Arc;

use std::time::Duration;

use pingora::prelude::HttpPeer;
use pingora::proxy::Session;

use crate::config::{BackendSpec, UpstreamProtocol, UpstreamSpec};
use crate::proxy_protocol::connect::{group_key, ProxyConnect};
use crate::proxy_protocol::ConnAddrs;

/// Requests multiplexed on one HTTP/2 connection to a backend before
/// Pingora opens another.
const H2_STREAMS_PER_CONNECTION: usize = 100;

/// `addrs`: the client connection's, for an upstream with
/// `send_proxy_protocol`: the connection then starts with their PROXY
/// header and is pooled only for requests from the same client address.
/// `left`: what remains of the route's `timeout`, which bounds every wait.
pub fn build(
    spec: &UpstreamSpec,
    backend: &BackendSpec,
    addrs: Option<ConnAddrs>,
    left: Option<Duration>,
) -> HttpPeer {
    let mut peer = match &spec.tls {
        None => HttpPeer::new(backend.socket, false, String::new()),
        Some(tls) => {
            let mut peer = HttpPeer::new(backend.socket, true, tls.sni_for(backend.tls_name()));
            peer.options.verify_cert = tls.verify;
            peer.options.verify_hostname = tls.verify;
            peer.options.ca = tls.ca.clone();
            peer
        }
    };
    if spec.protocol == UpstreamProtocol::H2 {
        // h2 only: without TLS Pingora then speaks h2 by prior knowledge.
        peer.options.set_http_version(2, 2);
        peer.options.max_h2_streams = H2_STREAMS_PER_CONNECTION;
    }
    let within = |t: Duration| Some(left.map_or(t, |left| t.min(left)));
    peer.options.connection_timeout = within(spec.connect_timeout);
    peer.options.total_connection_timeout = left;
    peer.options.read_timeout = within(spec.read_timeout);
    peer.options.write_timeout = within(spec.read_timeout);
    if let Some(version) = spec.send_proxy_protocol {
        let connect = ProxyConnect::new(version, addrs, spec.connect_timeout);
        peer.options.custom_l4 = Some(Arc::new(connect));
        peer.group_key = group_key(version, addrs);
    }
    peer
}

/// The client connection's addresses when the upstream sends PROXY headers
/// (the client is the PROXY source on a `proxy_protocol` listener).
pub(super) fn proxy_addrs(session: &Session, spec: &UpstreamSpec) -> Option<ConnAddrs> {
    spec.send_proxy_protocol?;
    Some(ConnAddrs {
        client: *session.client_addr()?.as_inet()?,
        local: *session.server_addr()?.as_inet()?,
    })
}
