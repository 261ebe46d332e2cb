use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;

#[test]
fn delta_seconds() {
    let now = SystemTime::now();
    assert_eq!(parse(b"2", now), Some(Duration::from_secs(2)));
    assert_eq!(parse(b" 0 ", now), Some(Duration::ZERO));
    assert_eq!(parse(b"3600", now), Some(MAX_HOLD));
    assert_eq!(parse(b"99999999999999999999999", now), Some(MAX_HOLD));
}

#[test]
fn http_date() {
    // Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example.
    let date = UNIX_EPOCH + Duration::from_secs(784111777);
    let now = date - Duration::from_secs(10);
    assert_eq!(
        parse(b"Sun, 06 Nov 1994 08:49:37 GMT", now),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        parse(
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            date - Duration::from_secs(3600)
        ),
        Some(MAX_HOLD)
    );
    // Past: nothing to wait for.
    assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT", date), None);
}

#[test]
fn garbage_is_ignored() {
    let now = SystemTime::now();
    for bad in [&b""[..], b"-1", b"1.5", b"soon", b"\xff\xfe", b"2 s"] {
        assert_eq!(parse(bad, now), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn hold_expires_and_later_deadline_stands() {
    let table = RetryAfter::new(2);
    let now = Instant::now();
    table.hold(1, now, Duration::from_secs(2));
    assert!(table.holds(1, now));
    assert!(!table.holds(0, now));
    assert!(table.holds(1, now + Duration::from_millis(1_900)));
    assert!(!table.holds(1, now + Duration::from_millis(2_100)));
    table.hold(1, now, Duration::from_secs(1));
    assert!(
        table.holds(1, now + Duration::from_millis(1_500)),
        "shorter does not cut"
    );
    table.hold(1, now, Duration::from_secs(86_400));
    assert!(!table.holds(1, now + MAX_HOLD + Duration::from_secs(1)));
    // Out of range: ignored.
    table.hold(7, now, Duration::from_secs(1));
    assert!(!table.holds(7, now));
}
