//! TLS to backends: a second switchyard with a TLS listener (certificate
//! signed by a test CA for `backend.test`) stands in front of a demo backend.
//! Verification passes with the right CA, fails (502) with another CA or
//! another name, and is skipped only with an explicit `verify: false`.

mod common;
use common::*;

use std::path::Path;

/// A TLS switchyard in front of one demo backend; returns it, the backend,
/// and the CA that signed its certificate.
fn tls_backend(dir: &Path) -> (Proxy, Vec<DemoServer>, certs::Pem) {
    let ca = certs::ca(dir, "test-ca");
    let leaf = certs::signed(dir, "backend", "backend.test", &ca);
    let b = backends("behind-tls", 1);
    let p = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        leaf.cert.display(),
        leaf.key.display(),
        backend_list(&b)
    ));
    (p, b, ca)
}

fn front(backend: &Proxy, tls: &str) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    retries: 0\n    backends: [{{ addr: \"{}\" }}]\n    tls: {tls}\n",
        backend.http
    ))
}

#[test]
fn verified_with_the_right_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (back, b, ca) = tls_backend(dir.path());
    let p = front(
        &back,
        &format!(
            "{{ sni: backend.test, ca_file: \"{}\" }}",
            ca.cert.display()
        ),
    );
    let r = p.get("app.test", "/over-tls");
    assert_eq!(r.status, 200, "{}\n{}", r.body, p.log());
    assert_eq!(r.backend(), Some("behind-tls-1"));
    assert_eq!(r.target(), Some("/over-tls"));
    assert_eq!(b[0].hits(), 1);
}

#[test]
fn wrong_ca_or_wrong_name_is_a_502() {
    let dir = tempfile::tempdir().unwrap();
    let (back, b, ca) = tls_backend(dir.path());
    let other = certs::ca(dir.path(), "other-ca");
    for tls in [
        format!(
            "{{ sni: backend.test, ca_file: \"{}\" }}",
            other.cert.display()
        ),
        format!(
            "{{ sni: elsewhere.test, ca_file: \"{}\" }}",
            ca.cert.display()
        ),
    ] {
        let p = front(&back, &tls);
        let r = p.get("app.test", "/");
        assert_eq!(r.status, 502, "tls: {tls}\n{}", r.body);
        assert!(r.backend().is_none());
    }
    assert_eq!(b[0].hits(), 0);
}

#[test]
fn verify_false_skips_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (back, b, _) = tls_backend(dir.path());
    let other = certs::ca(dir.path(), "other-ca");
    for tls in [
        "{ verify: false }".to_string(),
        format!(
            "{{ sni: backend.test, verify: false, ca_file: \"{}\" }}",
            other.cert.display()
        ),
    ] {
        let p = front(&back, &tls);
        let r = p.get("app.test", "/");
        assert_eq!(r.status, 200, "tls: {tls}\n{}", p.log());
        assert_eq!(r.backend(), Some("behind-tls-1"));
    }
    assert_eq!(b[0].hits(), 2);
}

#[test]
fn verification_never_silently_off() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.yaml");
    // An IP backend with verification on has no name to verify; an empty
    // SNI is refused rather than meaning "verify nothing".
    for (tls, want) in [
        ("true", "upstreams.u.backends[0].addr"),
        ("{ sni: \"\" }", "upstreams.u.tls.sni"),
    ] {
        std::fs::write(
            &conf,
            format!("listeners:\n  web:\n    listen: 127.0.0.1:1\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    backends: [{{ addr: 127.0.0.1:9 }}]\n    tls: {tls}\n"),
        )
        .unwrap();
        let (code, out, err) = check(&conf);
        assert_eq!(code, 1, "{out}{err}");
        assert!(format!("{out}{err}").contains(want), "{out}{err}");
        assert!(format!("{out}{err}").contains("line 7"), "{out}{err}");
    }
}

#[test]
fn http_health_checks_use_the_upstream_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (back, b, ca) = tls_backend(dir.path());
    let p = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    backends: [{{ addr: \"{}\" }}]\n    tls: {{ sni: backend.test, ca_file: \"{}\" }}\n    health_check: {{ type: http, path: /healthz, interval: 100ms, healthy_threshold: 1, unhealthy_threshold: 1 }}\n",
        back.http,
        ca.cert.display()
    ));
    // Give the checks a few rounds; a plain-text probe to a TLS port would
    // fail them and mark the only backend down (503).
    std::thread::sleep(std::time::Duration::from_millis(600));
    let labels = [("upstream", "u"), ("backend", &*back.http.to_string())];
    assert_eq!(
        p.metric("switchyard_backend_up", &labels),
        Some(1.0),
        "{}",
        p.log()
    );
    assert!(
        b[0].hits() >= 2,
        "health checks reached the backend over TLS"
    );
    assert_eq!(p.get("app.test", "/").status, 200);
}
