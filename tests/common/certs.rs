//! Test certificates made with the openssl command line (installed by
//! `scripts/install-deps.sh`): self-signed leaves, a CA, and leaves it signs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate and its key, as PEM files.
pub struct Pem {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed by scripts/install-deps.sh");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn paths(dir: &Path, name: &str) -> Pem {
    Pem {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A self-signed certificate for `cn`, valid for the DNS names `sans`.
pub fn self_signed(dir: &Path, name: &str, cn: &str, sans: &[&str]) -> Pem {
    let pem = paths(dir, name);
    let san = sans
        .iter()
        .map(|n| format!("DNS:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let subj = format!("/CN={cn}");
    let ext = format!("subjectAltName={san}");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &subj,
        "-addext",
        &ext,
        "-keyout",
        s(&pem.key),
        "-out",
        s(&pem.cert),
    ]);
    pem
}

/// A certificate authority that can sign leaves.
pub fn ca(dir: &Path, name: &str) -> Pem {
    let pem = paths(dir, name);
    let subj = format!("/CN={name}");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        s(&pem.key),
        "-out",
        s(&pem.cert),
    ]);
    pem
}

/// A leaf for `cn` (also its only DNS name) signed by `ca`.
pub fn signed(dir: &Path, name: &str, cn: &str, ca: &Pem) -> Pem {
    let pem = paths(dir, name);
    let csr = dir.join(format!("{name}.csr"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!(
            "subjectAltName=DNS:{cn}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    let subj = format!("/CN={cn}");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &subj,
        "-keyout",
        s(&pem.key),
        "-out",
        s(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca.cert),
        "-CAkey",
        s(&ca.key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        s(&ext),
        "-out",
        s(&pem.cert),
    ]);
    pem
}
