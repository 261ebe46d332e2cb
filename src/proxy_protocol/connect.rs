//! New backend connections that start with a PROXY header: the forwarder's
//! ([`connect`]) and Pingora's, through `PeerOptions::custom_l4`
//! ([`ProxyConnect`], used by `proxy::peer` and the TCP listeners).
//!
//! Pingora pools HTTP connections by the peer's reuse hash; a peer that
//! sends a header carries its client's addresses in `group_key`
//! ([`group_key`]), so a connection is only reused for the same client
//! address.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::connectors::L4Connect;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::{Error, ErrorType, OrErr, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{encode, ConnAddrs, Version};

/// Connects to `addr` within `timeout` (`TCP_NODELAY` set), then writes
/// `header` if there is one, before any other byte.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    header: Option<&[u8]>,
) -> std::io::Result<TcpStream> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
    let mut conn = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out())??;
    conn.set_nodelay(true)?;
    if let Some(header) = header {
        // A fresh socket's send buffer takes ~100 bytes at once; the
        // timeout only guards against the impossible.
        tokio::time::timeout(timeout, conn.write_all(header))
            .await
            .map_err(|_| timed_out())??;
    }
    Ok(conn)
}

/// Pingora's L4 connect for a peer that sends a PROXY header first.
#[derive(Debug)]
pub struct ProxyConnect {
    header: Vec<u8>,
    timeout: Duration,
}

impl ProxyConnect {
    pub fn new(version: Version, addrs: Option<ConnAddrs>, timeout: Duration) -> Self {
        Self {
            header: encode::header(version, addrs),
            timeout,
        }
    }
}

#[async_trait]
impl L4Connect for ProxyConnect {
    async fn connect(&self, addr: &PeerAddr) -> Result<L4Stream> {
        let Some(inet) = addr.as_inet() else {
            return Error::e_explain(ErrorType::ConnectError, "PROXY header to a non-IP peer");
        };
        match connect(*inet, self.timeout, Some(&self.header)).await {
            Ok(conn) => Ok(conn.into()),
            Err(e) => {
                let kind = match e.kind() {
                    std::io::ErrorKind::TimedOut => ErrorType::ConnectTimedout,
                    std::io::ErrorKind::ConnectionRefused => ErrorType::ConnectRefused,
                    _ => ErrorType::ConnectError,
                };
                Err(e).or_err(kind, "connect with a PROXY header failed")
            }
        }
    }
}

/// The pool group of connections carrying `addrs`' header: connections in
/// different groups are never shared.
pub fn group_key(version: Version, addrs: Option<ConnAddrs>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (version, addrs).hash(&mut h);
    // 0 is every other peer's group.
    h.finish() | 1
}
