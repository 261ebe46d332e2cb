//! PEM files to rustls and Pingora types, with errors an operator can act on.

use std::fmt;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pingora::tls::sign::CertifiedKey;
use pingora::tls::{CertificateDer, CryptoProvider, PrivateKeyDer, RootCertStore};
use pingora::utils::tls::WrappedX509;
use rustls_pemfile::Item;

/// A certificate chain with its private key, checked to belong together.
#[derive(Clone)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub certified: Arc<CertifiedKey>,
}

impl fmt::Debug for CertPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("CertPair")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

/// Why a PEM file cannot be used, and which one: `Cert` and `Key` name the
/// config key to blame.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("cannot read \"{0}\": {1}")]
    CertRead(String, std::io::Error),
    #[error("cannot read \"{0}\": {1}")]
    KeyRead(String, std::io::Error),
    #[error("\"{0}\" holds no PEM certificate")]
    NoCert(String),
    #[error("\"{0}\" holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(String),
    #[error("the key \"{key}\" cannot be used with the certificate \"{cert}\": {why}")]
    Mismatch {
        cert: String,
        key: String,
        why: String,
    },
}

impl PemError {
    /// The config key (`cert` or `key`) the problem belongs to.
    pub fn key(&self) -> &'static str {
        match self {
            PemError::CertRead(..) | PemError::NoCert(_) => "cert",
            PemError::KeyRead(..) | PemError::NoKey(_) | PemError::Mismatch { .. } => "key",
        }
    }
}

fn items(path: &Path) -> std::io::Result<Vec<Item>> {
    let file = std::fs::File::open(path)?;
    rustls_pemfile::read_all(&mut BufReader::new(file)).collect()
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let shown = path.display().to_string();
    let certs: Vec<_> = items(path)
        .map_err(|e| PemError::CertRead(shown.clone(), e))?
        .into_iter()
        .filter_map(|i| match i {
            Item::X509Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(PemError::NoCert(shown));
    }
    Ok(certs)
}

/// Loads `cert` (leaf first, then intermediates) and `key`, and checks that
/// the key is usable and matches the leaf's public key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertPair, PemError> {
    let chain = certs(cert);
    let key_shown = key.display().to_string();
    let private = items(key)
        .map_err(|e| PemError::KeyRead(key_shown.clone(), e))
        .and_then(|items| {
            items
                .into_iter()
                .find_map(|i| match i {
                    Item::Pkcs8Key(k) => Some(PrivateKeyDer::from(k)),
                    Item::Pkcs1Key(k) => Some(PrivateKeyDer::from(k)),
                    Item::Sec1Key(k) => Some(PrivateKeyDer::from(k)),
                    _ => None,
                })
                .ok_or(PemError::NoKey(key_shown.clone()))
        });
    let (chain, private) = (chain?, private?);
    pingora::tls::install_default_crypto_provider();
    let mismatch = |why: String| PemError::Mismatch {
        cert: cert.display().to_string(),
        key: key_shown.clone(),
        why,
    };
    let provider =
        CryptoProvider::get_default().ok_or_else(|| mismatch("no TLS crypto provider".into()))?;
    let certified =
        CertifiedKey::from_der(chain, private, provider).map_err(|e| mismatch(e.to_string()))?;
    Ok(CertPair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        certified: Arc::new(certified),
    })
}

/// Loads a CA bundle for verifying a TLS upstream, in the form Pingora's
/// `PeerOptions::ca` takes. Every certificate must parse as a trust anchor.
pub fn load_ca(path: &Path) -> Result<Arc<[WrappedX509]>, PemError> {
    let shown = path.display().to_string();
    let mut wrapped = Vec::new();
    for der in certs(path)? {
        let mut store = RootCertStore::empty();
        let bad = |why: String| PemError::CertRead(shown.clone(), std::io::Error::other(why));
        store
            .add(der.clone())
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        let cert = WrappedX509::try_new(der.to_vec(), |raw| {
            x509_parser::parse_x509_certificate(raw).map(|(_, c)| c)
        })
        .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        wrapped.push(cert);
    }
    Ok(wrapped.into())
}
