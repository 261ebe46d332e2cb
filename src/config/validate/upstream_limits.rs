//! An upstream's retry and queue keys: `retry_on`, `retry_budget`, `queue`.

use std::time::Duration;

use super::super::model::*;
use super::super::path::YamlPath;
use super::super::problem::Problems;
use super::super::raw::*;
use super::nonzero_duration;

/// `queue: { max, timeout }`: `max` at least 1 (default 1000), `timeout`
/// a non-zero duration (default 5s).
pub(super) fn queue(q: RawQueue, path: &YamlPath, p: &mut Problems) -> QueueSpec {
    let max = match q.max {
        None => 1000,
        Some(0) => {
            p.error(&path.key("max"), "must be at least 1")
                .hint("remove `queue` to answer 503 at once when every backend is full");
            1000
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let timeout = nonzero_duration(
        q.timeout.as_ref(),
        Duration::from_secs(5),
        &path.key("timeout"),
        p,
    );
    QueueSpec { max, timeout }
}

/// `retry_on`: names, or the statuses 502/503/504 as numbers or strings.
pub(super) fn retry_on(items: &[StatusSpec], path: &YamlPath, p: &mut Problems) -> RetryOn {
    let mut set = RetryOn::default();
    for (i, item) in items.iter().enumerate() {
        let name = match item {
            StatusSpec::Code(c) => c.to_string(),
            StatusSpec::Text(t) => t.clone(),
        };
        match RetryReason::from_name(&name) {
            Some(r) => set = set.with(r),
            None => {
                let valid: Vec<&str> = RetryReason::ALL.iter().map(|r| r.name()).collect();
                p.error(
                    &path.index(i),
                    format!("unknown retry_on reason \"{name}\""),
                )
                .hint(format!("valid reasons: {}", valid.join(", ")));
            }
        }
    }
    set
}

/// A percentage such as `20%` (0% ..= 1000%), as a ratio.
pub(super) fn percentage(text: &str, path: &YamlPath, p: &mut Problems) -> f64 {
    match super::percent_of(text) {
        Some(v) if v <= 1000.0 => v / 100.0,
        _ => {
            p.error(path, format!("retry_budget \"{text}\" is not a percentage"))
                .hint("write a share of first tries from 0% to 1000%, e.g. retry_budget: 20%");
            0.2
        }
    }
}
