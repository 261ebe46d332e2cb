//! `switchyard sim` through the real binary: determinism, the known
//! balls-into-bins bounds, the policy and herd orderings the simulator
//! exists to show, and clear usage errors. Runs are kept small so the
//! debug build finishes in seconds.

use std::process::{Command, Output};

use serde_json::Value;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("sim")
        .args(args)
        .output()
        .expect("run switchyard")
}

/// Stdout of a run that must succeed.
fn ok(args: &[&str]) -> String {
    let out = sim(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(&all)).expect("valid JSON")
}

/// The row of `rows` whose `key` is `name`.
fn row<'a>(v: &'a Value, key: &str, name: &str) -> &'a Value {
    v["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r[key] == name))
        .unwrap_or_else(|| panic!("no row {name}"))
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

const SHORT_HERD: &[&str] = &[
    "herd",
    "--load",
    "0.95",
    "--workers",
    "5",
    "--fail-at",
    "2s",
    "--recover-at",
    "12s",
    "--duration",
    "20s",
];

#[test]
fn the_same_seed_prints_and_draws_the_same_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runs: [&[&str]; 4] = [
        &["balls", "--bins", "2000", "--trials", "3"],
        &["policies", "--requests", "2000"],
        &[
            "herd",
            "--workers",
            "2",
            "--fail-at",
            "1s",
            "--recover-at",
            "3s",
            "--duration",
            "5s",
        ],
        &[
            "outliers",
            "--fail-at",
            "1s",
            "--duration",
            "4s",
            "--load",
            "0.3",
        ],
    ];
    for (i, args) in runs.iter().enumerate() {
        let outputs: Vec<(String, Vec<u8>)> = (0..2)
            .map(|run| {
                let svg = dir.path().join(format!("{i}-{run}.svg"));
                let svg_arg = svg.to_str().expect("utf-8 path");
                let mut all = args.to_vec();
                all.extend(["--seed", "7", "--svg", svg_arg]);
                let text = ok(&all);
                (text, std::fs::read(&svg).expect("svg written"))
            })
            .collect();
        assert_eq!(outputs[0].0, outputs[1].0, "{args:?}");
        assert_eq!(outputs[0].1, outputs[1].1, "{args:?}: SVG differs");
        assert!(outputs[0].1.starts_with(b"<svg"), "{args:?}");
        let mut other = args.to_vec();
        other.extend(["--seed", "8"]);
        assert_ne!(
            ok(&other),
            outputs[0].0,
            "{args:?}: the seed changes nothing"
        );
    }
}

#[test]
fn balls_at_ten_thousand_match_the_theory() {
    let text = ok(&["balls", "--bins", "10000", "--trials", "10", "--seed", "3"]);
    // Rows: choices, mean, min, max of the fullest bin.
    let rows: Vec<Vec<f64>> = text
        .lines()
        .filter_map(|l| {
            let cells: Vec<f64> = l
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            (cells.len() == 4).then_some(cells)
        })
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    let mean = |d: f64| rows.iter().find(|r| r[0] == d).map(|r| r[1]).unwrap_or(0.0);
    assert!((6.0..=8.0).contains(&mean(1.0)), "{text}");
    assert!((3.0..=4.0).contains(&mean(2.0)), "{text}");
    assert!((2.5..=3.0).contains(&mean(3.0)), "{text}");
}

#[test]
fn load_aware_policies_keep_the_tail_short_under_skew() {
    let v = json(&["policies", "--requests", "10000"]);
    let p99 = |p: &str| num(row(&v, "policy", p), "p99_ms");
    for good in ["least_conn", "p2c"] {
        for bad in ["round_robin", "random"] {
            assert!(p99(good) < p99(bad), "{good} vs {bad}: {v}");
        }
    }
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(6));
}

#[test]
fn breakers_prevent_the_retry_cascade() {
    let v = json(SHORT_HERD);
    let naive = row(&v, "variant", "naive");
    for guarded in ["breaker", "breaker+backoff+budget"] {
        let g = row(&v, "variant", guarded);
        assert!(num(g, "success") > num(naive, "success"), "{v}");
        assert!(
            num(g, "peak_survivor_load") < num(naive, "peak_survivor_load"),
            "{v}"
        );
    }
    assert!(
        naive["recovery_s"].is_null(),
        "naive retries never recover: {v}"
    );
}

#[test]
fn the_table_names_every_variant_and_policy() {
    let herd = ok(SHORT_HERD);
    for v in [
        "naive",
        "backoff",
        "breaker",
        "breaker+backoff+budget",
        "never",
    ] {
        assert!(herd.contains(v), "{herd}");
    }
    let policies = ok(&["policies", "--requests", "500"]);
    for p in [
        "round_robin",
        "weighted_round_robin",
        "least_conn",
        "p2c",
        "consistent_hash",
        "random",
    ] {
        assert!(policies.contains(p), "{policies}");
    }
}

#[test]
fn bad_values_are_usage_errors() {
    let cases: [(&[&str], &str); 10] = [
        (&["balls", "--bins", "0"], "--bins"),
        (&["balls", "--choices", "1,x"], "--choices"),
        (&["balls", "--trials", "0"], "--trials"),
        (&["policies", "--rate", "0"], "above 0"),
        (&["policies", "--policies", "fastest"], "least_conn"),
        (&["policies", "--backends", "5", "--slow", "5"], "--slow"),
        (&["herd", "--fail-at", "40s"], "--fail-at < --recover-at"),
        (&["herd", "--timeout", "3"], "no unit"),
        (&["outliers", "--fail-at", "50s"], "--fail-at < --duration"),
        (&["outliers", "--error-share", "2"], "from 0 to 1"),
    ];
    for (args, hint) in cases {
        let out = sim(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(hint), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn an_unwritable_chart_is_a_runtime_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svg = dir.path().join("missing").join("chart.svg");
    let out = sim(&[
        "balls",
        "--bins",
        "10",
        "--svg",
        svg.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write"));
}

/// A short gray failure (backend 0 of 5 turns 10x slow at 2 s, 12 s runs).
fn short_outliers(policy: &str, fault: &str) -> Value {
    json(&[
        "outliers",
        "--fail-at",
        "2s",
        "--duration",
        "12s",
        "--load",
        "0.5",
        "--policy",
        policy,
        "--fault",
        fault,
    ])
}

#[test]
fn ejection_and_retries_hide_a_slow_backend_from_round_robin() {
    let v = short_outliers("round_robin", "slow");
    let errors = |name: &str| num(row(&v, "variant", name), "errors");
    // Round robin keeps sending the slow backend its share: it drowns.
    assert!(errors("none") > 0.1, "{v}");
    for fixed in ["errors", "latency", "retries"] {
        assert!(errors(fixed) < errors("none") / 3.0, "{fixed}: {v}");
    }
    for ejecting in ["errors", "latency"] {
        assert!(num(row(&v, "variant", ejecting), "ejected_s") > 5.0, "{v}");
    }
    let retries = row(&v, "variant", "retries");
    assert!(num(retries, "tries_per_request") > 1.05, "{v}");
    assert_eq!(num(row(&v, "variant", "none"), "ejected_s"), 0.0);
}

#[test]
fn only_latency_ejection_shortens_the_tail_when_nothing_fails() {
    // p2c keeps the slow backend from drowning: no errors to detect, only
    // a long tail.
    let v = short_outliers("p2c", "slow");
    let p99 = |name: &str| num(row(&v, "variant", name), "p99_ms");
    assert_eq!(num(row(&v, "variant", "none"), "errors"), 0.0, "{v}");
    assert!(p99("latency") < p99("none") * 0.7, "{v}");
    assert!(p99("errors") > p99("latency"), "{v}");
}

#[test]
fn error_ejection_catches_a_flaky_backend() {
    let v = short_outliers("round_robin", "errors");
    let errors = |name: &str| num(row(&v, "variant", name), "errors");
    assert!(errors("none") > 0.05, "{v}");
    assert!(errors("errors") < errors("none") / 3.0, "{v}");
    assert_eq!(num(row(&v, "variant", "latency"), "ejected_s"), 0.0, "{v}");
    let table = ok(&[
        "outliers",
        "--fail-at",
        "1s",
        "--duration",
        "3s",
        "--load",
        "0.2",
    ]);
    for name in ["none", "errors", "latency", "retries", "retries+budget"] {
        assert!(table.lines().any(|l| l.starts_with(name)), "{table}");
    }
}
