//! CPU cost of response compression per coding: a realistic 1 MiB JSON
//! body pushed through `switchyard::compress::Encoder` in 16 KiB pieces
//! (the forwarder's read size), at the levels switchyard uses.
//!
//! Two ways a body meets the encoder:
//! - `streamed`: pieces arrive back to back, one flush at the end (the
//!   forwarder flushes the codec only when the backend pauses);
//! - `flushed`: a sync flush after every piece (Pingora's path, which
//!   flushes each backend read; also a worst case for a slow backend).
//!
//! `cargo bench --bench compress` prints each coding's compression ratio
//! first, then criterion's throughput (MiB/s of uncompressed input).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use switchyard::compress::{Coding, Encoder};

const PIECE: usize = 16 * 1024;
const BODY: usize = 1024 * 1024;

/// An API response: an array of records with ids, names, timestamps,
/// numbers and flags drawn from a fixed pseudo-random sequence.
fn json_body() -> Vec<u8> {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = String::from("[");
    let mut i = 0u64;
    while out.len() < BODY {
        let r = next();
        let name = format!(
            "{} {}",
            words[(r % 16) as usize],
            words[((r >> 8) % 16) as usize]
        );
        out.push_str(&format!(
            "{{\"id\":{},\"uuid\":\"{:016x}\",\"name\":\"{name}\",\"email\":\"{}.{}@example.com\",\
             \"created_at\":\"2026-{:02}-{:02}T{:02}:{:02}:{:02}Z\",\"score\":{}.{:02},\
             \"active\":{},\"tags\":[\"{}\",\"{}\"]}},\n",
            1_000_000 + i,
            next(),
            words[((r >> 16) % 16) as usize],
            (r >> 20) % 1000,
            1 + (r >> 24) % 12,
            1 + (r >> 28) % 28,
            (r >> 32) % 24,
            (r >> 36) % 60,
            (r >> 42) % 60,
            (r >> 48) % 1000,
            (r >> 52) % 100,
            (r >> 58) % 2 == 0,
            words[((r >> 40) % 16) as usize],
            words[((r >> 44) % 16) as usize],
        ));
        i += 1;
    }
    out.truncate(BODY - 1);
    out.push(']');
    out.into_bytes()
}

/// The compressed size of `body`.
fn compress(coding: Coding, body: &[u8], flush_each: bool) -> usize {
    let mut e = Encoder::new(coding).unwrap();
    let mut out = Vec::with_capacity(body.len() / 4);
    for piece in body.chunks(PIECE) {
        e.push(piece, &mut out).unwrap();
        if flush_each {
            e.flush(&mut out).unwrap();
        }
    }
    e.finish(&mut out).unwrap();
    out.len()
}

fn main() {
    let body = json_body();
    println!(
        "body: {} bytes of JSON, pieces of {PIECE} bytes",
        body.len()
    );
    for coding in Coding::PREFERRED {
        for (mode, flush) in [("streamed", false), ("flushed", true)] {
            let size = compress(coding, &body, flush);
            println!(
                "ratio {:>4} {mode:>8}: {size:>7} bytes, {:.1}x ({:.1}% of the input)",
                coding.token(),
                body.len() as f64 / size as f64,
                100.0 * size as f64 / body.len() as f64
            );
        }
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(body.len() as u64));
    for coding in Coding::PREFERRED {
        for (mode, flush) in [("streamed", false), ("flushed", true)] {
            g.bench_function(BenchmarkId::new(coding.token(), mode), |b| {
                b.iter(|| compress(coding, black_box(&body), flush))
            });
        }
    }
    g.finish();
    c.final_summary();
}
