//! The admin write API through the real binary: bearer-token auth, 404/400
//! answers, drain / disable / enable / weight steering live traffic, and
//! `/status` showing what an operator set.

mod common;
use common::*;

use std::path::PathBuf;

const TOKEN: &str = "s3cret-token-0123456789";

/// A token file holding `TOKEN` plus a trailing newline (as `echo` writes
/// it), in a temp dir the caller keeps alive.
fn token_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    (dir, file)
}

/// switchyard with one route to upstream `u` over `servers`, `policy`,
/// and optional extra route settings (`sticky`).
fn proxy(
    token: Option<&PathBuf>,
    policy: &str,
    route_extra: &str,
    servers: &[DemoServer],
) -> Proxy {
    let token_line = token.map_or(String::new(), |f| {
        format!(", token_file: \"{}\"", f.display())
    });
    Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\"{token_line} }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ name: r, upstream: u{route_extra} }}]\nupstreams:\n  u:\n    policy: {policy}\n    backends: {}\n",
        backend_list(servers)
    ))
}

/// One admin request; `token` as the bearer, if any.
fn write(p: &Proxy, method: &str, path: &str, token: Option<&str>, body: &str) -> Response {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    send(p.admin, raw.as_bytes())
}

fn backend_path(b: &DemoServer, action: &str) -> String {
    format!("/upstreams/u/backends/{}/{action}", b.addr)
}

fn post(p: &Proxy, b: &DemoServer, action: &str) {
    let r = write(p, "POST", &backend_path(b, action), Some(TOKEN), "");
    assert_eq!(r.status, 200, "{action}: {}", r.body);
}

/// `(admin_state, weight)` of backend `b` in `/status`.
fn status_of(p: &Proxy, b: &DemoServer) -> (String, u64) {
    let s: serde_json::Value = serde_json::from_str(&get(p.admin, "a", "/status").body).unwrap();
    let backend = s["upstreams"]["u"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["addr"] == b.addr.to_string())
        .unwrap()
        .clone();
    (
        backend["admin_state"].as_str().unwrap().to_owned(),
        backend["weight"].as_u64().unwrap(),
    )
}

/// Which backends answered `n` fresh clients (no cookie).
fn spread(p: &Proxy, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| p.get("x", "/").backend().unwrap().to_owned())
        .collect()
}

fn with_cookie(p: &Proxy, cookie: &str) -> Response {
    let raw = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n");
    send(p.http, raw.as_bytes())
}

#[test]
fn without_token_file_every_write_is_forbidden() {
    let b = backends("nf", 1);
    let p = proxy(None, "round_robin", "", &b);
    for (method, action) in [("POST", "drain"), ("POST", "enable"), ("PUT", "weight")] {
        let r = write(&p, method, &backend_path(&b[0], action), Some(TOKEN), "3");
        assert_eq!(r.status, 403, "{method} {action}");
    }
    assert_eq!(status_of(&p, &b[0]), ("enabled".into(), 1));
}

#[test]
fn a_missing_or_wrong_token_is_unauthorized() {
    let b = backends("au", 1);
    let (_dir, file) = token_file();
    let p = proxy(Some(&file), "round_robin", "", &b);
    let path = backend_path(&b[0], "drain");
    assert_eq!(write(&p, "POST", &path, None, "").status, 401);
    assert_eq!(write(&p, "POST", &path, Some("wrong"), "").status, 401);
    assert_eq!(write(&p, "POST", &path, Some(&TOKEN[..5]), "").status, 401);
    let newline = format!("{TOKEN}\n");
    assert_eq!(
        write(&p, "POST", &path, Some(newline.trim()), "").status,
        200
    );
    assert!(!p.log().contains(TOKEN), "the token is never logged");
}

#[test]
fn unknown_targets_are_404_and_bad_weights_400() {
    let b = backends("nx", 1);
    let (_dir, file) = token_file();
    let p = proxy(Some(&file), "round_robin", "", &b);
    let addr = b[0].addr.to_string();
    for path in [
        format!("/upstreams/nope/backends/{addr}/drain"),
        "/upstreams/u/backends/127.0.0.1:1/drain".to_owned(),
        format!("/upstreams/u/backends/{addr}/explode"),
    ] {
        assert_eq!(
            write(&p, "POST", &path, Some(TOKEN), "").status,
            404,
            "{path}"
        );
    }
    let weight = backend_path(&b[0], "weight");
    for body in ["", "1001", "-1", "two", "1.5"] {
        let r = write(&p, "PUT", &weight, Some(TOKEN), body);
        assert_eq!(r.status, 400, "body {body:?}: {}", r.body);
    }
    assert_eq!(
        status_of(&p, &b[0]),
        ("enabled".into(), 1),
        "nothing changed"
    );
    // (POST /reload: tests/reload.rs.)
    assert_eq!(write(&p, "POST", "/reload", None, "").status, 401);
}

#[test]
fn drain_stops_new_requests_and_enable_brings_them_back() {
    let b = backends("dr", 3);
    let (_dir, file) = token_file();
    let p = proxy(Some(&file), "round_robin", "", &b);
    post(&p, &b[0], "drain");
    assert_eq!(status_of(&p, &b[0]), ("drain".into(), 0));
    let before = b[0].hits();
    let seen = spread(&p, 12);
    assert_eq!(b[0].hits(), before, "a drained backend gets no new request");
    assert!(
        seen.contains(&b[1].name) && seen.contains(&b[2].name),
        "{seen:?}"
    );

    post(&p, &b[0], "enable");
    assert_eq!(status_of(&p, &b[0]), ("enabled".into(), 1));
    let seen = spread(&p, 12);
    assert_eq!(
        seen.iter().filter(|n| **n == b[0].name).count(),
        4,
        "{seen:?}"
    );
}

#[test]
fn a_drained_backend_keeps_its_sticky_clients_a_disabled_one_does_not() {
    let b = backends("st", 2);
    let (_dir, file) = token_file();
    let p = proxy(Some(&file), "round_robin", ", sticky: { cookie: SY }", &b);
    let first = p.get("x", "/");
    let cookie = first
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let owner = first.backend().unwrap().to_owned();
    let (pinned, other) = if owner == b[0].name {
        (&b[0], &b[1])
    } else {
        (&b[1], &b[0])
    };

    post(&p, pinned, "drain");
    for _ in 0..4 {
        assert_eq!(with_cookie(&p, &cookie).backend(), Some(owner.as_str()));
    }
    assert!(
        spread(&p, 4).iter().all(|n| *n == other.name),
        "no new clients"
    );

    post(&p, pinned, "disable");
    assert_eq!(status_of(&p, pinned), ("disabled".into(), 0));
    let before = pinned.hits();
    for _ in 0..4 {
        assert_eq!(
            with_cookie(&p, &cookie).backend(),
            Some(other.name.as_str())
        );
    }
    assert!(spread(&p, 4).iter().all(|n| *n == other.name));
    assert_eq!(
        pinned.hits(),
        before,
        "a disabled backend gets no request at all"
    );

    post(&p, pinned, "enable");
    assert_eq!(status_of(&p, pinned), ("enabled".into(), 1));
    assert!(spread(&p, 4).contains(&pinned.name), "back in rotation");
}

#[test]
fn a_weight_change_shifts_the_share_at_once() {
    let b = backends("wt", 2);
    let (_dir, file) = token_file();
    let p = proxy(Some(&file), "weighted_round_robin", "", &b);
    // Percent-encoded addr, as a client that escapes `:` sends it.
    let escaped = b[0].addr.to_string().replace(':', "%3A");
    let path = format!("/upstreams/u/backends/{escaped}/weight");
    let r = write(&p, "PUT", &path, Some(TOKEN), "3\n");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&p, &b[0]), ("enabled".into(), 3));
    // Smooth WRR: every 4 consecutive picks hold exactly 3 of b[0].
    let seen = spread(&p, 8);
    assert_eq!(
        seen.iter().filter(|n| **n == b[0].name).count(),
        6,
        "{seen:?}"
    );

    let r = write(&p, "PUT", &path, Some(TOKEN), "0");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&p, &b[0]), ("drain".into(), 0), "weight 0 drains");
    assert!(spread(&p, 4).iter().all(|n| *n == b[1].name));
}

#[test]
fn check_rejects_an_unreadable_or_empty_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n").unwrap();
    for (file, words) in [
        (dir.path().join("absent"), "cannot read token file"),
        (empty, "is empty"),
    ] {
        let conf = dir.path().join("c.yaml");
        std::fs::write(
            &conf,
            format!(
                "admin:\n  listen: 127.0.0.1:9901\n  token_file: \"{}\"\nlisteners:\n  web:\n    listen: 127.0.0.1:8080\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    backends: [{{ addr: \"127.0.0.1:9\" }}]\n",
                file.display()
            ),
        )
        .unwrap();
        let (code, out, err) = check(&conf);
        let all = format!("{out}{err}");
        assert_eq!(code, 1, "{all}");
        assert!(
            all.contains("admin.token_file") && all.contains(words),
            "{all}"
        );
        assert!(all.contains("line 3: error"), "names the line: {all}");
    }
}

#[test]
fn consistent_hash_follows_a_new_weight() {
    let b = backends("ch", 2);
    let (_dir, file) = token_file();
    let p = proxy(
        Some(&file),
        "consistent_hash\n    hash_key: header:X-User",
        "",
        &b,
    );
    let path = backend_path(&b[0], "weight");
    let r = write(&p, "PUT", &path, Some(TOKEN), "1000");
    assert_eq!(r.status, 200, "{}", r.body);
    // 1000 to 1: the ring is rebuilt, so nearly every key lands on b[0]
    // (at 1 to 1, 17 of 20 would happen about once in a thousand runs).
    let on_first = (0..20)
        .filter(|k| {
            let raw = format!(
                "GET / HTTP/1.1\r\nHost: x\r\nX-User: user-{k}\r\nConnection: close\r\n\r\n"
            );
            send(p.http, raw.as_bytes()).backend() == Some(b[0].name.as_str())
        })
        .count();
    assert!(
        on_first >= 17,
        "only {on_first} of 20 keys on the heavy backend"
    );
}
