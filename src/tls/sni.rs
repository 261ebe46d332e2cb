//! Certificate choice by the TLS SNI name (rustls `ResolvesServerCert`).
//!
//! Order: an exact name, then the wildcard with the longest suffix, then the
//! default certificate (also used when the client sends no SNI). The choice
//! only picks which certificate to present; routing still goes by the
//! request's Host (or `:authority`), so a client may ask for one name in SNI
//! and another in Host, as with NGINX and HAProxy.

use std::collections::HashMap;
use std::sync::Arc;

use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, ResolvesServerCert};

/// An SNI name a certificate is chosen for. Stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`: any subdomain, not the
    /// bare domain.
    Wildcard(String),
}

#[derive(Debug)]
pub struct SniCerts {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Longest suffix first.
    wildcard: Vec<(String, Arc<CertifiedKey>)>,
    default: Arc<CertifiedKey>,
}

impl SniCerts {
    /// `named` in config order; the first certificate to claim a name wins.
    pub fn new(
        default: Arc<CertifiedKey>,
        named: impl IntoIterator<Item = (NameMatch, Arc<CertifiedKey>)>,
    ) -> Self {
        let mut exact = HashMap::new();
        let mut wildcard: Vec<(String, Arc<CertifiedKey>)> = Vec::new();
        for (name, cert) in named {
            match name {
                NameMatch::Exact(n) => {
                    exact.entry(n).or_insert(cert);
                }
                NameMatch::Wildcard(s) => {
                    if !wildcard.iter().any(|(w, _)| *w == s) {
                        wildcard.push((s, cert));
                    }
                }
            }
        }
        wildcard.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Self {
            exact,
            wildcard,
            default,
        }
    }

    /// The certificate for an SNI name (`None` = the client sent none).
    pub fn choose(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = sni.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            return &self.default;
        };
        if let Some(c) = self.exact.get(&name) {
            return c;
        }
        self.wildcard
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix.as_str()))
            .map_or(&self.default, |(_, c)| c)
    }
}

/// A listener's certificate set as served: replaced whole when a reload
/// read the files again, each handshake reading the current one.
#[derive(Debug)]
pub struct LiveCerts(arc_swap::ArcSwap<SniCerts>);

impl LiveCerts {
    pub fn new(certs: SniCerts) -> Self {
        Self(arc_swap::ArcSwap::from_pointee(certs))
    }

    /// Handshakes from now on present `certs`.
    pub fn replace(&self, certs: SniCerts) {
        self.0.store(Arc::new(certs));
    }
}

impl ResolvesServerCert for LiveCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.0.load().choose(hello.server_name())))
    }
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.choose(hello.server_name())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::tls::sign::SigningKey;

    #[derive(Debug)]
    struct NoKey;

    impl SigningKey for NoKey {
        fn choose_scheme(
            &self,
            _: &[pingora::tls::SignatureScheme],
        ) -> Option<Box<dyn pingora::tls::sign::Signer>> {
            None
        }
        fn algorithm(&self) -> rustls::SignatureAlgorithm {
            rustls::SignatureAlgorithm::ECDSA
        }
    }

    fn ck(tag: u8) -> Arc<CertifiedKey> {
        Arc::new(CertifiedKey::new(vec![vec![tag].into()], Arc::new(NoKey)))
    }

    fn tag(c: &Arc<CertifiedKey>) -> u8 {
        c.cert[0].as_ref()[0]
    }

    #[test]
    fn exact_then_longest_wildcard_then_default() {
        let s = SniCerts::new(
            ck(0),
            [
                (NameMatch::Wildcard(".example.com".into()), ck(1)),
                (NameMatch::Wildcard(".api.example.com".into()), ck(2)),
                (NameMatch::Exact("www.example.com".into()), ck(3)),
                (NameMatch::Exact("www.example.com".into()), ck(4)),
            ],
        );
        assert_eq!(tag(s.choose(Some("WWW.Example.com."))), 3);
        assert_eq!(tag(s.choose(Some("v1.api.example.com"))), 2);
        assert_eq!(tag(s.choose(Some("a.example.com"))), 1);
        assert_eq!(tag(s.choose(Some("example.com"))), 0);
        assert_eq!(tag(s.choose(Some("other.test"))), 0);
        assert_eq!(tag(s.choose(None)), 0);
    }
}
