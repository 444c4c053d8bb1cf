//! Vigil's engine, sans I/O: certificate path validation (rustls-webpki),
//! CRL and OCSP verification and indexing (RFC 5280, RFC 6960), revocation
//! policy, and the one [`Verdict`] shape. Bytes and a time go in; decisions
//! come out.
//!
//! **The one door for peer material** is [`Snapshot::validate`]: only an
//! [`AdmittedPath`] (a chain whose path validated to an anchor, which only
//! the verifier can make) is fetched for, admitted as CRL signers
//! ([`Verifier::admit`]) or considered for stapled OCSP
//! ([`Verifier::add_stapled_ocsp`]); revocation memory is keyed by the
//! issuer's key, and data that failed a check never outranks data that
//! passed. `docs/trust-boundary.md` draws the flow and lists every bound
//! ([`limits`]).
//!
//! # Contents
//!
//! * Deciding: [`TrustStore`] (anchors), [`Verifier`] (the writer:
//!   [`VerifierConfig`]) and the [`Snapshot`] it publishes, which
//!   verifications read ([`VerifyOptions`], [`Usage`], [`RevocationPolicy`],
//!   [`Depth`]), and the [`Verdict`] they return ([`Status`], [`ReasonCode`], [`CertSummary`],
//!   [`RevocationResult`]).
//! * Revocation data: [`revocation`] (CRL and OCSP parsing and
//!   verification, the URLs a certificate names), [`schedule`] (when to
//!   fetch again).
//! * Live connections: [`Registry`] indexes them by the certificates they
//!   depend on and says which must go ([`TeardownEvent`],
//!   [`TeardownSignal`]); it tracks only an [`AcceptedPath`], the proof
//!   that only an accepted verdict yields; operator denials are
//!   [`DenyRule`]s.
//! * Text: [`text`] is the one place times and bytes become RFC 3339 and
//!   hex (and back, for operator input); inside, they stay typed.
//! * Input: [`input`] reads certificates, CRLs and private keys (PEM or
//!   DER) with errors that name the file ([`input::InputError`]).
//!
//! **Readers never wait for writers.** What a verification reads is an
//! immutable [`Snapshot`]; a [`Verifier`] builds the next one beside it
//! (a new CRL is parsed, verified and indexed by
//! [`Snapshot::prepare_crl`] against the published snapshot, then
//! [`Verifier::commit_crl`] re-checks what may have changed and links it
//! in), sharing every unchanged part, and the runtime publishes it by a
//! pointer swap. `docs/architecture.md` draws the data flow from a fetched
//! CRL to a closed connection.
//!
//! # Example
//!
//! Verifying a client chain offline against an anchor and two CRLs (the
//! files of the fixture PKI; hidden lines make them):
//!
//! ```
//! use std::time::SystemTime;
//! use vigil_core::{Status, TrustStore, Usage, Verifier, VerifyOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default())?;
//! # let dir = pki_fixtures::PkiDir::new(&pki)?;
//! # let file = |name: &str| dir.file(name);
//! let mut trust = TrustStore::new();
//! trust.add_path(&file("root.pem"))?;
//! let mut verifier = Verifier::new(trust);
//! for crl in ["root.crl", "intermediate.crl"] {
//!     verifier.add_crl(&vigil_core::input::read_file(&file(crl))?)?;
//! }
//! let chain = vigil_core::input::load_certificates(&file("client.chain.pem"))?;
//! let options = VerifyOptions::new(Usage::Client);
//! let verdict = verifier.verify(&chain, &options, SystemTime::now());
//! assert_eq!(verdict.status, Status::Good);
//! println!("{}", verdict.to_json()); // the contract JSON (ARCHITECTURE.md)
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
mod options;
mod path;
mod registry;
pub mod revocation;
pub mod schedule;
mod snapshot;
pub mod text;
mod trust;
mod verdict;
mod verify;
mod x509;

pub use deny::{DenyKey, DenyRule};
pub use idset::IdSet;
pub use name_text::NameText;
pub use options::{Freshness, Methods, VerifierConfig, VerifyOptions};
pub use path::Usage;
pub use registry::{
    ConnectionId, DegradedNotice, Reclaimable, Registry, RegistryStats, TeardownEvent,
    TeardownReason, TeardownSignal,
};
pub use revocation::policy::{Depth, RevocationPolicy};
pub use snapshot::Snapshot;
pub use trust::TrustStore;
pub use verdict::{
    AcceptedPath, CertStatus, CertSummary, Decision, ReasonCode, RevocationResult, Source, Status,
    Verdict,
};
pub use verify::{AdmittedPath, CrlDer, CrlLoad, PlanEntry, PreparedCrl, Verifier};

/// Caps on what input can grow in the core, with what happens at the cap.
///
/// | what | cap | at the cap |
/// |---|---|---|
/// | admitted CA certificates (CRL signers) | [`MAX_ADMITTED_CAS`](limits::MAX_ADMITTED_CAS) | the oldest is forgotten (CRLs it verified stay verified) |
/// | CA certificates waiting for their issuer | [`MAX_CANDIDATE_CAS`](limits::MAX_CANDIDATE_CAS) | the oldest is dropped |
/// | CRLs waiting for a signer (pending) | [`MAX_PENDING_CRLS`](limits::MAX_PENDING_CRLS), [`MAX_PENDING_CRL_BYTES`](limits::MAX_PENDING_CRL_BYTES) | the oldest pending CRL is dropped |
/// | OCSP answers held without a source (stapled, files) | [`MAX_UNKEYED_OCSP`](limits::MAX_UNKEYED_OCSP) | the oldest is dropped |
/// | remembered revocations | [`MAX_FACTS`](limits::MAX_FACTS) | new facts are refused and counted (a revocation is never forgotten to make room); facts go when their certificate expires |
pub mod limits {
    pub use crate::revocation::memory::MAX_FACTS;
    pub use crate::verify::{
        MAX_ADMITTED_CAS, MAX_CANDIDATE_CAS, MAX_PENDING_CRLS, MAX_PENDING_CRL_BYTES,
        MAX_UNKEYED_OCSP,
    };
}

/// Certificate DER, re-exported from rustls-pki-types.
pub use rustls_pki_types::CertificateDer;
/// Private key DER (PKCS#8, SEC1 or PKCS#1), re-exported from
/// rustls-pki-types: what [`input::load_private_key`] returns.
pub use rustls_pki_types::PrivateKeyDer;

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
