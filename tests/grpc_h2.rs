//! HTTP/2 to backends (`protocol: h2`, what gRPC needs): a second
//! switchyard stands in as the h2 backend. With h2c on it the request goes
//! through; without it (HTTP/1.1 only) the same upstream fails with 502,
//! which shows the front proxy really spoke HTTP/2 by prior knowledge.

mod common;
use common::*;

fn middle(h2c: bool, b: &[DemoServer]) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    h2c: {h2c}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(b)
    ))
}

fn front(middle: &Proxy) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: grpc }}]\nupstreams:\n  grpc:\n    protocol: h2\n    retries: 0\n    backends: [{{ addr: \"{}\" }}]\n",
        middle.http
    ))
}

#[test]
fn h2_upstream_by_prior_knowledge() {
    let b = backends("grpc", 1);
    let mid = middle(true, &b);
    let p = front(&mid);
    for i in 0..3 {
        let r = p.get("svc.test", &format!("/pkg.Service/Call{i}"));
        assert_eq!(r.status, 200, "{}\n{}", r.body, p.log());
        assert_eq!(r.backend(), Some("grpc-1"));
        assert_eq!(
            r.target().map(str::to_owned),
            Some(format!("/pkg.Service/Call{i}"))
        );
        assert_eq!(r.seen_header("host"), Some("svc.test"));
    }
}

#[test]
fn h2_upstream_fails_against_an_http1_only_backend() {
    let b = backends("h1only", 1);
    let mid = middle(false, &b);
    let p = front(&mid);
    assert_eq!(p.get("svc.test", "/").status, 502);
    assert_eq!(b[0].hits(), 0);
}

#[test]
fn unknown_upstream_protocol_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.yaml");
    std::fs::write(
        &conf,
        "listeners:\n  web:\n    listen: 127.0.0.1:1\n    routes: [{ upstream: u }]\nupstreams:\n  u:\n    protocol: grpc\n    backends: [{ addr: 127.0.0.1:9 }]\n",
    )
    .unwrap();
    let (code, out, err) = check(&conf);
    let all = format!("{out}{err}");
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains("line 7: error: upstreams.u.protocol: unknown upstream protocol \"grpc\""),
        "{all}"
    );
}

#[test]
fn h2_upstream_over_tls_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path(), "ca");
    let leaf = certs::signed(dir.path(), "mid", "mid.test", &ca);
    let b = backends("alpn", 1);
    let mid = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        leaf.cert.display(),
        leaf.key.display(),
        backend_list(&b)
    ));
    let p = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ upstream: grpc }}]\nupstreams:\n  grpc:\n    protocol: h2\n    retries: 0\n    tls: {{ sni: mid.test, ca_file: \"{}\" }}\n    backends: [{{ addr: \"{}\" }}]\n",
        ca.cert.display(),
        mid.http
    ));
    let r = p.get("svc.test", "/pkg.Service/Call");
    assert_eq!(r.status, 200, "{}\n{}", r.body, p.log());
    assert_eq!(r.backend(), Some("alpn-1"));
    assert_eq!(r.seen_header("x-forwarded-proto"), Some("https"));
}
