//! `switchyard check` on the PROXY protocol keys: valid spellings pass,
//! anything else is named with its YAML path, line and the valid values.

mod common;
use common::*;

fn check_text(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.yaml");
    std::fs::write(&conf, text).unwrap();
    let (code, out, err) = check(&conf);
    (code, format!("{out}{err}"))
}

const VALID: &str = "listeners:
  web:
    listen: 127.0.0.1:8080
    proxy_protocol: true
    routes: [{ upstream: api }]
  pg:
    protocol: tcp
    listen: 127.0.0.1:15432
    proxy_protocol: false
    upstream: db
upstreams:
  api:
    send_proxy_protocol: v2
    backends: [{ addr: 127.0.0.1:9001 }]
  db:
    send_proxy_protocol: v1
    backends: [{ addr: 127.0.0.1:5432 }]
  none:
    send_proxy_protocol: null
    backends: [{ addr: 127.0.0.1:9002 }]
";

#[test]
fn both_keys_are_accepted_on_http_and_tcp() {
    let (code, out) = check_text(VALID);
    assert_eq!(code, 0, "{out}");
}

/// The line of the error for `path`, and the two lines from there.
fn error_at(out: &str, n: usize, path: &str) -> String {
    let at = out
        .lines()
        .position(|l| l.contains(&format!("line {n}: error: {path}")))
        .unwrap_or_else(|| panic!("no error at line {n} for {path}:\n{out}"));
    out.lines().skip(at).take(2).collect::<Vec<_>>().join("\n")
}

#[test]
fn an_unknown_version_is_an_error_with_path_line_and_hint() {
    let (code, out) =
        check_text(&VALID.replace("send_proxy_protocol: v2", "send_proxy_protocol: v3"));
    assert_eq!(code, 1, "{out}");
    let block = error_at(&out, 13, "upstreams.api.send_proxy_protocol");
    assert!(
        block.contains("\"v3\"") && block.contains("v1 or v2"),
        "{block}"
    );
    assert!(out.contains("1 error(s)"), "{out}");
}

#[test]
fn proxy_protocol_must_be_a_boolean() {
    let (code, out) =
        check_text(&VALID.replace("proxy_protocol: false", "proxy_protocol: sometimes"));
    assert_eq!(code, 1, "{out}");
    let block = error_at(&out, 9, "listeners.pg.proxy_protocol");
    assert!(block.contains("expected a boolean"), "{block}");
}

#[test]
fn a_misspelled_key_gets_a_suggestion() {
    let text = VALID.replace("send_proxy_protocol: v1", "send_proxy_protocl: v1");
    let (code, out) = check_text(&text);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("did you mean \"send_proxy_protocol\""),
        "{out}"
    );
}
