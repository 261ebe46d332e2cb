//! Sticky sessions: the cookie token that pins a client to a backend.
//!
//! A token is `base64url(hint ‖ tag)`, 27 characters:
//! - `hint`: the backend's index in the upstream when the token was issued,
//!   4 bytes big-endian. Not secret and not trusted: it only says which
//!   backend to check first.
//! - `tag`: HMAC-SHA256 under the process's [`StickyKey`] over the upstream
//!   name and the backend's configured `addr` (length-prefixed, with a version
//!   label), truncated to 16 bytes.
//!
//! So a token names a backend without revealing its address, and nobody
//! without the key can make one that names any backend at all. Verification
//! ([`StickyKey::backend_for`]) recomputes tags over the *current* backends of
//! the upstream and compares in constant time: a tampered token, one for
//! another upstream or key, or one for a backend that has since been removed
//! matches nothing and is treated as absent. Because the tag binds the
//! backend's identity (upstream + addr), not its position, a token survives
//! backends being reordered or others being removed: the hint misses, and the
//! other backends are checked (one HMAC-SHA256 each).
//!
//! The key comes from `SWITCHYARD_STICKY_KEY`: any string of at least 16
//! bytes, used as is (e.g. `openssl rand -hex 32`; surrounding whitespace is
//! ignored). Without it a random key is made at start, and cookies are then
//! only valid for that process: several instances behind one address, or the
//! old and new process of an upgrade, must share the variable for stickiness
//! to carry over. Make one key per process and share it between routes.
//!
//! Also here: the exact `Set-Cookie` value ([`set_cookie_value`]) and reading
//! one cookie out of the request's `Cookie` headers ([`cookie`]).

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use http::HeaderValue;
use sha2::Sha256;

/// The environment variable holding the shared key.
pub const KEY_ENV: &str = "SWITCHYARD_STICKY_KEY";

/// The shortest accepted key, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

const HINT_BYTES: usize = 4;
const TAG_BYTES: usize = 16;
const TOKEN_BYTES: usize = HINT_BYTES + TAG_BYTES;
/// `TOKEN_BYTES` in unpadded base64.
const TOKEN_CHARS: usize = (TOKEN_BYTES * 4).div_ceil(3);
/// Domain separation: a tag for anything else never verifies as a token.
const LABEL: &[u8] = b"switchyard sticky v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StickyKeyError {
    #[error("{KEY_ENV} is {0} bytes long; use at least {MIN_KEY_BYTES} (e.g. the output of `openssl rand -hex 32`)")]
    TooShort(usize),
}

/// The secret that signs sticky tokens.
#[derive(Clone)]
pub struct StickyKey {
    /// Keyed once; cloned for each tag.
    mac: Hmac<Sha256>,
    random: bool,
}

impl fmt::Debug for StickyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickyKey")
            .field("random", &self.random)
            .finish_non_exhaustive()
    }
}

impl StickyKey {
    /// The key from [`KEY_ENV`], or a random one when it is not set. Set but
    /// shorter than [`MIN_KEY_BYTES`] (empty included) is an error.
    pub fn from_env_or_random() -> Result<Self, StickyKeyError> {
        match std::env::var_os(KEY_ENV) {
            Some(v) => Self::from_secret(&v.into_encoded_bytes()),
            None => Ok(Self::random()),
        }
    }

    /// A key from operator-supplied bytes, surrounding whitespace ignored.
    pub fn from_secret(secret: &[u8]) -> Result<Self, StickyKeyError> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_KEY_BYTES {
            return Err(StickyKeyError::TooShort(secret.len()));
        }
        Ok(Self::keyed(secret, false))
    }

    /// A fresh random key: tokens are valid for this process only.
    pub fn random() -> Self {
        Self::keyed(&rand::random::<[u8; 32]>(), true)
    }

    /// True when the key was generated at start rather than configured.
    pub fn is_random(&self) -> bool {
        self.random
    }

    fn keyed(secret: &[u8], random: bool) -> Self {
        let mac = match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this arm is never taken.
            Err(_) => Hmac::<Sha256>::new(&Default::default()),
        };
        Self { mac, random }
    }

    /// The token naming backend `index` (configured `addr`) of `upstream`.
    pub fn token(&self, upstream: &str, index: usize, addr: &str) -> String {
        let mut raw = [0u8; TOKEN_BYTES];
        let hint = u32::try_from(index).unwrap_or(u32::MAX);
        raw[..HINT_BYTES].copy_from_slice(&hint.to_be_bytes());
        let tag = self.mac_for(upstream, addr).finalize().into_bytes();
        raw[HINT_BYTES..].copy_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The index of the backend `token` names among `addrs`, the current
    /// backends of `upstream` in index order (configured `addr`s), or `None`
    /// when it names none of them.
    pub fn backend_for<I>(&self, upstream: &str, token: &str, addrs: I) -> Option<usize>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
        I::IntoIter: Clone,
    {
        if token.len() != TOKEN_CHARS {
            return None;
        }
        let mut raw = [0u8; TOKEN_BYTES + 3];
        let n = URL_SAFE_NO_PAD.decode_slice(token, &mut raw).ok()?;
        if n != TOKEN_BYTES {
            return None;
        }
        let mut hint = [0u8; HINT_BYTES];
        hint.copy_from_slice(&raw[..HINT_BYTES]);
        let hint = usize::try_from(u32::from_be_bytes(hint)).ok()?;
        let tag = &raw[HINT_BYTES..TOKEN_BYTES];
        let matches = |addr: &I::Item| {
            self.mac_for(upstream, addr.as_ref())
                .verify_truncated_left(tag)
                .is_ok()
        };
        let addrs = addrs.into_iter();
        if addrs.clone().nth(hint).is_some_and(|a| matches(&a)) {
            return Some(hint);
        }
        addrs
            .enumerate()
            .filter(|&(i, _)| i != hint)
            .find(|(_, addr)| matches(addr))
            .map(|(i, _)| i)
    }

    fn mac_for(&self, upstream: &str, addr: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(LABEL);
        for part in [upstream, addr] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }
}

/// The `Set-Cookie` value pinning a client: `<name>=<token>; Path=/; HttpOnly`,
/// plus `; Max-Age=<seconds>` (rounded up, at least 1) when `max_age` is set;
/// without it the cookie lasts the browser session.
pub fn set_cookie_value(name: &str, token: &str, max_age: Option<Duration>) -> String {
    let mut v = format!("{name}={token}; Path=/; HttpOnly");
    if let Some(age) = max_age {
        let secs = (age.as_secs() + u64::from(age.subsec_nanos() > 0)).max(1);
        v.push_str(&format!("; Max-Age={secs}"));
    }
    v
}

/// The value of the first cookie called `name` (case-sensitive) in the
/// request's `Cookie` header values, double quotes removed. Pass every
/// `Cookie` header (`headers.get_all(COOKIE)`): HTTP/2 clients send one per
/// cookie. A value that is not UTF-8 is skipped.
pub fn cookie<'a, I>(headers: I, name: &str) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a HeaderValue>,
{
    headers
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (n, v) = (trim(&pair[..eq]), trim(&pair[eq + 1..]));
            (n == name.as_bytes()).then_some(v)
        })
        .map(|v| match v {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        })
        .find_map(|v| std::str::from_utf8(v).ok())
}

/// Without the optional whitespace around cookie pairs (spaces and tabs).
fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ' && c != b'\t');
    let end = b.iter().rposition(|&c| c != b' ' && c != b'\t');
    match (start, end) {
        (Some(s), Some(e)) => &b[s..=e],
        _ => &[],
    }
}

#[cfg(test)]
mod tests;
