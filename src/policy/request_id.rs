//! `server.request_id`: one id per request, sent to the backend, returned
//! on the client's response (switchyard's own answers included) and written
//! to the access log. A random UUID (version 4), or the client's own id
//! when `trust_incoming` and it is 1-128 visible ASCII characters.

use crate::upstream::selection::rng;
use http::{HeaderName, HeaderValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIdSettings {
    pub header: HeaderName,
    pub trust_incoming: bool,
}

impl RequestIdSettings {
    /// The id of a request that came with `incoming` (its first line of
    /// the header, if any).
    pub fn id_for(&self, incoming: Option<&HeaderValue>) -> HeaderValue {
        match incoming {
            Some(v) if self.trust_incoming && acceptable(v.as_bytes()) => v.clone(),
            _ => generate(),
        }
    }
}

fn acceptable(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| (0x21..0x7f).contains(b))
}

/// A random (version 4) UUID in its usual text form. From the per-thread
/// generator the balancing policies use (seeded from the OS per thread):
/// an id must be unique, not unguessable, and this costs a tenth of a
/// cryptographic generator.
pub fn generate() -> HeaderValue {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng::next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&rng::next_u64().to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 36];
    let mut at = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text[at] = b'-';
            at += 1;
        }
        text[at] = HEX[usize::from(b >> 4)];
        text[at + 1] = HEX[usize::from(b & 0x0f)];
        at += 2;
    }
    // Hex digits and dashes: always a valid value.
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trust_incoming: bool) -> RequestIdSettings {
        RequestIdSettings {
            header: HeaderName::from_static("x-request-id"),
            trust_incoming,
        }
    }

    #[test]
    fn generated_ids_are_v4_uuids_and_differ() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        let s = a.to_str().unwrap();
        assert_eq!(s.len(), 36);
        let groups: Vec<usize> = s.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&s[14..15], "4");
        assert!("89ab".contains(&s[19..20]));
    }

    #[test]
    fn incoming_ids_are_kept_only_when_trusted_and_sane() {
        let theirs = HeaderValue::from_static("abc-123");
        assert_eq!(settings(true).id_for(Some(&theirs)), theirs);
        assert_ne!(settings(false).id_for(Some(&theirs)), theirs);
        let long = HeaderValue::from_str(&"x".repeat(129)).unwrap();
        assert_ne!(settings(true).id_for(Some(&long)), long);
        let spaced = HeaderValue::from_static("a b");
        assert_ne!(settings(true).id_for(Some(&spaced)), spaced);
        assert_eq!(settings(true).id_for(None).len(), 36);
    }
}
