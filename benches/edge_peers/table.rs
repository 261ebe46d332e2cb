//! A scenario's Markdown table: every round of every proxy, then its
//! median, what was negotiated, and switchyard against the best peer.

use crate::measure::Sample;

/// Which numbers a scenario's load produces.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Handshakes,
    /// h2load requests: mean, p50, p99 and max request time.
    H2,
    /// wrk requests: p50 and p99 (wrk prints no per-request mean or max).
    Wrk,
}

/// One column: its heading, its value in a sample, decimals, and whether
/// the median row shows the sum over rounds (counts of errors) rather than
/// the median.
struct Col {
    head: &'static str,
    value: fn(&Sample) -> f64,
    decimals: usize,
    total: bool,
}

const fn col(head: &'static str, value: fn(&Sample) -> f64, decimals: usize) -> Col {
    Col {
        head,
        value,
        decimals,
        total: false,
    }
}

const fn count(head: &'static str, value: fn(&Sample) -> f64) -> Col {
    Col {
        head,
        value,
        decimals: 0,
        total: true,
    }
}

fn columns(kind: Kind) -> Vec<Col> {
    match kind {
        Kind::Handshakes => vec![
            col("handshakes/s", |s| s.rate, 0),
            col("proxy CPU µs per handshake", |s| s.cpu_us, 0),
            col("proxy CPU busy, %", |s| s.cpu_pct, 0),
            col(
                "handshakes/s one busy core could do (10⁶ / CPU µs)",
                |s| 1e6 / s.cpu_us,
                0,
            ),
            count("failed", |s| s.failed as f64),
            count("errored", |s| s.errored as f64),
        ],
        Kind::H2 => vec![
            col("req/s", |s| s.rate, 0),
            col("mean ms", |s| s.mean_ms, 2),
            col("p50 ms", |s| s.p50_ms, 2),
            col("p99 ms", |s| s.p99_ms, 2),
            col("max ms", |s| s.max_ms, 1),
            col("proxy CPU µs per request", |s| s.cpu_us, 1),
            col("proxy CPU busy, %", |s| s.cpu_pct, 0),
            count("failed", |s| s.failed as f64),
            count("errored", |s| s.errored as f64),
        ],
        Kind::Wrk => vec![
            col("req/s", |s| s.rate, 0),
            col("p50 ms", |s| s.p50_ms, 2),
            col("p99 ms", |s| s.p99_ms, 2),
            col("proxy CPU µs per request", |s| s.cpu_us, 1),
            col("proxy CPU busy, %", |s| s.cpu_pct, 0),
            count("errors", |s| s.failed as f64),
        ],
    }
}

/// The middle value; with an even count, the mean of the two middle ones.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n % 2 {
        1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// What a scenario measured: `results[i]` holds proxy `names[i]`'s rounds;
/// switchyard comes first.
pub struct Outcome<'a> {
    pub title: &'a str,
    pub kind: Kind,
    pub names: &'a [&'a str],
    pub results: &'a [Vec<Sample>],
    pub secs: u64,
    /// The 1-minute load average before and after the scenario.
    pub load_avg: (String, String),
}

pub fn print(o: &Outcome) {
    let cols = columns(o.kind);
    println!("\n### {}\n", o.title);
    let heads: Vec<&str> = cols.iter().map(|c| c.head).collect();
    println!("| proxy | round | {} |", heads.join(" | "));
    println!("|---|---|{}", "---:|".repeat(cols.len()));
    let cell = |c: &Col, v: f64| format!("{:.*}", c.decimals, v);
    for (name, samples) in o.names.iter().zip(o.results) {
        for (round, s) in samples.iter().enumerate() {
            let cells: Vec<String> = cols.iter().map(|c| cell(c, (c.value)(s))).collect();
            println!("| {name} | {} | {} |", round + 1, cells.join(" | "));
        }
        let cells: Vec<String> = cols
            .iter()
            .map(|c| {
                let all = samples.iter().map(c.value);
                let v = match c.total {
                    true => all.sum(),
                    false => median(all.collect()),
                };
                format!("**{}**", cell(c, v))
            })
            .collect();
        println!("| **{name}** | **median** | {} |", cells.join(" | "));
    }
    let negotiated: Vec<String> = o
        .names
        .iter()
        .zip(o.results)
        .map(|(name, s)| format!("{name}: {}", s[0].negotiated))
        .collect();
    println!(
        "\nError columns in a median row: the sum over its rounds. Negotiated: {}.",
        negotiated.join("; ")
    );
    summary(o);
}

/// switchyard's median rate and CPU per unit against the best peer's.
fn summary(o: &Outcome) {
    let med = |s: &[Sample], f: fn(&Sample) -> f64| median(s.iter().map(f).collect());
    let rate: Vec<f64> = o.results.iter().map(|s| med(s, |x| x.rate)).collect();
    let cpu: Vec<f64> = o.results.iter().map(|s| med(s, |x| x.cpu_us)).collect();
    let best_rate = rate[1..].iter().copied().fold(0.0, f64::max);
    let best_cpu = cpu[1..].iter().copied().fold(f64::INFINITY, f64::min);
    let (unit, per) = match o.kind {
        Kind::Handshakes => ("handshakes/s", "handshake"),
        _ => ("req/s", "request"),
    };
    println!(
        "\nswitchyard / best peer: **{:.2}×** {unit}; CPU per {per}: {:.2}× the leanest peer's ({} interleaved rounds of {} s; load average before/after: {} / {})",
        rate[0] / best_rate,
        cpu[0] / best_cpu,
        o.results[0].len(),
        o.secs,
        o.load_avg.0,
        o.load_avg.1,
    );
}
