//! HTTP/2 downstream: ALPN h2 and http/1.1 on TLS listeners, h2c by prior
//! knowledge on plain listeners that opt in, and several streams at once on
//! one connection. curl (with nghttp2) is the client.

mod common;
use common::*;

fn tls_proxy(dir: &std::path::Path, b: &[DemoServer]) -> (Proxy, certs::Pem) {
    let pem = certs::self_signed(dir, "web", "localhost", &["localhost"]);
    let proxy = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        pem.cert.display(),
        pem.key.display(),
        backend_list(b)
    ));
    (proxy, pem)
}

#[test]
fn tls_listener_offers_h2_and_http11_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let b = backends("h2", 1);
    let (proxy, pem) = tls_proxy(dir.path(), &b);
    let port = proxy.http.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/alpn");
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let (ok, out, err) = curl(&[
            flag,
            "--cacert",
            pem.cert.to_str().unwrap(),
            "--resolve",
            &resolve,
            "-w",
            "\nversion=%{http_version}",
            &url,
        ]);
        assert!(ok, "curl {flag}: {err}\n{}", proxy.log());
        assert!(out.contains("backend: h2-1"), "{out}");
        assert!(out.contains("header x-forwarded-proto: https"), "{out}");
        assert!(out.contains("target: /alpn"), "{out}");
        assert!(
            out.ends_with(&format!("version={version}")),
            "{flag}: {out}"
        );
    }
    assert_eq!(b[0].hits(), 2);
}

#[test]
fn h2_streams_share_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let b = backends("par", 2);
    let (proxy, pem) = tls_proxy(dir.path(), &b);
    let port = proxy.http.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let urls: Vec<String> = (0..8)
        .map(|i| format!("https://localhost:{port}/stream/{i}"))
        .collect();
    let mut args = vec![
        "--http2",
        "--parallel",
        "--parallel-max",
        "8",
        "--cacert",
        pem.cert.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-w",
        "%{http_version} %{response_code} %{num_connects}\n",
    ];
    for url in &urls {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let (ok, out, err) = curl(&args);
    assert!(ok, "{err}\n{}", proxy.log());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    let mut connects = 0;
    for line in &lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&f[..2], ["2", "200"], "{out}");
        connects += f[2].parse::<u32>().unwrap();
    }
    assert_eq!(
        connects, 1,
        "all streams multiplexed on one connection: {out}"
    );
    assert_eq!(b[0].hits() + b[1].hits(), 8);
}

fn plain_proxy(h2c: Option<bool>, b: &[DemoServer]) -> Proxy {
    let h2c = h2c.map_or(String::new(), |v| format!("    h2c: {v}\n"));
    Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n{h2c}    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        backend_list(b)
    ))
}

#[test]
fn h2c_prior_knowledge_when_enabled_and_http1_still_served() {
    let b = backends("h2c", 1);
    let proxy = plain_proxy(Some(true), &b);
    let url = format!("http://{}/pk?x=1", proxy.http);
    let (ok, out, err) = curl(&[
        "--http2-prior-knowledge",
        "-w",
        "\nversion=%{http_version}",
        &url,
    ]);
    assert!(ok, "{err}\n{}", proxy.log());
    assert!(out.contains("backend: h2c-1"), "{out}");
    assert!(out.contains("target: /pk?x=1"), "{out}");
    assert!(out.contains("header x-forwarded-proto: http"), "{out}");
    assert!(out.ends_with("version=2"), "{out}");
    // The same listener keeps serving HTTP/1.1.
    let r = proxy.get("example.test", "/one");
    assert_eq!(r.status, 200);
    assert_eq!(r.backend(), Some("h2c-1"));
    let (ok, out, _) = curl(&["--http1.1", "-w", "\nversion=%{http_version}", &url]);
    assert!(ok && out.ends_with("version=1.1"), "{out}");
}

#[test]
fn h2c_is_off_by_default() {
    let b = backends("noh2c", 1);
    let proxy = plain_proxy(None, &b);
    let url = format!("http://{}/pk", proxy.http);
    let (ok, out, _) = curl(&["--http2-prior-knowledge", &url]);
    assert!(!ok || !out.contains("backend:"), "{out}");
    assert_eq!(b[0].hits(), 0);
    assert_eq!(proxy.get("example.test", "/").status, 200);
}

#[test]
fn h2c_only_on_plain_http_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let pem = certs::self_signed(dir.path(), "c", "localhost", &["localhost"]);
    let conf = dir.path().join("c.yaml");
    for (listener, want) in [
        (
            format!(
                "listen: 127.0.0.1:1\n    h2c: true\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]",
                pem.cert.display(),
                pem.key.display()
            ),
            "line 4: error: listeners.web.h2c: h2c is for plain listeners",
        ),
        (
            "listen: 127.0.0.1:1\n    protocol: tcp\n    h2c: true\n    upstream: u".to_string(),
            "line 5: error: listeners.web.h2c: h2c is for http listeners",
        ),
    ] {
        std::fs::write(
            &conf,
            format!("listeners:\n  web:\n    {listener}\nupstreams:\n  u: {{ backends: [{{ addr: 127.0.0.1:9 }}] }}\n"),
        )
        .unwrap();
        let (code, out, err) = check(&conf);
        let all = format!("{out}{err}");
        assert_eq!(code, 1, "{all}");
        assert!(all.contains(want), "{all}");
    }
}

#[test]
fn a_long_h2_path_gets_414_and_reaches_no_backend() {
    let dir = tempfile::tempdir().unwrap();
    let b = backends("uri", 1);
    let (proxy, pem) = tls_proxy(dir.path(), &b);
    let port = proxy.http.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let long = format!("https://localhost:{port}/{}", "a".repeat(9000));
    let (_, out, err) = curl(&[
        "--http2",
        "--cacert",
        pem.cert.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &long,
    ]);
    assert_eq!(out, "2 414", "{err}");
    assert_eq!(b[0].hits(), 0);
}
