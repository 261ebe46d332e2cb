//! Cost of one rate-limit check, and memory per remembered key.
//!
//! `cargo bench --bench rate_limit` prints the memory figures (live heap bytes
//! counted by a wrapping allocator) before criterion's timings.
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion};
use switchyard::config::{RateKey, RateLimit, RateStore, StoreErrorPolicy};
use switchyard::filters::rate_limit::{RateLimiter, DEFAULT_MAX_KEYS};

/// The system allocator, keeping a count of live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn cfg(rate: u64, per: Duration, burst: u64) -> RateLimit {
    RateLimit {
        rate,
        per,
        burst,
        key: RateKey::ClientIp,
        store: RateStore::Local,
        on_store_error: StoreErrorPolicy::Allow,
    }
}

/// Heap bytes held by a store after `keys` distinct keys each took a token,
/// none refilled yet (1 token per hour).
fn heap_after(keys: u64, max_keys: usize) -> (usize, usize) {
    let t0 = Instant::now();
    let before = LIVE.load(Ordering::Relaxed);
    let rl = RateLimiter::with_max_keys(&cfg(1, Duration::from_secs(3600), 10), max_keys, t0);
    for i in 0..keys {
        rl.check(&i.to_le_bytes(), t0);
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let len = rl.len();
    drop(black_box(rl));
    (bytes, len)
}

fn memory_report(keys: u64) {
    let (bytes, len) = heap_after(keys, keys as usize * 2);
    println!(
        "memory: {keys} distinct keys, uncapped: {bytes} heap bytes for {len} keys = {:.1} bytes/key",
        bytes as f64 / len as f64
    );
    let (bytes, len) = heap_after(keys, DEFAULT_MAX_KEYS);
    println!(
        "memory: {keys} distinct keys, default cap {DEFAULT_MAX_KEYS}: {len} keys kept, {bytes} heap bytes ({:.1} MiB)",
        bytes as f64 / (1 << 20) as f64
    );
}

fn checks(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit");
    let t0 = Instant::now();

    // One client over and over (always allowed: the cost is the same either way).
    let hot = RateLimiter::new(&cfg(1_000_000_000, Duration::from_secs(1), 1 << 40), t0);
    let key = [203u8, 0, 113, 7];
    g.bench_function("hot_key", |b| b.iter(|| hot.check(black_box(&key), t0)));

    // Every check a new key, the store below its cap: insert and grow.
    g.bench_function(BenchmarkId::new("fresh_key", "below_cap"), |b| {
        b.iter_custom(|iters| {
            let rl = RateLimiter::with_max_keys(
                &cfg(100, Duration::from_secs(1), 100),
                iters as usize * 2,
                t0,
            );
            let start = Instant::now();
            for i in 0..iters {
                black_box(rl.check(&i.to_le_bytes(), t0));
            }
            start.elapsed()
        })
    });

    // At the cap, buckets refill 10 ms after their take and are evicted as
    // new keys arrive (1 µs of simulated time per check).
    let churn = RateLimiter::new(&cfg(100, Duration::from_secs(1), 100), t0);
    let mut i = 0u64;
    g.bench_function(BenchmarkId::new("fresh_key", "at_cap_evicting"), |b| {
        b.iter(|| {
            i += 1;
            churn.check(&i.to_le_bytes(), t0 + Duration::from_micros(i))
        })
    });

    // At the cap with every bucket still draining: new keys share overflow buckets.
    let full = RateLimiter::new(&cfg(1, Duration::from_secs(3600), 10), t0);
    let mut j = 0u64;
    g.bench_function(BenchmarkId::new("fresh_key", "at_cap_draining"), |b| {
        b.iter(|| {
            j += 1;
            full.check(&j.to_le_bytes(), t0 + Duration::from_micros(j))
        })
    });
    g.finish();
}

criterion_group!(benches, checks);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and
    // only wants a smoke test: keep that short.
    let smoke = !std::env::args().any(|a| a == "--bench");
    memory_report(if smoke { 10_000 } else { 1_000_000 });
    benches();
    Criterion::default().configure_from_args().final_summary();
}
