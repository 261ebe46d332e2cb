//! The `tls` keys of listeners and upstreams. PEM files are loaded here, so
//! an unreadable file, a file without a certificate or key, or a key that
//! does not belong to its certificate is a config problem with a path and
//! line (see [`crate::tls`]).

use std::net::IpAddr;
use std::path::PathBuf;

use super::model::{BackendSpec, ListenerTls, NameMatch, SniCert, UpstreamTls};
use super::path::YamlPath;
use super::problem::Problems;
use super::raw::{RawSniCert, RawTls, RawUpstreamTls};
use crate::tls::{load_ca, load_pair, CertPair};

const LISTENER_HINT: &str = "tls: { cert: cert.pem, key: key.pem, sni: [{ names: [api.example.com], cert: api.pem, key: api-key.pem }] }";

/// `cert` + `key` at `path`, loaded and matched.
fn pair(
    cert: Option<String>,
    key: Option<String>,
    path: &YamlPath,
    p: &mut Problems,
) -> Option<CertPair> {
    let mut need = |v: Option<String>, k: &str| {
        if v.is_none() {
            p.error(path, format!("tls needs `{k}`"))
                .hint(LISTENER_HINT);
        }
        v
    };
    let (cert, key) = (need(cert, "cert"), need(key, "key"));
    let (cert, key) = (PathBuf::from(cert?), PathBuf::from(key?));
    match load_pair(&cert, &key) {
        Ok(pair) => Some(pair),
        Err(e) => {
            p.error(&path.key(e.key()), e.to_string()).hint(
                "paths are relative to the directory switchyard runs in; the key must be the certificate's own",
            );
            None
        }
    }
}

pub fn listener_tls(t: RawTls, path: &YamlPath, p: &mut Problems) -> Option<ListenerTls> {
    let default = pair(t.cert, t.key, path, p);
    let mut sni: Vec<SniCert> = Vec::new();
    let mut seen: Vec<(NameMatch, usize)> = Vec::new();
    for (i, entry) in t.sni.unwrap_or_default().into_iter().enumerate() {
        let epath = path.key("sni").index(i);
        if let Some(c) = sni_cert(entry, &epath, &mut seen, i, p) {
            sni.push(c);
        }
    }
    Some(ListenerTls {
        default: default?,
        sni,
    })
}

fn sni_cert(
    e: RawSniCert,
    path: &YamlPath,
    seen: &mut Vec<(NameMatch, usize)>,
    index: usize,
    p: &mut Problems,
) -> Option<SniCert> {
    let raw_names = e.names.unwrap_or_default();
    if raw_names.is_empty() {
        p.error(path, "sni entry needs `names`")
            .hint("names: [api.example.com, \"*.api.example.com\"]");
    }
    let mut names = Vec::new();
    for (j, n) in raw_names.iter().enumerate() {
        let npath = path.key("names").index(j);
        let Some(m) = name_match(n) else {
            p.error(&npath, format!("\"{n}\" is not a host name"))
                .hint("write a name (api.example.com) or a wildcard (*.example.com)");
            continue;
        };
        if let Some((_, k)) = seen.iter().find(|(s, _)| *s == m) {
            p.error(&npath, format!("\"{n}\" is already listed in sni[{k}]"))
                .hint("each name selects one certificate");
            continue;
        }
        seen.push((m.clone(), index));
        names.push(m);
    }
    let pair = pair(e.cert, e.key, path, p)?;
    Some(SniCert { names, pair })
}

fn name_match(n: &str) -> Option<NameMatch> {
    let n = n.trim_end_matches('.').to_ascii_lowercase();
    let (wild, base) = match n.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, n.as_str()),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if base.is_empty() || !base.split('.').all(label_ok) {
        return None;
    }
    Some(if wild {
        NameMatch::Wildcard(format!(".{base}"))
    } else {
        NameMatch::Exact(base.to_string())
    })
}

/// The host part of a backend `addr`, unless it is an IP address.
pub fn backend_host_name(addr: &str) -> Option<&str> {
    let (host, _) = addr.rsplit_once(':')?;
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() || host.is_empty() {
        return None;
    }
    Some(host)
}

impl UpstreamTls {
    /// The name given to the TLS handshake for the backend at `addr`:
    /// `tls.sni`, else the backend's host name, else (only reachable with
    /// `verify: false`, see validation) its IP address, which rustls accepts
    /// as a server name but never sends as SNI. Never empty, so Pingora's
    /// "empty SNI = skip verification" rule never applies.
    pub fn sni_for(&self, addr: &str) -> String {
        if let Some(sni) = &self.sni {
            return sni.clone();
        }
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    }
}

pub fn upstream_tls(
    t: RawUpstreamTls,
    backends: &[BackendSpec],
    upstream: &YamlPath,
    p: &mut Problems,
) -> Option<UpstreamTls> {
    let path = &upstream.key("tls");
    let s = match t {
        RawUpstreamTls::Switch(false) => return None,
        RawUpstreamTls::Switch(true) => Default::default(),
        RawUpstreamTls::Settings(s) => s,
    };
    let verify = s.verify.unwrap_or(true);
    let sni = match s.sni {
        Some(n) if n.trim().is_empty() => {
            p.error(&path.key("sni"), "sni is empty")
                .hint("an empty SNI would turn certificate verification off; to mean that, write verify: false");
            None
        }
        Some(n) if name_match(&n).is_none_or(|m| matches!(m, NameMatch::Wildcard(_))) => {
            p.error(&path.key("sni"), format!("\"{n}\" is not a host name"));
            None
        }
        other => other.map(|n| n.trim_end_matches('.').to_ascii_lowercase()),
    };
    let ca = s.ca_file.and_then(|f| {
        if !verify {
            p.warning(&path.key("ca_file"), "ca_file is unused with verify: false");
        }
        load_ca(&PathBuf::from(&f))
            .map_err(|e| {
                p.error(&path.key("ca_file"), e.to_string()).hint(
                    "a PEM file with the CA certificate(s) that sign the backends' certificates",
                );
            })
            .ok()
    });
    if verify && sni.is_none() {
        for (i, b) in backends.iter().enumerate() {
            if backend_host_name(&b.addr).is_none() {
                let bpath = upstream.key("backends").index(i).key("addr");
                p.error(&bpath, format!("{} is an IP address, so TLS has no name to verify", b.addr))
                    .hint("set tls.sni to the name in the backend's certificate, or write tls.verify: false to skip verification");
            }
        }
    }
    if !verify {
        p.warning(
            path,
            "backend certificates are not verified (verify: false)",
        )
        .hint("anyone on the path to the backends can read and change this traffic");
    }
    Some(UpstreamTls { sni, ca, verify })
}
