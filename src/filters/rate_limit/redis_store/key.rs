//! Redis key names: `switchyard:rl:<listener>/<route>:<key>`.
//!
//! The route id (listener name, `/`, route name) keeps routes apart, so two
//! routes never share a bucket even when their keys are equal. `%`, `/` and
//! `:` in names are percent-escaped, so the split is unambiguous whatever the
//! names are. Instances share a route's buckets exactly when they agree on
//! its listener and route name, which is why they must run the same config.
//!
//! The key part:
//! - `client_ip`: the peer's address as text (`203.0.113.7`, `2001:db8::1`;
//!   an IPv4-mapped IPv6 peer is its IPv4 address). No IP (Unix socket): empty.
//! - `header:NAME`: the first value's bytes, up to [`MAX_RAW`] bytes; longer
//!   values become `sha256:` + 64 hex digits (71 bytes, so never equal to a
//!   raw value). An absent header is the empty value, one shared bucket, as in
//!   the local store.
//! - `route`: empty: one bucket for the route.

use std::fmt::Write as _;
use std::net::IpAddr;

use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::RateKey;

/// What every switchyard bucket key starts with.
pub const PREFIX: &str = "switchyard:rl:";

/// Longest key value stored as is; longer ones are hashed.
pub const MAX_RAW: usize = 64;

/// `switchyard:rl:<listener>/<route>:`, names escaped.
pub fn route_prefix(listener: &str, route: &str) -> Vec<u8> {
    let mut p = String::from(PREFIX);
    escape_into(&mut p, listener);
    p.push('/');
    escape_into(&mut p, route);
    p.push(':');
    p.into_bytes()
}

/// The full Redis key of the bucket a request takes from.
pub fn bucket_key(
    prefix: &[u8],
    key: &RateKey,
    client_ip: Option<IpAddr>,
    headers: &HeaderMap,
) -> Vec<u8> {
    let mut k = prefix.to_vec();
    match key {
        RateKey::ClientIp => {
            if let Some(ip) = client_ip {
                k.extend_from_slice(ip.to_canonical().to_string().as_bytes());
            }
        }
        RateKey::Header(name) => {
            let value = headers
                .get(name.as_str())
                .map_or(&b""[..], |v| v.as_bytes());
            push_value(&mut k, value);
        }
        RateKey::Route => {}
    }
    k
}

fn push_value(k: &mut Vec<u8>, value: &[u8]) {
    if value.len() <= MAX_RAW {
        k.extend_from_slice(value);
        return;
    }
    let mut hex = String::from("sha256:");
    for b in Sha256::digest(value) {
        let _ = write!(hex, "{b:02x}");
    }
    k.extend_from_slice(hex.as_bytes());
}

fn escape_into(out: &mut String, name: &str) {
    for c in name.chars() {
        match c {
            '%' | '/' | ':' => {
                let _ = write!(out, "%{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(key: &RateKey, ip: Option<&str>, header: Option<&[u8]>) -> Vec<u8> {
        let mut headers = HeaderMap::new();
        if let Some(v) = header {
            headers.insert("x-key", http::HeaderValue::from_bytes(v).unwrap());
        }
        let ip = ip.map(|s| s.parse().unwrap());
        bucket_key(&route_prefix("web", "api"), key, ip, &headers)
    }

    #[test]
    fn client_ips_are_text_under_the_route_prefix() {
        let k = key_of(&RateKey::ClientIp, Some("203.0.113.7"), None);
        assert_eq!(k, b"switchyard:rl:web/api:203.0.113.7");
        let k = key_of(&RateKey::ClientIp, Some("::ffff:10.0.0.1"), None);
        assert_eq!(k, b"switchyard:rl:web/api:10.0.0.1", "mapped v4 is v4");
        let k = key_of(&RateKey::ClientIp, Some("2001:db8::1"), None);
        assert_eq!(k, b"switchyard:rl:web/api:2001:db8::1");
    }

    #[test]
    fn header_values_are_raw_up_to_the_limit_then_hashed() {
        let h = RateKey::Header("x-key".into());
        assert_eq!(
            key_of(&h, None, Some(b"alice")),
            b"switchyard:rl:web/api:alice"
        );
        assert_eq!(key_of(&h, None, None), b"switchyard:rl:web/api:");
        let long = vec![b'a'; MAX_RAW + 1];
        let k = key_of(&h, None, Some(&long));
        let tail = &k[b"switchyard:rl:web/api:".len()..];
        assert_eq!(tail.len(), 7 + 64);
        assert!(tail.starts_with(b"sha256:"));
        assert_ne!(
            key_of(&h, None, Some(&long)),
            key_of(&h, None, Some(&long[1..]))
        );
        let edge = vec![b'a'; MAX_RAW];
        assert!(key_of(&h, None, Some(&edge)).ends_with(&edge));
    }

    #[test]
    fn route_keys_are_the_prefix_alone() {
        assert_eq!(
            key_of(&RateKey::Route, Some("1.2.3.4"), None),
            b"switchyard:rl:web/api:"
        );
    }

    #[test]
    fn separators_in_names_are_escaped_so_routes_never_collide() {
        assert_ne!(route_prefix("a/b", "c"), route_prefix("a", "b/c"));
        assert_ne!(route_prefix("a:b", "c"), route_prefix("a", "b:c"));
        assert_eq!(route_prefix("a/b", "c:%"), b"switchyard:rl:a%2Fb/c%3A%25:");
    }
}
