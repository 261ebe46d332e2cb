//! TLS termination on an http listener (rustls), with a self-signed
//! certificate made by the openssl command line (tests/common/certs.rs) and
//! a curl client.

mod common;
use common::*;

use std::process::Command;

#[test]
fn tls_listener_terminates_and_forwards_as_https() {
    let dir = tempfile::tempdir().unwrap();
    let pem = certs::self_signed(dir.path(), "localhost", "localhost", &["localhost"]);
    let (cert, key) = (pem.cert, pem.key);

    let b = backends("tls", 1);
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        cert.display(),
        key.display(),
        backend_list(&b)
    ));
    let port = proxy.http.port();
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--cacert"])
        .arg(&cert)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/secure"))
        .output()
        .expect("curl is installed by scripts/install-deps.sh");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        proxy.log()
    );
    assert!(body.contains("backend: tls-1"), "{body}");
    assert!(body.contains("header x-forwarded-proto: https"), "{body}");
    // Plain HTTP on the TLS port does not reach the backend.
    let plain = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("backend:"));
    assert_eq!(b[0].hits(), 1);
}
