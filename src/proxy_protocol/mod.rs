//! The PROXY protocol (HAProxy's, v1 text and v2 binary): how an L4
//! balancer in front tells switchyard the client's address, and how
//! switchyard tells its backends.
//!
//! - In (`listeners.*.proxy_protocol: true`): [`read_header`] takes the
//!   header off a new connection before anything else (before the TLS
//!   handshake on TLS listeners), within `server.header_timeout`. Its source
//!   becomes the connection's peer address in the socket digest, so every
//!   engine (the HTTP/1 forwarder, Pingora's `ProxyHttp` path, the HTTP/2
//!   front) and everything keyed on the client IP (X-Forwarded-For, rate
//!   limits, `hash_key: client_ip`, allow/deny, the access log) sees it
//!   without knowing about PROXY at all. `LOCAL` (v2), `UNKNOWN` (v1) and
//!   non-IP families keep the socket peer. A connection without a valid
//!   header is closed, nothing answered. Listeners without the key never
//!   reach this module.
//! - Out (`upstreams.*.send_proxy_protocol: v1 | v2`): every new backend
//!   connection starts with [`encode::header`] for the client's
//!   [`ConnAddrs`] ([`connect::connect`]); such a connection belongs to that
//!   client address and is never reused for another. Health checks stay plain.

pub mod connect;
pub mod encode;
pub mod parse;

use std::net::SocketAddr;

use pingora::protocols::SocketDigest;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use encode::header;
pub use parse::{parse, ParseError, Parsed};

/// The 12 bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, CRLF included.
pub const V1_MAX: usize = 107;

/// The PROXY protocol version sent to an upstream's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
}

/// What a received header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The balancer relays a client: its address and the one it reached.
    Proxied {
        source: SocketAddr,
        dest: SocketAddr,
    },
    /// v2 `LOCAL`: the balancer's own connection (a health check).
    Local,
    /// v1 `UNKNOWN`, or a v2 family without IP addresses.
    Unknown,
}

impl Header {
    /// The client address it names, if any (else the socket peer stands).
    pub fn source(&self) -> Option<SocketAddr> {
        match self {
            Header::Proxied { source, .. } => Some(*source),
            Header::Local | Header::Unknown => None,
        }
    }
}

/// A client connection's two ends: the client (the PROXY source when the
/// listener takes PROXY headers) and the listener's local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnAddrs {
    pub client: SocketAddr,
    pub local: SocketAddr,
}

impl ConnAddrs {
    /// From the client connection's socket digest (its local address is
    /// looked up on first use, once per connection).
    pub fn of(digest: &SocketDigest) -> Option<ConnAddrs> {
        Some(ConnAddrs {
            client: *digest.peer_addr()?.as_inet()?,
            local: *digest.local_addr()?.as_inet()?,
        })
    }
}

/// Why no header could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("connection closed before a complete PROXY header")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads the PROXY header at the start of `stream`: the header and the
/// bytes read past it (the connection's first data, to be passed on before
/// anything else read from `stream`). The caller bounds the time.
pub async fn read_header<S>(stream: &mut S) -> Result<(Header, Vec<u8>), ReadError>
where
    S: AsyncRead + Unpin + ?Sized,
{
    let mut buf = Vec::with_capacity(256);
    loop {
        match parse(&buf)? {
            Parsed::Complete { header, len } => {
                buf.drain(..len);
                return Ok((header, buf));
            }
            Parsed::Incomplete => {
                buf.reserve(256);
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(ReadError::Closed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_header_and_keeps_what_follows() {
        let mut input: &[u8] = b"PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\nGET / HTTP/1.1\r\n";
        let (header, rest) = read_header(&mut input).await.unwrap();
        assert_eq!(header.source(), Some("10.0.0.1:1234".parse().unwrap()));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_v2_header_with_tlvs_in_small_pieces() {
        let addrs = ConnAddrs {
            client: "[2001:db8::1]:5000".parse().unwrap(),
            local: "[2001:db8::2]:443".parse().unwrap(),
        };
        let mut wire = header(Version::V2, Some(addrs));
        // One TLV (type 0x04 NOOP, 3 bytes), counted in the length.
        wire[15] += 6;
        wire.extend_from_slice(&[0x04, 0, 3, 1, 2, 3]);
        wire.extend_from_slice(b"data");
        let (client, mut server) = tokio::io::duplex(4);
        let writer = tokio::spawn(async move {
            let mut client = client;
            for chunk in wire.chunks(3) {
                tokio::io::AsyncWriteExt::write_all(&mut client, chunk)
                    .await
                    .unwrap();
            }
            client
        });
        let (header, mut rest) = read_header(&mut server).await.unwrap();
        assert_eq!(header.source(), Some(addrs.client));
        drop(writer.await.unwrap());
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"data");
    }

    #[tokio::test]
    async fn garbage_or_a_short_header_is_refused() {
        let mut input: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        assert!(matches!(
            read_header(&mut input).await,
            Err(ReadError::Parse(ParseError::NotProxy))
        ));
        let mut input: &[u8] = b"PROXY TCP4 10.0.0.1";
        assert!(matches!(
            read_header(&mut input).await,
            Err(ReadError::Closed)
        ));
    }
}
