//! Human durations as written in the config: `250ms`, `2s`, `1m`, `1h`, and
//! bare `0`. Fractions (`1.5s`) are accepted; negative or unit-less non-zero
//! values are not, because `timeout: 5` is ambiguous.

use std::time::Duration;

/// Parses a config duration, or explains what a valid one looks like.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("\"{s}\" has no unit"))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("\"{s}\" does not start with a number"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("\"{s}\" has unknown unit \"{unit}\"")),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 365.0 * 24.0 * 3600.0 {
        return Err(format!("\"{s}\" is out of range (at most a year)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The hint attached to every duration error.
pub const DURATION_HINT: &str = "write a number with a unit: 250ms, 2s, 1m or 1h";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "5", "s", "-1s", "2 days", "2d", "1e9h", "ms"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
