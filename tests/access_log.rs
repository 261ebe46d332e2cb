//! `server.access_log`: one JSON line per request with the fields operators
//! filter on, for answers from a backend (200), from the router (404) and
//! after every backend refused (502); SIGUSR1 reopens the file for rotation.

mod common;
use common::daemon::{signal, wait_until};
use common::*;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn wait_lines(path: &Path, n: usize) -> Vec<Value> {
    wait_until(Duration::from_secs(10), || lines(path).len() >= n);
    lines(path)
}

#[test]
fn one_json_line_per_request_and_sigusr1_reopens() {
    let b = backends("al", 1);
    let (dead1, dead2) = (free_port(), free_port());
    let proxy = Proxy::start(&format!(
        "server: {{ access_log: \"{{DIR}}/access.log\" }}\nadmin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n      - {{ name: site, host: site.test, upstream: pool }}\n      - {{ name: broken, host: broken.test, upstream: dead }}\nupstreams:\n  pool: {{ backends: {} }}\n  dead:\n    retries: 1\n    backends: [{{ addr: \"127.0.0.1:{dead1}\" }}, {{ addr: \"127.0.0.1:{dead2}\" }}]\n",
        backend_list(&b)
    ));
    let path = proxy.dir.path().join("access.log");

    let ok = proxy.get("Site.Test:8080", "/a/../hello?x=1");
    assert_eq!(ok.status, 200);
    assert_eq!(proxy.get("nowhere.test", "/nope").status, 404);
    assert_eq!(proxy.get("broken.test", "/b").status, 502);

    let got = wait_lines(&path, 3);
    assert_eq!(got.len(), 3, "{got:?}");
    // A line is queued once its response is written; with several worker
    // threads the next request's line may come first, so find them by status.
    let by_status = |code: u16| {
        got.iter()
            .find(|l| l["status"] == code)
            .unwrap_or_else(|| panic!("no {code} line: {got:?}"))
    };
    let (ok_line, not_found, bad_gateway) = (by_status(200), by_status(404), by_status(502));

    let time = ok_line["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "RFC 3339 UTC with milliseconds: {time}"
    );
    assert_eq!(ok_line["client_ip"], "127.0.0.1");
    assert_eq!(ok_line["method"], "GET");
    assert_eq!(ok_line["host"], "site.test");
    assert_eq!(ok_line["path"], "/hello?x=1");
    assert_eq!(ok_line["status"], 200);
    assert_eq!(ok_line["listener"], "web");
    assert_eq!(ok_line["route"], "site");
    assert_eq!(ok_line["upstream"], "pool");
    assert_eq!(ok_line["backend"], b[0].addr.to_string());
    assert!(ok_line["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(ok_line["bytes_sent"], ok.body.len());
    assert_eq!(ok_line["retries"], 0);

    assert_eq!(not_found["status"], 404);
    assert_eq!(not_found["host"], "nowhere.test");
    assert_eq!(not_found["route"], Value::Null);
    assert_eq!(not_found["upstream"], Value::Null);
    assert_eq!(not_found["backend"], Value::Null);
    assert!(not_found["bytes_sent"].as_u64().unwrap() > 0);

    assert_eq!(bad_gateway["status"], 502);
    assert_eq!(bad_gateway["route"], "broken");
    assert_eq!(bad_gateway["upstream"], "dead");
    assert_eq!(bad_gateway["retries"], 1, "both backends were tried");
    let last = bad_gateway["backend"].as_str().unwrap().to_string();
    assert!(
        [format!("127.0.0.1:{dead1}"), format!("127.0.0.1:{dead2}")].contains(&last),
        "{last}"
    );

    // Rotation: move the file away, signal, and the next line starts a new file.
    let rotated = proxy.dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    assert!(signal(proxy.pid(), "-USR1"));
    let reopened = wait_until(Duration::from_secs(10), || {
        proxy.get("site.test", "/after").status == 200 && !lines(&path).is_empty()
    });
    let after = lines(&path);
    assert!(
        reopened,
        "no new file after SIGUSR1: {after:?}\n{}",
        proxy.log()
    );
    assert!(after.iter().all(|l| l["path"] == "/after"), "{after:?}");
    let before = lines(&rotated);
    assert!(before.len() >= 3);
    assert!(
        before.iter().any(|l| l["path"] == "/b"),
        "earlier lines stay in the moved file: {before:?}"
    );
    assert_eq!(proxy.get("site.test", "/").status, 200, "still serving");
}
