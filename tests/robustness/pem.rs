//! PEM text: mutated PEM never panics; a mixed bundle is split by kind.

use vigil_core::input::{parse_certificates, parse_crls};
use vigil_core::revocation::ParsedCrl;
use vigil_core::TrustStore;

use crate::fixture::{fx, require, verifier};
use crate::harness::{for_each_mutant, verify_both};
use crate::support::mutate::{mutate, Rng};

const PEM_SEED: u64 = 0x5eed_0006;
const PEM_ITERATIONS: usize = 3000;

#[test]
fn mutated_pem_text_never_panics() {
    let fx = fx();
    let mut bundle = fx.pki.client.pem.clone().into_bytes();
    bundle.extend_from_slice(fx.pki.intermediate_crl.pem.as_bytes());
    bundle.extend_from_slice(fx.pki.intermediate.cert.pem.as_bytes());
    // Binary mutations, then text-level damage too: lines dropped, dashes,
    // CRs, NULs.
    let damage = |rng: &mut Rng| {
        let mut mutant = mutate(rng, &bundle);
        match rng.below(6) {
            0 => {
                let at = rng.below(mutant.len() + 1);
                mutant.splice(at..at, b"\r".iter().copied());
            }
            1 => {
                let at = rng.below(mutant.len() + 1);
                mutant.splice(at..at, b"-----".iter().copied());
            }
            2 => {
                if let Some(nl) = mutant.iter().position(|b| *b == b'\n') {
                    mutant.remove(nl);
                }
            }
            3 => {
                let at = rng.below(mutant.len() + 1);
                mutant.splice(at..at, b"-----BEGIN X509 CRL-----\n".iter().copied());
            }
            _ => {}
        }
        mutant
    };
    for_each_mutant(
        "mutated PEM",
        "PEM bundle (certificate, CRL, certificate)",
        PEM_SEED,
        PEM_ITERATIONS,
        &bundle,
        damage,
        |case| {
            let mutant = case.input;
            if let Ok(certs) = case.run("parse_certificates", || {
                parse_certificates(mutant, "mutant")
            }) {
                if !certs.is_empty() {
                    let v = verifier(fx, true);
                    let _ = verify_both(case, &v, &certs, &require(), fx.now);
                }
            }
            if let Ok(crls) = case.run("parse_crls", || parse_crls(mutant, "mutant")) {
                let mut v = verifier(fx, false);
                for crl in &crls {
                    let _ = case.run("Verifier::add_crl", || v.add_crl(crl));
                }
            }
            let _ = case.run("TrustStore::add_bytes", || {
                TrustStore::new().add_bytes(mutant, "mutant")
            });
        },
    );
}

#[test]
fn a_mixed_pem_bundle_is_split_by_kind() {
    let fx = fx();
    let mut bundle = String::from("some preamble text\n");
    bundle.push_str(&fx.pki.intermediate_crl.pem);
    bundle.push_str(&fx.pki.client.pem);
    bundle.push_str(&fx.pki.root_crl.pem);
    bundle.push_str("trailing text\n");
    let certs = parse_certificates(bundle.as_bytes(), "bundle").unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].as_ref(), fx.pki.client.der.as_slice());
    let crls = parse_crls(bundle.as_bytes(), "bundle").unwrap();
    assert_eq!(
        crls,
        vec![
            fx.pki.intermediate_crl.der.clone(),
            fx.pki.root_crl.der.clone()
        ]
    );

    // A certificate where a CRL is expected and vice versa: clear errors.
    assert!(parse_crls(fx.pki.client.pem.as_bytes(), "cert").is_err());
    assert!(parse_certificates(fx.pki.intermediate_crl.pem.as_bytes(), "crl").is_err());
    // As DER, a CRL is not a certificate (parse_crls only checks the outer
    // SEQUENCE, so a certificate passes there; ParsedCrl refuses it).
    assert!(parse_certificates(&fx.pki.intermediate_crl.der, "crl").is_err());
    assert!(ParsedCrl::from_der(&fx.pki.client.der).is_err());
    assert!(TrustStore::new()
        .add_bytes(fx.pki.intermediate_crl.pem.as_bytes(), "crl")
        .is_err());
}
