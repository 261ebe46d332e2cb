//! From DNS answers to an upstream's backend list: pure, so the rules
//! (literal backends first, each record once, vanished records drained for
//! a while) are tested without a DNS server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::resolver::Record;
use crate::config::{BackendSpec, DnsSource};

/// A record that vanished from its source's answer: served as draining
/// (weight 0: no new requests, sticky clients still served) until `until`.
#[derive(Debug, Clone)]
pub struct Gone {
    pub source: String,
    pub until: Instant,
}

/// The backends of an upstream: the literal ones as configured, then each
/// source's records in order (a socket already listed is not listed again),
/// then vanished records still draining at `now`.
pub fn backends(
    literal: &[BackendSpec],
    answers: &[(&DnsSource, &[Record])],
    gone: &HashMap<SocketAddr, Gone>,
    now: Instant,
) -> Vec<BackendSpec> {
    let mut out: Vec<BackendSpec> = literal.to_vec();
    let listed = |out: &[BackendSpec], s: SocketAddr| out.iter().any(|b| b.socket == s);
    for (source, records) in answers {
        for r in *records {
            if !listed(&out, r.socket) {
                out.push(from_dns(source.name(), r.socket, r.weight, r.max_conns));
            }
        }
    }
    let mut draining: Vec<_> = gone.iter().filter(|(_, g)| g.until > now).collect();
    draining.sort_by_key(|(s, _)| **s);
    for (socket, g) in draining {
        if !listed(&out, *socket) {
            out.push(from_dns(&g.source, *socket, 0, 0));
        }
    }
    out
}

/// Records in `before` that are not in `now_answer`: they start draining.
pub fn vanished(before: &[Record], now_answer: &[Record]) -> Vec<SocketAddr> {
    before
        .iter()
        .filter(|b| !now_answer.iter().any(|n| n.socket == b.socket))
        .map(|b| b.socket)
        .collect()
}

fn from_dns(source: &str, socket: SocketAddr, weight: u32, max_conns: u32) -> BackendSpec {
    BackendSpec {
        addr: socket.to_string(),
        socket,
        weight,
        max_conns,
        name: Some(source.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn host() -> DnsSource {
        DnsSource::Host {
            name: "web:80".into(),
            host: "web".into(),
            port: 80,
            weight: 1,
            max_conns: 0,
        }
    }

    fn rec(s: &str, weight: u32) -> Record {
        Record {
            socket: s.parse().unwrap(),
            weight,
            max_conns: 0,
        }
    }

    #[test]
    fn literal_first_then_records_once_each() {
        let literal = [BackendSpec {
            addr: "10.0.0.1:80".into(),
            socket: "10.0.0.1:80".parse().unwrap(),
            weight: 2,
            max_conns: 0,
            name: None,
        }];
        let source = host();
        let records = [rec("10.0.0.1:80", 1), rec("10.0.0.2:80", 1)];
        let out = backends(
            &literal,
            &[(&source, &records[..])],
            &HashMap::new(),
            Instant::now(),
        );
        let addrs: Vec<_> = out.iter().map(|b| b.addr.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.2:80"]);
        assert_eq!(out[0].weight, 2, "the literal backend keeps its weight");
        assert_eq!(out[1].name.as_deref(), Some("web:80"));
    }

    #[test]
    fn a_vanished_record_drains_until_its_time_is_up() {
        let source = host();
        let now = Instant::now();
        let before = [rec("10.0.0.2:80", 1), rec("10.0.0.3:80", 1)];
        let after = [rec("10.0.0.2:80", 1)];
        let gone: HashMap<_, _> = vanished(&before, &after)
            .into_iter()
            .map(|s| {
                let g = Gone {
                    source: "web:80".into(),
                    until: now + Duration::from_secs(30),
                };
                (s, g)
            })
            .collect();
        let out = backends(&[], &[(&source, &after[..])], &gone, now);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].addr, "10.0.0.3:80");
        assert_eq!(out[1].weight, 0, "draining");
        let later = backends(
            &[],
            &[(&source, &after[..])],
            &gone,
            now + Duration::from_secs(31),
        );
        assert_eq!(later.len(), 1, "dropped once its drain time is over");
    }

    #[test]
    fn a_record_that_returns_is_served_again() {
        let source = host();
        let now = Instant::now();
        let mut gone = HashMap::new();
        gone.insert(
            "10.0.0.3:80".parse().unwrap(),
            Gone {
                source: "web:80".into(),
                until: now + Duration::from_secs(30),
            },
        );
        let back = [rec("10.0.0.3:80", 1)];
        let out = backends(&[], &[(&source, &back[..])], &gone, now);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].weight, 1);
    }
}
