//! Running `h2load` (nghttp2) and reading its report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What one h2load run reported.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// "finished in ...": from the first connect to the last response.
    pub elapsed: Duration,
    pub succeeded: u64,
    /// h2load's "failed": every request that did not succeed, HTTP errors
    /// (non-2xx/3xx) included.
    pub failed: u64,
    /// h2load's "errored": the part of `failed` that is not an HTTP status
    /// (connection errors, streams reset, timeouts).
    pub errored: u64,
    /// "time for request" mean and max, milliseconds.
    pub mean_ms: f64,
    pub max_ms: f64,
    /// What the first connection negotiated, e.g. "TLSv1.3
    /// TLS_AES_128_GCM_SHA256 X25519 h2".
    pub negotiated: String,
}

/// How h2load drives the target.
pub struct H2load<'a> {
    pub url: &'a str,
    pub clients: usize,
    /// Total requests; ignored when `seconds` is set.
    pub requests: usize,
    /// `-D`: run this long instead of a request count.
    pub seconds: Option<u64>,
    /// `-m`: streams in flight per connection.
    pub streams: usize,
    /// HTTP/1.1 (ALPN `http/1.1`) instead of h2.
    pub h1: bool,
    /// An `OPENSSL_CONF` for h2load (e.g. one that turns TLS 1.3 off).
    pub openssl_conf: Option<&'a Path>,
    /// `--log-file`: one line per request with its duration.
    pub log: Option<&'a Path>,
    /// `-t`: h2load threads (at most `clients`).
    pub threads: usize,
    /// CPUs h2load may run on (`taskset -c`), or anywhere.
    pub cpus: Option<&'a str>,
}

impl H2load<'_> {
    pub fn run(&self) -> Report {
        let mut cmd = match self.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus, "h2load"]);
                c
            }
            None => Command::new("h2load"),
        };
        cmd.arg(format!("--clients={}", self.clients))
            .arg(format!("--threads={}", self.threads.clamp(1, self.clients)))
            .arg(format!("--max-concurrent-streams={}", self.streams));
        match self.seconds {
            Some(s) => cmd.arg(format!("--duration={s}")),
            None => cmd.arg(format!("--requests={}", self.requests)),
        };
        if self.h1 {
            cmd.arg("--h1");
        }
        if let Some(log) = self.log {
            cmd.arg(format!("--log-file={}", log.display()));
        }
        match self.openssl_conf {
            Some(conf) => cmd.env("OPENSSL_CONF", conf),
            None => cmd.env_remove("OPENSSL_CONF"),
        };
        let out = cmd.arg(self.url).output().expect("h2load runs");
        let text = String::from_utf8_lossy(&out.stdout);
        parse(&text).unwrap_or_else(|| {
            panic!(
                "cannot read h2load's report:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// Reads the parts of h2load's report this bench uses:
///
/// ```text
/// TLS Protocol: TLSv1.3
/// Cipher: TLS_AES_128_GCM_SHA256
/// Server Temp Key: X25519 253 bits
/// Application protocol: h2
/// finished in 10.00s, 34048.93 req/s, 2.31MB/s
/// requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout
///                      min         max         mean         sd        +/- sd
/// time for request:     1.54ms     11.15ms      4.28ms      1.94ms    79.35%
/// ```
pub fn parse(text: &str) -> Option<Report> {
    let mut r = Report::default();
    let mut finished = false;
    let mut negotiated = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            // "10.00s, 34048.93 req/s, 2.31MB/s"
            r.elapsed = duration(rest.split(',').next()?.trim())?;
            finished = true;
        } else if let Some(rest) = line.strip_prefix("requests:") {
            for part in rest.split(',') {
                let mut words = part.split_whitespace();
                let n: u64 = words.next()?.parse().ok()?;
                // "timeout" is a part of "errored", which is a part of
                // "failed": adding them up would count a request twice.
                match words.next()? {
                    "succeeded" => r.succeeded = n,
                    "failed" => r.failed = n,
                    "errored" => r.errored = n,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            let cols: Vec<&str> = rest.split_whitespace().collect();
            r.max_ms = duration(cols.get(1)?)?.as_secs_f64() * 1000.0;
            r.mean_ms = duration(cols.get(2)?)?.as_secs_f64() * 1000.0;
        } else if let Some(v) = line
            .strip_prefix("TLS Protocol:")
            .or_else(|| line.strip_prefix("Protocol:"))
            .or_else(|| line.strip_prefix("Cipher:"))
            .or_else(|| line.strip_prefix("Application protocol:"))
        {
            negotiated.push(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Server Temp Key:") {
            // "X25519 253 bits", "ECDH P-256 256 bits": the group name.
            let words: Vec<&str> = v.split_whitespace().collect();
            let name = match words.as_slice() {
                ["ECDH", curve, ..] => curve,
                [name, ..] => name,
                [] => "?",
            };
            negotiated.push(name.to_string());
        }
    }
    r.negotiated = negotiated.join(" ");
    finished.then_some(r)
}

/// "69us", "7.26ms", "10.00s", "1.5m" as h2load prints them.
fn duration(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Request durations from an h2load `--log-file` (start µs, status,
/// duration µs per line), milliseconds, sorted; failed streams (status -1)
/// left out.
pub fn log_durations(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut v: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let _start = cols.next()?;
            let status: i32 = cols.next()?.parse().ok()?;
            let us: f64 = cols.next()?.trim().parse().ok()?;
            (status > 0).then_some(us / 1000.0)
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// The `q` quantile (0..=1) of sorted values; 0 when there are none.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}
