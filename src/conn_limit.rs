//! Open client connections per listener: the `switchyard_connections`
//! gauge and the `max_connections_per_ip` cap.
//!
//! A connection holds one [`OpenConn`] for as long as its task runs; its
//! `Drop` gives back what it took (the gauge, the IP's slot), however the
//! connection ends. The per-IP map is touched once when the client address
//! is known (after the PROXY header, with `proxy_protocol`) and once at
//! close, never on the request path; with no cap it is never touched.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use prometheus::{IntCounter, IntGauge};

use crate::admin::Metrics;

/// One listener's open connections.
pub struct ConnLimit {
    open: IntGauge,
    per_ip: Option<PerIp>,
}

struct PerIp {
    max: u32,
    by_ip: Mutex<HashMap<IpAddr, u32>>,
    refused: IntCounter,
}

impl ConnLimit {
    /// `max_per_ip` 0: no cap, only the gauge.
    pub fn new(listener: &str, max_per_ip: u32, metrics: &Metrics) -> Arc<Self> {
        let per_ip = (max_per_ip > 0).then(|| PerIp {
            max: max_per_ip,
            by_ip: Mutex::new(HashMap::new()),
            // Resolved now, so the counter shows 0 before the first refusal.
            refused: metrics
                .connections_refused
                .with_label_values(&[listener, "per_ip"]),
        });
        Arc::new(Self {
            open: metrics.connections.with_label_values(&[listener]),
            per_ip,
        })
    }

    /// A connection was accepted: counted until the guard drops.
    pub fn open(self: &Arc<Self>) -> OpenConn {
        self.open.inc();
        OpenConn {
            limit: Arc::clone(self),
            ip: None,
        }
    }
}

/// An open client connection; dropping it releases its counts.
pub struct OpenConn {
    limit: Arc<ConnLimit>,
    /// The IP whose slot this connection holds (only under a cap).
    ip: Option<IpAddr>,
}

impl OpenConn {
    /// Takes a slot for the client `ip`; `false` when that IP is at the cap
    /// (counted as refused): the caller closes the connection unanswered.
    /// Called once per connection.
    pub fn admit(&mut self, ip: IpAddr) -> bool {
        let Some(per_ip) = &self.limit.per_ip else {
            return true;
        };
        debug_assert!(self.ip.is_none(), "admit is called once");
        // IPv4-mapped IPv6 is the same client as plain IPv4.
        let ip = ip.to_canonical();
        let mut by_ip = per_ip.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = by_ip.entry(ip).or_insert(0);
        if *count >= per_ip.max {
            drop(by_ip);
            per_ip.refused.inc();
            return false;
        }
        *count += 1;
        self.ip = Some(ip);
        true
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.limit.open.dec();
        let (Some(ip), Some(per_ip)) = (self.ip, &self.limit.per_ip) else {
            return;
        };
        let mut by_ip = per_ip.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = by_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                by_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_each_ip_and_releases_on_drop() {
        let metrics = Metrics::new();
        let limit = ConnLimit::new("l", 2, &metrics);
        let gauge = metrics.connections.with_label_values(&["l"]);
        let refused = metrics
            .connections_refused
            .with_label_values(&["l", "per_ip"]);
        let mut a = limit.open();
        let mut b = limit.open();
        let mut c = limit.open();
        let mut other = limit.open();
        assert!(a.admit(ip("10.0.0.1")));
        assert!(b.admit(ip("::ffff:10.0.0.1")));
        assert!(!c.admit(ip("10.0.0.1")));
        assert!(other.admit(ip("10.0.0.2")));
        assert_eq!(refused.get(), 1);
        assert_eq!(gauge.get(), 4);
        drop(c);
        drop(a);
        assert_eq!(gauge.get(), 2);
        let mut d = limit.open();
        assert!(d.admit(ip("10.0.0.1")));
        drop((b, d, other));
        assert_eq!(gauge.get(), 0);
        let per_ip = limit.per_ip.as_ref().unwrap();
        assert!(per_ip.by_ip.lock().unwrap().is_empty());
    }

    #[test]
    fn no_cap_only_counts() {
        let metrics = Metrics::new();
        let limit = ConnLimit::new("l", 0, &metrics);
        let conns: Vec<OpenConn> = (0..5)
            .map(|_| {
                let mut c = limit.open();
                assert!(c.admit(ip("10.0.0.1")));
                c
            })
            .collect();
        assert_eq!(metrics.connections.with_label_values(&["l"]).get(), 5);
        drop(conns);
        assert_eq!(metrics.connections.with_label_values(&["l"]).get(), 0);
    }
}
