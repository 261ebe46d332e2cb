//! `GET /status`: the answering process's pid, every upstream's policy and
//! each backend's live state.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::upstream::Upstream;

#[derive(Serialize)]
pub struct Status<'a> {
    /// The process answering: `switchyard upgrade` waits for the new one's.
    pub pid: u32,
    pub upstreams: BTreeMap<&'a str, UpstreamStatus<'a>>,
}

#[derive(Serialize)]
pub struct UpstreamStatus<'a> {
    pub policy: &'static str,
    pub backends: Vec<BackendStatus<'a>>,
}

#[derive(Serialize)]
pub struct BackendStatus<'a> {
    pub addr: &'a str,
    pub weight: u32,
    pub up: bool,
    pub inflight: usize,
    pub circuit: &'static str,
}

pub fn snapshot(upstreams: &[Arc<Upstream>]) -> Status<'_> {
    let upstreams = upstreams
        .iter()
        .map(|u| {
            let backends = u
                .spec
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| BackendStatus {
                    addr: &b.addr,
                    weight: b.weight,
                    up: u.healthy(i),
                    inflight: u.inflight(i),
                    circuit: u.circuit(i).name(),
                })
                .collect();
            (
                u.spec.name.as_str(),
                UpstreamStatus {
                    policy: u.spec.policy.name(),
                    backends,
                },
            )
        })
        .collect();
    Status {
        pid: std::process::id(),
        upstreams,
    }
}
