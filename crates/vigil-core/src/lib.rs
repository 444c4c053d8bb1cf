//! Vigil's engine, sans I/O: certificate path validation (rustls-webpki),
//! CRL verification and indexing (RFC 5280), revocation policy, and the one
//! [`Verdict`] shape. Bytes and a time go in; decisions come out.
//!
//! ```no_run
//! use vigil_core::{TrustStore, Verifier, VerifyOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut trust = TrustStore::new();
//! trust.add_path("root.pem".as_ref())?;
//! let mut verifier = Verifier::new(trust);
//! verifier.add_crl(&std::fs::read("root.crl")?)?;
//! let chain = vigil_core::input::load_certificates("leaf-chain.pem".as_ref())?;
//! let verdict = verifier.verify(&chain, &VerifyOptions::default(), std::time::SystemTime::now());
//! println!("{}", verdict.to_json());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod cache;
mod cert;
mod deny;
mod der;
mod idset;
pub mod input;
mod name;
mod name_text;
mod path;
mod registry;
pub mod revocation;
pub mod schedule;
mod trust;
mod verdict;
mod verify;

pub use deny::{DenyKey, DenyRule};
pub use idset::IdSet;
pub use input::InputError;
pub use path::Usage;
pub use registry::{
    ConnectionId, DegradedNotice, Reclaimable, Registry, RegistryStats, TeardownEvent,
    TeardownReason, TeardownSignal,
};
pub use revocation::{CrlError, Depth, Reason, RevocationFact, RevocationPolicy, VerifiedCrl};
pub use trust::TrustStore;
pub use verdict::{
    rfc3339, CertStatus, CertSummary, Decision, ReasonCode, RevocationResult, Source, Status,
    Verdict,
};
pub use verify::{CrlLoad, Methods, Verifier, VerifierConfig, VerifyOptions};

/// Certificate DER, re-exported from rustls-pki-types.
pub use rustls_pki_types::CertificateDer;

/// Checks that `name` is a DNS name or IP address usable as `--name`.
pub fn check_peer_name(name: &str) -> Result<(), String> {
    rustls_pki_types::ServerName::try_from(name)
        .map(|_| ())
        .map_err(|e| format!("'{name}' is not a valid DNS name or IP address: {e}"))
}

/// Whether `issuer` issued `cert`: its subject is the certificate's issuer
/// name (RFC 5280 §7.1) and its key verifies the certificate's signature.
/// For choosing the issuer of an OCSP request; says nothing about trust.
pub fn is_issued_by(cert: &[u8], issuer: &[u8]) -> bool {
    match (cert::CertInfo::parse(cert), cert::CertInfo::parse(issuer)) {
        (Ok(c), Ok(i)) => {
            c.issuer_key[..] == i.subject_key[..] && cert::signed_by(cert, i.spki_der())
        }
        _ => false,
    }
}

/// SHA-256 of `data`: how anchors and certificates are identified (e.g.
/// [`TrustStore::remove`]).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    cert::sha256(data)
}

/// Lowercase hex, as serials and fingerprints are shown everywhere.
pub fn hex(bytes: &[u8]) -> String {
    cert::hex(bytes)
}
