//! Upstream groups: the backends of one `upstreams:` entry, the policy that
//! orders them, and their live load.
//!
//! Pingora's `LoadBalancer<S>` is generic over the policy; [`Pick`] erases
//! that once, and [`Upstream::build`] holds the one `match` on the configured
//! policy. Everything else talks to `Upstream` by backend *index* (config
//! order), which is also the index of the load table and metrics.

pub mod breaker;
pub mod load;
pub mod selection;

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::FutureExt;
use pingora::lb::discovery::Static;
use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::{Backend, Backends, LoadBalancer};

use crate::config::{BackendSpec, Policy, UpstreamSpec};
use load::{InflightGuard, LoadTable};
use selection::{index_of, BackendIndex, SelectionContext};

/// An upstream group that can pick a backend: `LoadBalancer<S>` for any policy.
pub trait Pick: Send + Sync {
    /// The first backend (by index) in policy order for which `accept` holds.
    fn pick(&self, key: &[u8], accept: &dyn Fn(usize) -> bool) -> Option<usize>;
}

impl<S> Pick for LoadBalancer<S>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    fn pick(&self, key: &[u8], accept: &dyn Fn(usize) -> bool) -> Option<usize> {
        // A policy may repeat candidates (random ones do); bound the walk so a
        // pick never spins, while leaving room to see every backend.
        let budget = self.backends().get_backend().len() * 4 + 16;
        let chosen = self.select_with(key, budget, |b, ready| {
            ready && index_of(b).is_some_and(accept)
        })?;
        index_of(&chosen)
    }
}

pub struct Upstream {
    pub spec: Arc<UpstreamSpec>,
    picker: Arc<dyn Pick>,
    load: Arc<LoadTable>,
}

impl Upstream {
    pub fn build(spec: Arc<UpstreamSpec>) -> Self {
        let load = LoadTable::new(spec.backends.len());
        let ctx = SelectionContext {
            load: Arc::clone(&load),
        };
        let set = backend_set(&spec.backends);
        let picker: Arc<dyn Pick> = match spec.policy {
            // Only round robin is implemented so far; `check` warns about the rest.
            Policy::RoundRobin
            | Policy::WeightedRoundRobin
            | Policy::LeastConn
            | Policy::P2c
            | Policy::ConsistentHash
            | Policy::Random => Arc::new(balancer::<selection::RoundRobin>(set, ctx)),
        };
        Self { spec, picker, load }
    }

    /// The backend for this attempt: the policy's first choice among backends
    /// that are up, not draining (weight 0) and not in `tried`.
    pub fn select(&self, key: &[u8], tried: &[usize]) -> Option<usize> {
        let backends = &self.spec.backends;
        self.picker
            .pick(key, &|i| backends[i].weight > 0 && !tried.contains(&i))
    }

    pub fn acquire(&self, index: usize) -> InflightGuard {
        self.load.acquire(index)
    }

    pub fn inflight(&self, index: usize) -> usize {
        self.load.inflight(index)
    }

    pub fn backend(&self, index: usize) -> &BackendSpec {
        &self.spec.backends[index]
    }
}

fn backend_set(specs: &[BackendSpec]) -> BTreeSet<Backend> {
    specs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut backend = Backend {
                addr: pingora::protocols::l4::socket::SocketAddr::Inet(b.socket),
                weight: b.weight as usize,
                ext: Default::default(),
            };
            backend.ext.insert(BackendIndex(i));
            backend
        })
        .collect()
}

fn balancer<S>(set: BTreeSet<Backend>, ctx: SelectionContext) -> LoadBalancer<S>
where
    S: BackendSelection<Config = SelectionContext> + 'static,
    S::Iter: BackendIter,
{
    let backends = Backends::new(Static::new(set));
    let lb = LoadBalancer::from_backends_with_config(backends, Some(ctx));
    // Static discovery never waits and never fails: this fills the selector now.
    if let Some(Err(e)) = lb.update().now_or_never() {
        log::error!("building upstream selector: {e}");
    }
    lb
}
