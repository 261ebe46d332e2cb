//! Decoding a PROXY protocol header (v1 text or v2 binary) from the first
//! bytes of a connection. Pure: bytes in, a verdict out; the caller reads
//! more while the verdict is [`Parsed::Incomplete`]. Never panics and never
//! asks for more than a valid header can hold (107 bytes for v1, 16 + 65,535
//! for v2), so a client cannot make the reader buffer without bound.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Header, V1_MAX, V2_SIGNATURE};

/// What the bytes so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A valid prefix of a header: read more.
    Incomplete,
    /// A whole header of `len` bytes; the connection's data follows it.
    Complete { header: Header, len: usize },
}

/// Why a connection's first bytes are not a PROXY header.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a PROXY protocol header")]
    NotProxy,
    #[error("bad PROXY v1 header: {0}")]
    V1(&'static str),
    #[error("bad PROXY v2 header: {0}")]
    V2(&'static str),
}

const V1_PREFIX: &[u8] = b"PROXY ";

/// Decodes the header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ParseError> {
    let Some(&first) = buf.first() else {
        return Ok(Parsed::Incomplete);
    };
    let (magic, v1) = match first {
        b'P' => (V1_PREFIX, true),
        b'\r' => (&V2_SIGNATURE[..], false),
        _ => return Err(ParseError::NotProxy),
    };
    let n = buf.len().min(magic.len());
    if buf[..n] != magic[..n] {
        return Err(ParseError::NotProxy);
    }
    if n < magic.len() {
        return Ok(Parsed::Incomplete);
    }
    if v1 {
        v1_header(buf)
    } else {
        v2_header(buf)
    }
}

fn v1_header(buf: &[u8]) -> Result<Parsed, ParseError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX {
            return Err(ParseError::V1("no CRLF within 107 bytes"));
        }
        // A lone CR or LF other than in the final CRLF is never valid.
        if window[..window.len().saturating_sub(1)].contains(&b'\r') || window.contains(&b'\n') {
            return Err(ParseError::V1("stray CR or LF"));
        }
        return Ok(Parsed::Incomplete);
    };
    let len = end + 2;
    let line =
        std::str::from_utf8(&buf[V1_PREFIX.len()..end]).map_err(|_| ParseError::V1("not ASCII"))?;
    let mut fields = line.split(' ');
    let header = match fields.next() {
        // The rest of an UNKNOWN line is to be ignored (spec 2.1).
        Some("UNKNOWN") => Header::Unknown,
        Some(family @ ("TCP4" | "TCP6")) => {
            let mut next = || fields.next().ok_or(ParseError::V1("missing field"));
            let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
            if fields.next().is_some() {
                return Err(ParseError::V1("extra field"));
            }
            let ip = |s: &str| -> Result<IpAddr, ParseError> {
                if family == "TCP4" {
                    s.parse::<Ipv4Addr>().map(IpAddr::V4)
                } else {
                    s.parse::<Ipv6Addr>().map(IpAddr::V6)
                }
                .map_err(|_| ParseError::V1("bad address"))
            };
            Header::Proxied {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                dest: SocketAddr::new(ip(dst)?, port(dport)?),
            }
        }
        _ => return Err(ParseError::V1("unknown protocol (TCP4, TCP6 or UNKNOWN)")),
    };
    Ok(Parsed::Complete { header, len })
}

/// A decimal port: 1 to 5 digits, at most 65535.
fn port(s: &str) -> Result<u16, ParseError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::V1("bad port"));
    }
    s.parse().map_err(|_| ParseError::V1("bad port"))
}

fn v2_header(buf: &[u8]) -> Result<Parsed, ParseError> {
    let Some(fixed) = buf.get(..16) else {
        return Ok(Parsed::Incomplete);
    };
    let (ver_cmd, fam, body_len) = (
        fixed[12],
        fixed[13],
        usize::from(u16::from_be_bytes([fixed[14], fixed[15]])),
    );
    if ver_cmd >> 4 != 2 {
        return Err(ParseError::V2("version is not 2"));
    }
    let len = 16 + body_len;
    let Some(body) = buf.get(16..len) else {
        return Ok(Parsed::Incomplete);
    };
    let header = match ver_cmd & 0x0f {
        // LOCAL: the balancer's own connection (a health check); the
        // addresses, if any, are to be ignored.
        0 => Header::Local,
        1 => match fam >> 4 {
            1 => {
                let a = body
                    .get(..12)
                    .ok_or(ParseError::V2("short IPv4 addresses"))?;
                let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
                let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
                Header::Proxied {
                    source: SocketAddr::new(ip(0), port(8)),
                    dest: SocketAddr::new(ip(4), port(10)),
                }
            }
            2 => {
                let a = body
                    .get(..36)
                    .ok_or(ParseError::V2("short IPv6 addresses"))?;
                let ip = |o: usize| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&a[o..o + 16]);
                    IpAddr::V6(Ipv6Addr::from(octets))
                };
                let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
                Header::Proxied {
                    source: SocketAddr::new(ip(0), port(32)),
                    dest: SocketAddr::new(ip(16), port(34)),
                }
            }
            // AF_UNSPEC, AF_UNIX: no IP to take; the socket peer stands.
            0 | 3 => Header::Unknown,
            _ => return Err(ParseError::V2("unknown address family")),
        },
        _ => return Err(ParseError::V2("unknown command")),
    };
    // Whatever follows the addresses (TLVs) is skipped with the header.
    Ok(Parsed::Complete { header, len })
}

#[cfg(test)]
mod tests;
