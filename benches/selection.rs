//! Cost of one backend pick per balancing policy, at 3, 100 and 1000 backends.
//!
//! - `pick/POLICY/N`: the policy alone, `iter(key)` + the first `next()`.
//! - `select_with/POLICY/N`: the same through Pingora's
//!   `LoadBalancer::select_with` with an accept-all closure reading the
//!   backend index, as `Upstream::select` does. Adds Pingora's per-call
//!   overhead (a de-duplicating `UniqueIterator`, a clone of the chosen
//!   `Backend`, the readiness lookup).
//! - `walk/POLICY/N`: the same through switchyard's `Walk` behind `Pick`,
//!   which is what `Upstream::select` calls now: the walk `select_with`
//!   does, with health read from an array and no hashing or cloning.
//!
//! Backends have weights 1..=4 and a few in-flight requests each, so
//! load-aware policies compare real numbers. Keys cycle through 1024
//! distinct client-like strings.
//!
//! Run: `cargo bench --bench selection -- --warm-up-time 1 --measurement-time 2`

use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use futures::FutureExt;
use pingora::lb::discovery::Static;
use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::{Backend, Backends, LoadBalancer};
use switchyard::upstream::health::HealthEvents;
use switchyard::upstream::load::{InflightGuard, LoadTable};
use switchyard::upstream::selection::{
    index_of, BackendIndex, ConsistentHash, LeastConn, P2c, Random, RoundRobin, SelectionContext,
    WeightedRoundRobin,
};
use switchyard::upstream::{self, Pick};

const SIZES: [usize; 3] = [3, 100, 1000];

fn backends(n: usize) -> BTreeSet<Backend> {
    (0..n)
        .map(|i| {
            let addr = format!("10.{}.{}.{}:8080", i / 65536, (i / 256) % 256, i % 256);
            let mut b = Backend::new_with_weight(&addr, i % 4 + 1).expect("valid address");
            b.ext.insert(BackendIndex(i));
            b
        })
        .collect()
}

/// A load table with `i % 5` requests in flight on backend `i`; the guards
/// keep them there while the benchmark runs.
fn loaded(n: usize) -> (SelectionContext, Vec<InflightGuard>) {
    let load = LoadTable::new(n);
    let guards = (0..n)
        .flat_map(|i| (0..i % 5).map(move |_| i))
        .map(|i| load.acquire(i))
        .collect();
    (SelectionContext { load }, guards)
}

fn keys() -> Vec<Vec<u8>> {
    (0..1024)
        .map(|i| format!("203.0.113.{}:{}", i % 256, 40000 + i).into_bytes())
        .collect()
}

fn bench_policy<S>(c: &mut Criterion, name: &str)
where
    S: BackendSelection<Config = SelectionContext> + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    let keys = keys();
    for n in SIZES {
        let set = backends(n);
        let (ctx, _guards) = loaded(n);

        let sel = Arc::new(S::build_with_config(&set, &ctx));
        let mut k = 0usize;
        c.bench_with_input(BenchmarkId::new(format!("pick/{name}"), n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) & 1023;
                let mut it = sel.iter(black_box(&keys[k]));
                it.next().map(|b| b.weight)
            })
        });

        let names = (0..n).map(|i| i.to_string()).collect();
        let walk: Arc<dyn Pick> = Arc::new(upstream::walk::<S>(
            &set,
            &ctx,
            HealthEvents::new("bench", names),
        ));
        let mut k = 0usize;
        c.bench_with_input(BenchmarkId::new(format!("walk/{name}"), n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) & 1023;
                walk.pick(black_box(&keys[k]), &|i| black_box(i) < n)
            })
        });

        let lb = LoadBalancer::<S>::from_backends_with_config(
            Backends::new(Static::new(set)),
            Some(ctx),
        );
        if let Some(Err(e)) = lb.update().now_or_never() {
            panic!("static discovery failed: {e}");
        }
        let budget = n * 4 + 16;
        let mut k = 0usize;
        c.bench_with_input(
            BenchmarkId::new(format!("select_with/{name}"), n),
            &n,
            |b, _| {
                b.iter(|| {
                    k = (k + 1) & 1023;
                    lb.select_with(black_box(&keys[k]), budget, |b, ready| {
                        ready && index_of(b).is_some()
                    })
                })
            },
        );
    }
}

fn selection(c: &mut Criterion) {
    bench_policy::<RoundRobin>(c, "round_robin");
    bench_policy::<WeightedRoundRobin>(c, "weighted_round_robin");
    bench_policy::<LeastConn>(c, "least_conn");
    bench_policy::<P2c>(c, "p2c");
    bench_policy::<ConsistentHash>(c, "consistent_hash");
    bench_policy::<Random>(c, "random");
}

criterion_group!(benches, selection);
criterion_main!(benches);
