//! `switchyard check` and `run` on bad configs: every problem named with its
//! YAML path and line, exit codes per the SPEC, all problems in one run.

mod common;
use common::*;

/// (fixture, expected line, expected path, words the message must contain)
const CASES: &[(&str, usize, &str, &str)] = &[
    (
        "unknown_key.yaml",
        6,
        "listeners.web.routes[0].path_prefx",
        "did you mean \"path_prefix\"",
    ),
    (
        "unknown_policy.yaml",
        7,
        "upstreams.api.policy",
        "round_robin, weighted_round_robin, least_conn, p2c",
    ),
    (
        "missing_upstream.yaml",
        7,
        "listeners.web.routes[1].upstream",
        "upstream \"billing\" is not defined",
    ),
    (
        "bad_address.yaml",
        9,
        "upstreams.api.backends[1].addr",
        "127.0.0.1:99999",
    ),
    ("empty_backends.yaml", 6, "upstreams.api", "no backends"),
    (
        "hash_without_key.yaml",
        6,
        "upstreams.api",
        "needs a `hash_key`",
    ),
    (
        "bad_duration.yaml",
        7,
        "upstreams.api.connect_timeout",
        "250ms, 2s, 1m or 1h",
    ),
    ("not_yaml.yaml", 5, "", "not valid YAML"),
    (
        "bad_state_file.yaml",
        2,
        "server.state_file",
        "directory /nonexistent-switchyard-dir does not exist",
    ),
    (
        "wrong_type.yaml",
        9,
        "upstreams.api.backends[0].weight",
        "invalid type",
    ),
];

#[test]
fn every_invalid_fixture_is_rejected_with_path_and_line() {
    for (file, line, path, words) in CASES {
        let (code, _out, err) = check(&fixture(file));
        assert_eq!(code, 1, "{file} should be rejected:\n{err}");
        let wanted = format!("line {line}: error: ");
        let hit = err
            .lines()
            .find(|l| l.contains(&wanted) && l.contains(path))
            .unwrap_or_else(|| panic!("{file}: no error at line {line} for {path:?}:\n{err}"));
        let block = &err[err.find(hit).unwrap()..];
        let block: String = block.lines().take(2).collect::<Vec<_>>().join("\n");
        assert!(block.contains(words), "{file}: {words:?} not in:\n{block}");
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let (code, _out, err) = check(&fixture("many_problems.yaml"));
    assert_eq!(code, 1);
    for (line, path) in [
        (2, "server.threads"),
        (3, "server.grace_perod"),
        (6, "listeners.web.listen"),
        (8, "listeners.web.routes[0].upstream"),
        (11, "upstreams.api.policy"),
        (12, "upstreams.api.read_timeout"),
        (15, "upstreams.api.backends[0].wieght"),
    ] {
        assert!(
            err.contains(&format!("line {line}: error: {path}")),
            "missing line {line} {path} in:\n{err}"
        );
    }
    assert!(err.contains("7 error(s)"), "{err}");
}

#[test]
fn shipped_examples_are_valid() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut n = 0;
    for entry in std::fs::read_dir(conf).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let (code, out, err) = check(&path);
            assert_eq!(code, 0, "{}:\n{err}", path.display());
            assert!(out.contains("ok"), "{out}");
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn run_refuses_an_invalid_config_with_exit_1() {
    let out = std::process::Command::new(BIN)
        .args(["run", "-c"])
        .arg(fixture("unknown_policy.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 7: error: upstreams.api.policy"), "{err}");
}

#[test]
fn run_exits_2_when_it_cannot_bind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.yaml");
    std::fs::write(
        &conf,
        format!("listeners:\n  web:\n    listen: \"{addr}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: [{{ addr: 127.0.0.1:9 }}] }}\n"),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["run", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cannot listen on {addr}")));
}

#[test]
fn usage_errors_exit_1_and_version_exits_0() {
    let out = std::process::Command::new(BIN)
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("switchyard "));
    let (code, _, err) = check(std::path::Path::new("/nonexistent/switchyard.yaml"));
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"));
}

#[test]
fn route_policy_keys_are_checked_with_path_and_line() {
    let (code, _out, err) = check(&fixture("route_policies_bad.yaml"));
    assert_eq!(code, 1, "{err}");
    for (line, path, words) in [
        (2, "server.request_id.header", "not a header name"),
        (6, "listeners.web.trusted_proxies[0]", "prefix length"),
        (
            10,
            "listeners.web.routes[0].allow[1]",
            "did you mean 10.0.0.0/8",
        ),
        (11, "listeners.web.routes[0].deny[0]", "not an IP address"),
        (
            13,
            "listeners.web.routes[1].redirect.scheme",
            "unknown scheme",
        ),
        (
            13,
            "listeners.web.routes[1].redirect.status",
            "not a redirect status",
        ),
        (
            14,
            "listeners.web.routes[2]",
            "needs an `upstream` (or a `redirect`)",
        ),
        (
            19,
            "listeners.web.routes[3].request_headers.set.Host",
            "switchyard's to set",
        ),
        (
            20,
            "listeners.web.routes[3].request_headers.remove[0]",
            "switchyard's to set",
        ),
        (
            22,
            "listeners.web.routes[3].response_headers.add.Bad Name",
            "not a header name",
        ),
        (23, "listeners.web.routes[3].max_inflight", "at least 1"),
        (24, "listeners.web.routes[3].timeout", "greater than zero"),
    ] {
        let wanted = format!("line {line}: error: {path}: ");
        let hit = err.lines().find(|l| l.contains(&wanted));
        assert!(
            hit.is_some_and(|l| l.contains(words)),
            "no {wanted:?} with {words:?} in:\n{err}"
        );
    }
    assert!(err.contains("12 error(s)"), "{err}");
}

#[test]
fn retry_keys_are_checked_with_path_and_line() {
    let (code, _out, err) = check(&fixture("retries_bad.yaml"));
    assert_eq!(code, 1, "{err}");
    for (line, path, words) in [
        (
            7,
            "upstreams.api.retry_on[1]",
            "unknown retry_on reason \"500\"",
        ),
        (
            8,
            "upstreams.api.retry_on[3]",
            "unknown retry_on reason \"timeouts\"",
        ),
        (
            9,
            "upstreams.api.retry_budget",
            "\"twenty\" is not a percentage",
        ),
        (12, "upstreams.other.retry_budget", "not a percentage"),
    ] {
        let wanted = format!("line {line}: error: {path}: ");
        let hit = err.lines().find(|l| l.contains(&wanted));
        assert!(
            hit.is_some_and(|l| l.contains(words)),
            "no {wanted:?} with {words:?} in:\n{err}"
        );
    }
    assert!(err.contains("valid reasons: connect_failure, reset, timeout, 502, 503, 504"));
    assert!(err.contains("4 error(s)"), "{err}");
}

#[test]
fn outlier_detection_keys_are_checked_with_path_and_line() {
    let (code, _out, err) = check(&fixture("outlier_bad.yaml"));
    assert_eq!(code, 1, "{err}");
    let base = "upstreams.api.outlier_detection";
    for (line, key, words) in [
        (9, "consecutive_5xx", "between 0 (off) and 1000000"),
        (10, "latency_factor", "a factor above 1"),
        (11, "interval", "greater than zero"),
        (12, "base_ejection", "bad duration"),
        (13, "max_ejected", "percentage from 0% to 100%"),
        (14, "max_ejectd", "unknown key"),
    ] {
        let wanted = format!("line {line}: error: {base}.{key}");
        let hit = err.lines().find(|l| l.contains(&wanted));
        assert!(
            hit.is_some_and(|l| l.contains(words)),
            "no {wanted:?} with {words:?} in:\n{err}"
        );
    }
}
