//! Writing the PROXY header switchyard sends first on a backend connection
//! (`send_proxy_protocol`). Both addresses go in one family: IPv4 when both
//! are (IPv4-mapped IPv6 counts as IPv4), else IPv6 with any IPv4 address
//! mapped, since a header cannot mix families.

use std::net::{IpAddr, SocketAddr};

use super::{ConnAddrs, Version, V2_SIGNATURE};

/// Appends the header for `addrs` to `out`; without addresses (a client
/// that is not on IP) it says so: `UNKNOWN` in v1, `LOCAL` in v2.
pub fn encode(version: Version, addrs: Option<ConnAddrs>, out: &mut Vec<u8>) {
    let pair = addrs.map(|a| same_family(a.client, a.local));
    match version {
        Version::V1 => v1(pair, out),
        Version::V2 => v2(pair, out),
    }
}

/// The header for `addrs` in a new buffer.
pub fn header(version: Version, addrs: Option<ConnAddrs>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode(version, addrs, &mut out);
    out
}

fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (src, dst) = (canonical(src), canonical(dst));
    if src.is_ipv4() == dst.is_ipv4() {
        return (src, dst);
    }
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    (v6(src), v6(dst))
}

fn v1(pair: Option<(SocketAddr, SocketAddr)>, out: &mut Vec<u8>) {
    use std::io::Write;
    let Some((src, dst)) = pair else {
        out.extend_from_slice(b"PROXY UNKNOWN\r\n");
        return;
    };
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    );
}

fn v2(pair: Option<(SocketAddr, SocketAddr)>, out: &mut Vec<u8>) {
    out.extend_from_slice(&V2_SIGNATURE);
    let Some((src, dst)) = pair else {
        // LOCAL, AF_UNSPEC, no addresses.
        out.extend_from_slice(&[0x20, 0x00, 0, 0]);
        return;
    };
    let (fam, len): (u8, u16) = if src.is_ipv4() {
        (0x11, 12)
    } else {
        (0x21, 36)
    };
    // PROXY command, TCP over the family, then the address block.
    out.extend_from_slice(&[0x21, fam]);
    out.extend_from_slice(&len.to_be_bytes());
    for ip in [src.ip(), dst.ip()] {
        match ip {
            IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
}
