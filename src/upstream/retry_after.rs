//! `honor_retry_after`: a backend that answers 429 or 503 with
//! `Retry-After` asked for no traffic that long; selection skips it like a
//! down backend until then (the answer itself is passed on, or retried).
//!
//! Per backend one `AtomicU64`: the millisecond (since the table was made)
//! until which it is held off, 0 for none. Reading it is one load in
//! `Upstream::select`'s accept path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The longest hold honoured: a backend asking for more still gets
/// traffic again after this.
pub const MAX_HOLD: Duration = Duration::from_secs(300);

/// The held-off deadlines of an upstream's backends.
#[derive(Debug)]
pub struct RetryAfter {
    origin: Instant,
    until_ms: Vec<AtomicU64>,
}

impl RetryAfter {
    pub fn new(backends: usize) -> Self {
        Self {
            origin: Instant::now(),
            until_ms: (0..backends).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Keeps backend `index` off new requests for `hold` (at most
    /// [`MAX_HOLD`]) from `now`; a later deadline already set stands.
    pub fn hold(&self, index: usize, now: Instant, hold: Duration) {
        let Some(slot) = self.until_ms.get(index) else {
            return;
        };
        let until = now.saturating_duration_since(self.origin) + hold.min(MAX_HOLD);
        // +1: a deadline of 0 ms would read as "none".
        slot.fetch_max(until.as_millis() as u64 + 1, Ordering::Relaxed);
    }

    /// How long backend `index` is still held off at `now`, if it is.
    pub fn left(&self, index: usize, now: Instant) -> Option<Duration> {
        let until = self.until_ms.get(index)?.load(Ordering::Relaxed);
        if until == 0 {
            return None;
        }
        let now_ms = now.saturating_duration_since(self.origin).as_millis() as u64;
        (until > now_ms).then(|| Duration::from_millis(until - now_ms))
    }

    /// Whether backend `index` is held off at `now`.
    pub fn holds(&self, index: usize, now: Instant) -> bool {
        self.left(index, now).is_some()
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delta-seconds or an
/// HTTP-date, as a wait from `now`; capped at [`MAX_HOLD`]. `None` for
/// anything unparseable, and for a date already past.
pub fn parse(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a long time".
        let secs = text.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_HOLD));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    let wait = date.duration_since(now).ok()?;
    (!wait.is_zero()).then(|| wait.min(MAX_HOLD))
}

#[cfg(test)]
mod tests;
