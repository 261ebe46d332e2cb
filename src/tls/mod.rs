//! TLS material: certificates and keys loaded (and checked against each
//! other) while the config is validated, the SNI certificate choice on
//! listeners, and the CA set that verifies a TLS upstream.
//!
//! Loading happens once, in [`crate::config`] validation, so a missing,
//! unparsable or mismatched file is a config problem with a YAML path and
//! line, never a panic inside Pingora's `TlsSettings::build`. Listeners then
//! always hand rustls a certificate resolver ([`SniCerts`]), even for one
//! certificate.

mod pem;
mod sni;

pub use pem::{load_ca, load_pair, CertPair};
pub use sni::{LiveCerts, NameMatch, SniCerts};
