//! A test PKI generated in code, for Vigil's tests, benchmarks and demos.
//!
//! **Everything here is test material.** Keys are generated without any care for secrecy,
//! written to disk unencrypted, and RSA keys are even shared between certificates (see
//! [`RSA_POOL_SIZE`]). Never use anything produced by this crate outside of tests.
//!
//! Two levels of API:
//!
//! * [`generate`] builds the standard [`Pki`]: a root, an intermediate, good / revoked /
//!   expired / not-yet-valid / bad-signature leaves, an expired and a revoked intermediate,
//!   an unrelated root chain, and CRLs (current, stale, forged). [`Pki::write_to`] dumps
//!   it all to a directory with a `manifest.json`.
//! * [`Ca`], [`CertSpec`] and [`CrlSpec`] build custom hierarchies.
//!
//! Every non-root certificate carries a CRL distribution point
//! `{base_url}/crl/{issuer-role}.crl` and an authorityInfoAccess OCSP URI
//! `{base_url}/ocsp/{issuer-role}` ([`crl_url`], [`ocsp_url`]). CA certificates have a
//! critical basicConstraints `cA=TRUE`, a critical keyUsage `keyCertSign, cRLSign` and a
//! subjectKeyIdentifier; leaves have a critical basicConstraints `cA=FALSE`, a critical
//! keyUsage `digitalSignature` (plus `keyEncipherment` for RSA), a subjectKeyIdentifier and
//! the EKU given by [`LeafUsage`]. Every certificate (roots included) has an
//! authorityKeyIdentifier. CRLs are version 2 with authorityKeyIdentifier and cRLNumber.
//!
//! ```
//! let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default())?;
//! let client = pki.cert("client").expect("standard role");
//! assert_eq!(client.issuer, "intermediate");
//! assert!(pki.chain_pem("client").starts_with(&client.pem));
//! # Ok::<(), pki_fixtures::FixtureError>(())
//! ```
//!
//! For tests: [`generate_shared`] generates a [`Pki`] once per process and set of
//! options, [`PkiDir`] writes one to a temporary directory, and [`openssl`] drives the
//! `openssl` command-line tool as an OCSP responder (index file, request, DER response).
//!
//! [`responder`] serves a [`Pki`]'s CRLs and answers OCSP for it over HTTP on
//! 127.0.0.1, with revocations added at run time and misbehaviour on demand.
//!
//! [`der`] is the one DER reader and writer of the fixtures and the tests.

mod ca;
pub mod der;
mod error;
mod keys;
pub mod openssl;
mod pki;
mod pki_dir;
mod pkits;
pub mod responder;
mod shared;

pub use ca::{
    crl_url, ocsp_url, Ca, Cert, CertSpec, Crl, CrlNumberFault, CrlSpec, LeafUsage, PkiOptions,
    Reason, RevokedEntry, ORGANIZATION,
};
pub use der::pem;
pub use error::FixtureError;
pub use keys::{KeyAlg, RSA_POOL_SIZE};
pub use pki::{generate, rfc3339, roles, FileFormat, FileKind, Manifest, ManifestEntry, Pki};
pub use pki_dir::PkiDir;
pub use pkits::{pkits_cases, pkits_dir, PkitsCase, PKITS_ANCHOR, PKITS_TIME};
pub use shared::generate_shared;
