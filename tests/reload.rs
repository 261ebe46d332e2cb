//! `reload` in place through the real binary: each trigger (SIGHUP,
//! `POST /reload`, `switchyard reload`) applies a changed route on both HTTP
//! engines (the forwarder and a `forwarder: false` listener); a bad file and
//! a listener change are refused with the old config serving; no request
//! fails while the config is reloaded 20 times under load (new connections
//! and keep-alive ones, on both engines); a tcp listener's new upstream
//! takes new connections.

mod common;
use common::daemon::{signal, try_get, wait_until, KeepAlive, KeepAliveClient};
use common::reload::*;
use common::*;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Two listeners (`web` on the forwarder, `slow` on Pingora's path only),
/// route `/` to upstream `target`, upstreams `a` and `b`.
fn config(
    token: &std::path::Path,
    pingora: SocketAddr,
    target: &str,
    a: &[DemoServer],
    b: &[DemoServer],
) -> String {
    format!(
        "server: {{ pid_file: \"{{DIR}}/sy.pid\" }}\nadmin: {{ listen: \"{{ADMIN}}\", token_file: \"{}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ name: main, upstream: {target} }}]\n  slow:\n    listen: \"{pingora}\"\n    forwarder: false\n    routes: [{{ name: main, upstream: {target} }}]\nupstreams:\n  a: {{ backends: {} }}\n  b: {{ backends: {} }}\n",
        token.display(),
        backend_list(a),
        backend_list(b)
    )
}

fn loopback() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// Both listeners answer from `prefix`'s backends.
fn assert_served_by(p: &Proxy, pingora: SocketAddr, prefix: &str) {
    for addr in [p.http, pingora] {
        let r = get(addr, "x", "/");
        assert_eq!(r.status, 200, "{addr}: {}", r.body);
        let who = r.backend().unwrap_or("");
        assert!(
            who.starts_with(prefix),
            "{addr} answered by {who}, want {prefix}:\n{}",
            p.log()
        );
    }
}

#[test]
fn each_trigger_applies_a_changed_route_on_both_engines() {
    let (a, b) = (backends("a", 1), backends("b", 1));
    let (_t, token) = token_file();
    let pingora = loopback();
    let p = Proxy::start(&config(&token, pingora, "a", &a, &b));
    assert_served_by(&p, pingora, "a-");
    assert_eq!(generation(&p), 1);

    // SIGHUP: applied by the time the generation moves.
    rewrite(&p, &config(&token, pingora, "b", &a, &b));
    assert!(signal(p.pid(), "-HUP"));
    assert!(
        wait_until(Duration::from_secs(10), || generation(&p) == 2),
        "SIGHUP did not reload:\n{}",
        p.log()
    );
    assert_served_by(&p, pingora, "b-");

    // POST /reload: applied when it answers 200.
    rewrite(&p, &config(&token, pingora, "a", &a, &b));
    let r = post_reload(&p, None);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post_reload(&p, Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("route web/main changed"), "{}", r.body);
    assert_served_by(&p, pingora, "a-");

    // switchyard reload: applied when it exits 0.
    rewrite(&p, &config(&token, pingora, "b", &a, &b));
    let (code, out) = cli_reload(&p);
    assert_eq!(code, 0, "{out}");
    assert_served_by(&p, pingora, "b-");
    assert_eq!(generation(&p), 4);
    let s = status(&p);
    assert_eq!(s["last_reload"]["result"], "ok", "{s}");
    assert_eq!(
        p.metric("switchyard_config_reloads_total", &[("result", "ok")]),
        Some(3.0)
    );
    assert_eq!(p.metric("switchyard_config_generation", &[]), Some(4.0));
}

#[test]
fn a_bad_file_is_refused_and_the_old_config_serves() {
    let (a, b) = (backends("a", 1), backends("b", 1));
    let (_t, token) = token_file();
    let pingora = loopback();
    let p = Proxy::start(&config(&token, pingora, "a", &a, &b));
    let good = config(&token, pingora, "b", &a, &b);
    rewrite(&p, &good.replace("  b: {", "  b: { policy: fastest,"));

    let (code, out) = cli_reload(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("upstreams.b.policy"), "path missing: {out}");
    assert!(out.contains("line 13"), "line missing: {out}");
    let r = post_reload(&p, Some(TOKEN));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("upstreams.b.policy"), "{}", r.body);
    // A file the process itself finds bad (the CLI is bypassed): SIGHUP.
    assert!(signal(p.pid(), "-HUP"));
    assert!(wait_until(Duration::from_secs(10), || {
        status(&p)["reloads"].as_u64() == Some(2)
    }));

    assert_served_by(&p, pingora, "a-");
    assert_eq!(generation(&p), 1);
    assert_eq!(
        p.metric("switchyard_config_reloads_total", &[("result", "rejected")]),
        Some(2.0)
    );
    assert_eq!(status(&p)["last_reload"]["result"], "rejected");
}

#[test]
fn a_listener_change_is_refused_with_the_upgrade_hint() {
    let (a, b) = (backends("a", 1), backends("b", 1));
    let (_t, token) = token_file();
    let pingora = loopback();
    let p = Proxy::start(&config(&token, pingora, "a", &a, &b));
    let moved = loopback();
    rewrite(&p, &config(&token, moved, "b", &a, &b));

    let (code, out) = cli_reload(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("listeners.slow.listen"), "{out}");
    assert!(out.contains("switchyard upgrade"), "{out}");
    let r = post_reload(&p, Some(TOKEN));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("switchyard upgrade"), "{}", r.body);

    // Another file than the one the process serves: refused before any signal.
    rewrite(&p, &config(&token, pingora, "b", &a, &b));
    let other = p.dir.path().join("other.yaml");
    std::fs::copy(conf_path(&p), &other).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["reload", "-c"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("serves"),
        "{out:?}"
    );

    assert_served_by(&p, pingora, "a-");
    assert_eq!(generation(&p), 1);
    assert_eq!(status(&p)["reloads"], 2);
}

#[test]
fn reload_without_a_running_process_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sy.yaml");
    let d = dir.path().display();
    std::fs::write(
        &conf,
        format!("server: {{ pid_file: \"{d}/none.pid\" }}\nlisteners:\n  web:\n    listen: 127.0.0.1:1\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: [{{ addr: \"127.0.0.1:9\" }}] }}\n"),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["reload", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn no_request_fails_during_twenty_reloads() {
    let (a, b) = (backends("a", 2), backends("b", 1));
    let (_t, token) = token_file();
    let pingora = loopback();
    let p = Proxy::start(&config(&token, pingora, "a", &a, &b));
    let stop = Arc::new(AtomicBool::new(false));
    // Per engine: one client on a new connection per request, one on a
    // keep-alive connection that lives through the reloads.
    let clients: Vec<_> = [
        (p.http, false),
        (p.http, true),
        (pingora, false),
        (pingora, true),
    ]
    .into_iter()
    .map(|(addr, keep_alive)| {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut kept = KeepAliveClient::new(addr);
            let mut results = Vec::new();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && results.len() < 2000
            {
                let r = match keep_alive {
                    false => try_get(addr, "x", "/").map(|r| r.status),
                    true => match kept.get("/") {
                        KeepAlive::Answered { status, .. } => Ok(status),
                        other => Err(format!("{other:?}")),
                    },
                };
                results.push(r);
                std::thread::sleep(Duration::from_millis(2));
            }
            results
        })
    })
    .collect();
    for i in 0..20 {
        // Each reload changes upstream `a` (a weight) and moves the route.
        let text = config(&token, pingora, if i % 2 == 0 { "b" } else { "a" }, &a, &b);
        let w = i % 5 + 1;
        rewrite(
            &p,
            &text.replacen("\" }, {", &format!("\", weight: {w} }}, {{"), 1),
        );
        let r = post_reload(&p, Some(TOKEN));
        assert_eq!(r.status, 200, "reload {i}: {}", r.body);
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut failed = Vec::new();
    for c in clients {
        for r in c.join().unwrap() {
            total += 1;
            if r != Ok(200) {
                failed.push(r);
            }
        }
    }
    assert!(total >= 40, "only {total} requests");
    assert!(
        failed.is_empty(),
        "{} of {total} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert_eq!(generation(&p), 21);
    eprintln!("{total} requests across 20 reloads, none failed");
}

#[test]
fn a_tcp_listener_takes_its_new_upstream_for_new_connections() {
    let (a, b) = (backends("ta", 1), backends("tb", 1));
    let (_t, token) = token_file();
    let conf = |target: &str| {
        format!(
            "admin: {{ listen: \"{{ADMIN}}\", token_file: \"{}\" }}\nlisteners:\n  db: {{ protocol: tcp, listen: \"{{TCP}}\", upstream: {target} }}\nupstreams:\n  a: {{ backends: {} }}\n  b: {{ backends: {} }}\n",
            token.display(),
            backend_list(&a),
            backend_list(&b)
        )
    };
    let p = Proxy::start(&conf("a"));
    assert_eq!(get(p.tcp, "x", "/").backend(), Some("ta-1"));
    rewrite(&p, &conf("b"));
    let r = post_reload(&p, Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(p.tcp, "x", "/").backend(), Some("tb-1"));
}
