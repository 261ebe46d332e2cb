//! `outlier_detection`: counts, the latency factor, durations and the
//! `max_ejected` percentage. Defaults are the SPEC example's values.

use std::time::Duration;

use super::super::model::OutlierDetection;
use super::super::path::YamlPath;
use super::super::problem::Problems;
use super::super::raw::RawOutlierDetection;
use super::nonzero_duration;

/// Largest accepted `latency_factor`.
const MAX_FACTOR: f64 = 1000.0;

pub(super) fn outlier_detection(
    o: RawOutlierDetection,
    path: &YamlPath,
    p: &mut Problems,
) -> OutlierDetection {
    let count = |v: Option<u64>, default: u32, key: &str, p: &mut Problems| match v {
        None => default,
        Some(n) if n <= 1_000_000 => n as u32,
        Some(_) => {
            p.error(&path.key(key), "must be between 0 (off) and 1000000");
            default
        }
    };
    let latency_factor = match o.latency_factor {
        None => 3.0,
        Some(f) if f == 0.0 || (f > 1.0 && f <= MAX_FACTOR) => f,
        Some(f) => {
            p.error(
                &path.key("latency_factor"),
                format!("{f} is not 0 (off) or a factor above 1 (at most {MAX_FACTOR})"),
            )
            .hint("e.g. latency_factor: 3 ejects a backend three times slower than the others");
            3.0
        }
    };
    let max_ejected_percent = match o.max_ejected.as_deref() {
        None => 50,
        Some(s) => percent(s).unwrap_or_else(|| {
            p.error(
                &path.key("max_ejected"),
                format!("\"{s}\" is not a percentage from 0% to 100%"),
            )
            .hint("e.g. max_ejected: 50% (of the upstream's backends)");
            50
        }),
    };
    let detection = OutlierDetection {
        consecutive_5xx: count(o.consecutive_5xx, 5, "consecutive_5xx", p),
        consecutive_gateway_failures: count(
            o.consecutive_gateway_failures,
            3,
            "consecutive_gateway_failures",
            p,
        ),
        latency_factor,
        interval: nonzero_duration(
            o.interval.as_ref(),
            Duration::from_secs(10),
            &path.key("interval"),
            p,
        ),
        base_ejection: nonzero_duration(
            o.base_ejection.as_ref(),
            Duration::from_secs(30),
            &path.key("base_ejection"),
            p,
        ),
        max_ejected_percent,
    };
    if detection.consecutive_5xx == 0
        && detection.consecutive_gateway_failures == 0
        && detection.latency_factor == 0.0
    {
        p.warning(path, "every detector is off: nothing will be ejected")
            .hint("set consecutive_5xx, consecutive_gateway_failures or latency_factor above 0");
    } else if detection.max_ejected_percent == 0 {
        p.warning(
            &path.key("max_ejected"),
            "0% still ejects one backend of two or more",
        );
    }
    detection
}

/// `50%` → 50; whole percentages from 0 to 100.
fn percent(s: &str) -> Option<u32> {
    let v = super::percent_of(s)?;
    (v.fract() == 0.0 && v <= 100.0).then_some(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_whole_and_at_most_100() {
        assert_eq!(percent("50%"), Some(50));
        assert_eq!(percent(" 0 %"), Some(0));
        assert_eq!(percent("100%"), Some(100));
        assert_eq!(percent("101%"), None);
        assert_eq!(percent("50"), None);
        assert_eq!(percent("-5%"), None);
        assert_eq!(percent("12.5%"), None);
    }
}
