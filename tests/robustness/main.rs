//! Robustness of `vigil_core` against hostile input: the service never
//! panics on input, and never trusts what it could not verify.
//!
//! * Deterministic mutation testing (fixed seeds, a tiny inline xorshift
//!   PRNG, bounded iteration counts): the fixture PKI's intermediate CRL
//!   (with a revoked entry), the client certificate and the intermediate are
//!   mutated (bit flips, special bytes, truncation, insertion, deletion,
//!   duplicated ranges, tag and length rewrites) and fed to every entry point
//!   that takes bytes: `ParsedCrl::from_der` + `verify`, `Verifier::add_crl`,
//!   `input::parse_crls` / `parse_certificates` (DER and PEM),
//!   `TrustStore::add_bytes`, `Verifier::add_ca_certificate` and
//!   `Verifier::verify` with the mutant as leaf or intermediate.
//!   Every call runs under `catch_unwind`, so a panic is reported with its
//!   target, seed, iteration and the input in hex. Security properties are
//!   checked on every mutant: a CRL that differs from the original never
//!   verifies with the intermediate's key and never makes a chain accepted;
//!   a leaf or intermediate that differs from the original is never
//!   accepted; the revoked client is never accepted.
//! * "Re-signed" mutants: the signed part (tbsCertList / tbsCertificate) is
//!   mutated and then signed again with the real issuer key, so mutations
//!   get past the signature check and reach entry, extension and path
//!   processing. An authentic CRL may say anything, but a revocation by
//!   the original CRL must still stand.
//! * Edge inputs (empty, one byte, indefinite and huge lengths, deep
//!   nesting, broken PEM, whitespace), every truncation, a CRL without
//!   entries, a mixed PEM bundle, unusual serial numbers (zero, negative,
//!   over 20 octets, non-minimal), and verification at extreme times (also
//!   against a verdict cache holding an acceptance).
//!
//! The fixture keys are random per run, so the mutation sequence is
//! deterministic but the bytes it mutates are not; failures therefore print
//! the mutated input in hex (and the original with `ROBUSTNESS_VERBOSE=1`).
//! Coverage-guided fuzzing of the same entry points lives in `fuzz/` (it
//! needs a nightly toolchain).
//!
//! Layout: the mutators are in `tests/support/mutate.rs`; `fixture` holds the
//! PKI and its verifier, `harness` the panic capture and mutation loops;
//! the tests are grouped by input: `crl`, `certificate`, `serials`, `pem`,
//! `edge` (malformed and boundary inputs) and `times`.

#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod certificate;
mod crl;
mod edge;
mod fixture;
mod harness;
mod pem;
mod serials;
mod times;
