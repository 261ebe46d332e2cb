//! `switchyard_http_requests_total` for one listener, route and upstream:
//! a counter handle per status code, looked up in the metric's label map
//! once (on the status's first use) instead of on every request.

use std::sync::OnceLock;

use prometheus::{IntCounter, IntCounterVec};

/// Status codes with a cached handle: 100–599.
const FIRST: u16 = 100;
const COUNT: usize = 500;

pub struct StatusCounters {
    vec: IntCounterVec,
    labels: [String; 3],
    by_status: Box<[OnceLock<IntCounter>]>,
}

impl StatusCounters {
    pub fn new(vec: &IntCounterVec, listener: &str, route: &str, upstream: &str) -> Self {
        Self {
            vec: vec.clone(),
            labels: [listener.into(), route.into(), upstream.into()],
            by_status: (0..COUNT).map(|_| OnceLock::new()).collect(),
        }
    }

    pub fn inc(&self, status: u16) {
        let slot = status
            .checked_sub(FIRST)
            .and_then(|i| self.by_status.get(usize::from(i)));
        match slot {
            Some(cell) => cell.get_or_init(|| self.resolve(status)).inc(),
            None => self.resolve(status).inc(),
        }
    }

    fn resolve(&self, status: u16) -> IntCounter {
        let [listener, route, upstream] = &self.labels;
        let status = status.min(999).to_string();
        self.vec
            .with_label_values(&[listener.as_str(), route, upstream, &status])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Opts;

    #[test]
    fn counts_land_on_the_labelled_series() {
        let vec = IntCounterVec::new(
            Opts::new("t", "t"),
            &["listener", "route", "upstream", "status"],
        )
        .unwrap();
        let c = StatusCounters::new(&vec, "web", "api", "u");
        c.inc(200);
        c.inc(200);
        c.inc(503);
        c.inc(42); // outside the cached range: still counted
        assert_eq!(vec.with_label_values(&["web", "api", "u", "200"]).get(), 2);
        assert_eq!(vec.with_label_values(&["web", "api", "u", "503"]).get(), 1);
        assert_eq!(vec.with_label_values(&["web", "api", "u", "42"]).get(), 1);
    }
}
