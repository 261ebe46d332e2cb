//! Several listener certificates chosen by SNI, with a default; and config
//! errors (path and line) for certificate/key files that cannot be used.

mod common;
use common::*;

use std::process::{Command, Stdio};

/// The subject line `openssl s_client` prints for the certificate served
/// to `servername` (`None` = no SNI).
fn subject(port: u16, servername: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    match servername {
        Some(n) => cmd.args(["-servername", n]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed by scripts/install-deps.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn certificate_chosen_by_sni_with_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let default = certs::self_signed(d, "default", "default.test", &["default.test"]);
    let api = certs::self_signed(d, "api", "api.test", &["api.test"]);
    let wild = certs::self_signed(d, "wild", "wild.test", &["*.wild.test"]);
    let b = backends("sni", 1);
    let proxy = Proxy::start(&format!(
        "listeners:\n  web:\n    listen: \"{{HTTP}}\"\n    tls:\n      cert: \"{}\"\n      key: \"{}\"\n      sni:\n        - {{ names: [api.test, API2.test], cert: \"{}\", key: \"{}\" }}\n        - {{ names: [\"*.wild.test\"], cert: \"{}\", key: \"{}\" }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: {} }}\n",
        default.cert.display(),
        default.key.display(),
        api.cert.display(),
        api.key.display(),
        wild.cert.display(),
        wild.key.display(),
        backend_list(&b)
    ));
    let port = proxy.http.port();
    for (sni, cn) in [
        (Some("api.test"), "api.test"),
        (Some("api2.test"), "api.test"),
        (Some("x.wild.test"), "wild.test"),
        (Some("wild.test"), "default.test"),
        (Some("unknown.test"), "default.test"),
        (None, "default.test"),
    ] {
        let s = subject(port, sni);
        assert!(
            s.contains(&format!("CN = {cn}")),
            "sni {sni:?}: {s:?}\n{}",
            proxy.log()
        );
    }
    // And a request over the chosen certificate reaches the backend.
    let (ok, out, err) = curl(&[
        "--cacert",
        api.cert.to_str().unwrap(),
        "--resolve",
        &format!("api.test:{port}:127.0.0.1"),
        &format!("https://api.test:{port}/via-sni"),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("backend: sni-1"), "{out}");
}

#[test]
fn unusable_certificate_files_are_config_errors_with_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = certs::self_signed(d, "a", "a.test", &["a.test"]);
    let b = certs::self_signed(d, "b", "b.test", &["b.test"]);
    let missing = d.join("missing.pem");
    let conf = d.join("c.yaml");
    let cases = [
        // A key that belongs to another certificate.
        (
            format!("cert: \"{}\", key: \"{}\"", a.cert.display(), b.key.display()),
            "listeners.web.tls.key",
            "cannot be used with the certificate",
        ),
        // A file that does not exist.
        (
            format!("cert: \"{}\", key: \"{}\"", missing.display(), a.key.display()),
            "listeners.web.tls.cert",
            "cannot read",
        ),
        // A key file given as the certificate.
        (
            format!("cert: \"{}\", key: \"{}\"", a.key.display(), a.key.display()),
            "listeners.web.tls.cert",
            "no PEM certificate",
        ),
        // A mismatch in an sni entry.
        (
            format!(
                "cert: \"{}\", key: \"{}\", sni: [{{ names: [b.test], cert: \"{}\", key: \"{}\" }}]",
                a.cert.display(),
                a.key.display(),
                b.cert.display(),
                a.key.display()
            ),
            "listeners.web.tls.sni[0].key",
            "cannot be used with the certificate",
        ),
    ];
    for (tls, path, msg) in cases {
        std::fs::write(
            &conf,
            format!("listeners:\n  web:\n    listen: 127.0.0.1:1\n    tls: {{ {tls} }}\n    routes: [{{ upstream: u }}]\nupstreams:\n  u: {{ backends: [{{ addr: 127.0.0.1:9 }}] }}\n"),
        )
        .unwrap();
        let (code, out, err) = check(&conf);
        let all = format!("{out}{err}");
        assert_eq!(code, 1, "{all}");
        assert!(all.contains(path), "want {path}: {all}");
        assert!(all.contains(msg), "want {msg}: {all}");
        assert!(all.contains("line 4"), "{all}");
    }
}
