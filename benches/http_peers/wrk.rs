//! Running `wrk` and reading its report.

use std::process::Command;

/// One wrk run's numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Socket errors plus non-2xx/3xx answers.
    pub errors: u64,
}

/// How wrk drives the target.
pub struct Wrk<'a> {
    pub url: &'a str,
    pub connections: usize,
    pub threads: usize,
    pub seconds: u64,
    /// `Connection: close` on every request: a new connection each time.
    pub close: bool,
    /// CPUs wrk may run on (`taskset -c`), or anywhere.
    pub cpus: Option<&'a str>,
}

impl Wrk<'_> {
    pub fn run(&self) -> Load {
        let mut cmd = match self.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus, "wrk"]);
                c
            }
            None => Command::new("wrk"),
        };
        cmd.arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.seconds))
            .arg("--latency");
        if self.close {
            cmd.args(["-H", "Connection: close"]);
        }
        let out = cmd.arg(self.url).output().expect("wrk runs");
        let text = String::from_utf8_lossy(&out.stdout);
        parse(&text).unwrap_or_else(|| panic!("cannot read wrk's report:\n{text}"))
    }
}

fn parse(text: &str) -> Option<Load> {
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => load.rps = words.next()?.parse().ok()?,
            Some("50%") => load.p50_ms = millis(words.next()?)?,
            Some("99%") => load.p99_ms = millis(words.next()?)?,
            Some("Non-2xx") => load.errors += line.rsplit(' ').next()?.parse::<u64>().ok()?,
            Some("Socket") => {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                load.errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    (load.rps > 0.0).then_some(load)
}

/// "812.00us", "1.23ms", "2.01s" → milliseconds.
fn millis(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}
