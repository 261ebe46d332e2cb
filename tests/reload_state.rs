//! What a reload keeps, through the real binary: a backend the health checks
//! took down stays down (no request reaches it right after), a spent
//! rate-limit bucket stays spent, an open breaker stays open, admin
//! overrides stay — each across a reload that rebuilt the upstream or the
//! route. A rotated certificate is served after a reload, and with
//! `server.state_file` an override survives `switchyard upgrade`.

mod common;
use common::daemon::{wait_until, Daemons};
use common::reload::*;
use common::*;

use std::process::Command;
use std::time::Duration;

fn reload_ok(p: &Proxy) {
    let r = post_reload(p, Some(TOKEN));
    assert_eq!(r.status, 200, "{}\n{}", r.body, p.log());
}

fn admin(token: &std::path::Path) -> String {
    format!(
        "admin: {{ listen: \"{{ADMIN}}\", token_file: \"{}\" }}\n",
        token.display()
    )
}

fn who(p: &Proxy) -> String {
    let r = p.get("x", "/");
    assert_eq!(r.status, 200, "{}", r.body);
    r.backend().unwrap_or("").to_string()
}

#[test]
fn a_backend_down_by_health_checks_stays_down_across_a_reload() {
    let b = backends("h", 2);
    let (_t, token) = token_file();
    // Coming back takes 100 passes (10 s): long after the reload is checked.
    let conf = |retries: u32| {
        format!(
            "{}listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    retries: {retries}\n    backends: {}\n    health_check: {{ type: http, path: /healthz, interval: 100ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 100 }}\n",
            admin(&token),
            backend_list(&b)
        )
    };
    let p = Proxy::start(&conf(0));
    let down = b[0].addr.to_string();
    b[0].state.force_status(Some(503));
    assert!(wait_until(Duration::from_secs(10), || {
        backend_status(&p, "u", &down)["up"] == false
    }));
    b[0].state.force_status(None);
    // `retries` changed: the upstream is rebuilt, its backends carried.
    rewrite(&p, &conf(1));
    reload_ok(&p);
    assert_eq!(backend_status(&p, "u", &down)["up"], false);
    for _ in 0..20 {
        assert_eq!(who(&p), "h-2", "a down backend was served after the reload");
    }
}

#[test]
fn a_spent_bucket_and_an_open_breaker_stay_across_a_reload() {
    let b = backends("s", 1);
    let other = backends("o", 1);
    let (_t, token) = token_file();
    let conf = |weight: u32| {
        format!(
            "{}listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes:\n      - {{ name: limited, path_prefix: /limited, upstream: o, rate_limit: {{ rate: 1, per: 1h, burst: 1 }} }}\n      - {{ name: main, upstream: u }}\nupstreams:\n  u:\n    circuit_breaker: {{ consecutive_failures: 1, open_for: 1h }}\n    backends: [{{ addr: \"{}\", weight: {weight} }}]\n  o: {{ backends: {} }}\n",
            admin(&token),
            b[0].addr,
            backend_list(&other)
        )
    };
    let p = Proxy::start(&conf(1));
    assert_eq!(p.get("x", "/limited").status, 200);
    assert_eq!(p.get("x", "/limited").status, 429);
    b[0].state.force_status(Some(500));
    assert_eq!(p.get("x", "/").status, 500);
    let addr = b[0].addr.to_string();
    // (The outcome reaches the breaker just after the answer is sent.)
    assert!(wait_until(Duration::from_secs(5), || {
        backend_status(&p, "u", &addr)["circuit"] == "open"
    }));
    b[0].state.force_status(None);

    // The weight changed: upstream u is rebuilt; every route is rebuilt.
    rewrite(&p, &conf(2));
    reload_ok(&p);
    assert_eq!(backend_status(&p, "u", &addr)["circuit"], "open");
    assert_eq!(
        p.get("x", "/").status,
        503,
        "the open breaker let a request through"
    );
    assert_eq!(
        p.get("x", "/limited").status,
        429,
        "the spent bucket was refilled"
    );
}

#[test]
fn admin_overrides_survive_a_reload() {
    let b = backends("v", 3);
    let (_t, token) = token_file();
    let conf = |list: &[DemoServer]| {
        format!(
            "{}listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
            admin(&token),
            backend_list(list)
        )
    };
    let p = Proxy::start(&conf(&b[..2]));
    for (backend, action) in [(&b[0], "drain"), (&b[1], "disable")] {
        let path = format!("/upstreams/u/backends/{}/{action}", backend.addr);
        let raw = format!("POST {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        assert_eq!(send(p.admin, raw.as_bytes()).status, 200);
    }
    // Unchanged, then rebuilt (a third backend added).
    reload_ok(&p);
    rewrite(&p, &conf(&b));
    reload_ok(&p);
    let state = |i: usize| backend_status(&p, "u", &b[i].addr.to_string())["admin_state"].clone();
    assert_eq!(state(0), "drain");
    assert_eq!(state(1), "disabled");
    assert_eq!(state(2), "enabled");
    for _ in 0..10 {
        assert_eq!(who(&p), "v-3");
    }
}

/// Whether curl trusting only `ca` completes a TLS request to `port`.
fn trusted_by(ca: &std::path::Path, port: u16) -> bool {
    Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .status()
        .expect("curl is installed by scripts/install-deps.sh")
        .success()
}

#[test]
fn a_rotated_certificate_is_served_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let old = certs::self_signed(dir.path(), "old", "localhost", &["localhost"]);
    let new = certs::self_signed(dir.path(), "new", "localhost", &["localhost"]);
    let served = certs::self_signed(dir.path(), "served", "localhost", &["localhost"]);
    std::fs::copy(&old.cert, &served.cert).unwrap();
    std::fs::copy(&old.key, &served.key).unwrap();
    let b = backends("t", 1);
    let (_t, token) = token_file();
    let p = Proxy::start(&format!(
        "{}listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        admin(&token),
        served.cert.display(),
        served.key.display(),
        backend_list(&b)
    ));
    let port = p.http.port();
    assert!(trusted_by(&old.cert, port));
    std::fs::copy(&new.cert, &served.cert).unwrap();
    std::fs::copy(&new.key, &served.key).unwrap();
    reload_ok(&p);
    assert!(
        trusted_by(&new.cert, port),
        "the new certificate is not served:\n{}",
        p.log()
    );
    assert!(
        !trusted_by(&old.cert, port),
        "the old certificate is still served"
    );
}

#[test]
fn the_state_file_carries_an_override_across_upgrade() {
    let d = Daemons::new(1);
    let b = backends("f", 2);
    let (_t, token) = token_file();
    let http = daemon::loopback(free_port());
    let state = d.dir.path().join("state.json");
    let rest = format!(
        "listeners:\n  web:\n    listen: \"{http}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(&b)
    );
    let conf = d.conf("sy.yaml", &rest);
    // The shared conf with the token and the state file added.
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replacen(
            " }\nadmin: {",
            &format!(", state_file: \"{}\" }}\nadmin: {{", state.display()),
            1,
        )
        .replacen(
            "\" }\nlisteners",
            &format!("\", token_file: \"{}\" }}\nlisteners", token.display()),
            1,
        );
    std::fs::write(&conf, text).unwrap();
    let old = d.start(&conf);
    let addr = b[0].addr.to_string();
    let path = format!("/upstreams/u/backends/{addr}/drain");
    let raw = format!("POST {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let r = send(d.admin, raw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&state)
            .is_ok_and(|s| s.contains("\"drain\""))),
        "state file not written:\n{}",
        d.error_log()
    );
    let (code, out) = d.upgrade(&conf);
    assert_eq!(code, 0, "{out}\n{}", d.error_log());
    let new = d.pid().unwrap();
    assert_ne!(new, old);
    // The old process answers on the shared sockets for a while yet.
    let mut s = serde_json::Value::Null;
    let from_new = wait_until(Duration::from_secs(15), || {
        s = serde_json::from_str(&get(d.admin, "a", "/status").body).unwrap_or_default();
        s["pid"] == new
    });
    assert!(from_new, "the new process never answered /status");
    let backend = s["upstreams"]["u"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["addr"] == addr.as_str())
        .cloned()
        .unwrap();
    assert_eq!(backend["admin_state"], "drain", "{s}");
    for _ in 0..10 {
        assert_eq!(get(http, "x", "/").backend(), Some("f-2"));
    }
}
