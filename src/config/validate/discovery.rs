//! Backends named in DNS: `discovery.srv` and the host-name syntax.

use super::super::model::*;
use super::super::path::YamlPath;
use super::super::problem::Problems;
use super::super::raw::*;

/// `discovery: { srv: NAME }`.
pub(super) fn discovery(d: RawDiscovery, path: &YamlPath, p: &mut Problems) -> Option<DnsSource> {
    let Some(name) = d.srv else {
        p.error(path, "discovery needs `srv`")
            .hint("e.g. discovery: { srv: _http._tcp.api.service.consul }");
        return None;
    };
    if !dns_name(&name) {
        p.error(&path.key("srv"), format!("\"{name}\" is not a DNS name"));
        return None;
    }
    Some(DnsSource::Srv { name })
}

/// Letters, digits, `-`, `_` and dots, labels of 1-63 bytes, at most 253
/// in all (a trailing dot allowed).
pub(super) fn dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
