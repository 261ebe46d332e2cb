//! The client IP a request is judged by (`allow`/`deny`, `rate_limit key:
//! client_ip`, `consistent_hash` on `client_ip`, the access log): the
//! connection's address (the socket peer, or the source of a PROXY header),
//! or, when that address is one of the listener's `trusted_proxies`, the
//! rightmost `X-Forwarded-For` entry that is not. A header from an untrusted
//! peer is never believed.

use std::net::{IpAddr, SocketAddr};

use super::cidr::Cidr;

/// `peer`, or the address its trusted proxies forwarded for. `chain` is
/// every `X-Forwarded-For` line of the request, in order.
pub fn resolve<'a>(
    peer: Option<IpAddr>,
    trusted: &[Cidr],
    chain: impl DoubleEndedIterator<Item = &'a [u8]>,
) -> Option<IpAddr> {
    let mut client = peer?;
    if !Cidr::any_contains(trusted, client) {
        return Some(client);
    }
    let entries = chain
        .rev()
        .flat_map(|line| line.rsplit(|&b| b == b','))
        .map(|e| e.trim_ascii());
    for entry in entries {
        if entry.is_empty() {
            continue;
        }
        // An entry that is no address ends the walk: the last trusted hop
        // is as far as anything can be believed.
        let Some(ip) = parse(entry) else {
            break;
        };
        client = ip;
        if !Cidr::any_contains(trusted, ip) {
            break;
        }
    }
    Some(client)
}

/// `203.0.113.7`, `2001:db8::1`, or either with a port.
fn parse(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn resolved(peer: &str, trusted: &[&str], lines: &[&str]) -> IpAddr {
        let trusted = nets(trusted);
        resolve(Some(ip(peer)), &trusted, lines.iter().map(|l| l.as_bytes())).unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        assert_eq!(
            resolved("198.51.100.1", &[], &["1.1.1.1"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            resolved("198.51.100.1", &["10.0.0.0/8"], &["1.1.1.1"]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_trusted_peer_hands_over_to_the_rightmost_untrusted_entry() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(
            resolved("10.0.0.1", &trusted, &["6.6.6.6, 203.0.113.7, 10.0.0.2"]),
            ip("203.0.113.7")
        );
        // Several lines are one list.
        assert_eq!(
            resolved(
                "10.0.0.1",
                &trusted,
                &["6.6.6.6", "203.0.113.7:4711", "10.9.9.9"]
            ),
            ip("203.0.113.7")
        );
        // All trusted: the leftmost.
        assert_eq!(
            resolved("10.0.0.1", &trusted, &["10.0.0.3, 10.0.0.2"]),
            ip("10.0.0.3")
        );
        // No header: the peer itself.
        assert_eq!(resolved("10.0.0.1", &trusted, &[]), ip("10.0.0.1"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            resolved("10.0.0.1", &trusted, &["6.6.6.6, junk, 10.0.0.2"]),
            ip("10.0.0.2")
        );
    }
}
