//! Certificates: leaf and intermediate mutants with the signature intact
//! (never accepted), and re-signed leaf mutants (never a panic).

use vigil_core::input::{parse_certificates, parse_crls};
use vigil_core::revocation::CrlSigner;
use vigil_core::{
    CertificateDer, ReasonCode, RevocationPolicy, Status, TrustStore, Usage, Verifier,
};

use crate::fixture::{fx, intermediate_key, options, over_intermediate, require, verifier};
use crate::harness::{for_each_mutant, pem, resign, split_signed, verify_both, Case};
use crate::support::mutate::mutate;

const CERT_SEED: u64 = 0x5eed_0003;
const CERT_ITERATIONS: usize = 2000;
const INTERMEDIATE_SEED: u64 = 0x5eed_0004;
const INTERMEDIATE_ITERATIONS: usize = 1000;

/// Feeds a certificate mutant to the input layer and the trust store;
/// returns whether it was read as a certificate from PEM but not from DER
/// (allowed: only DER input is checked for a single outer SEQUENCE by
/// Vigil itself; counted for the report).
fn certificate_inputs(case: &Case<'_>, mutant: &[u8]) -> bool {
    let raw = case.run("parse_certificates (DER)", || {
        parse_certificates(mutant, "mutant")
    });
    let wrapped = pem("CERTIFICATE", mutant);
    let from_pem = case.run("parse_certificates (PEM)", || {
        parse_certificates(&wrapped, "mutant")
    });
    if let Ok(list) = &raw {
        case.check(list.len() == 1 && list[0].as_ref() == mutant, || {
            "parse_certificates (DER) did not return the input".into()
        });
        case.check(from_pem.is_ok(), || {
            "a certificate read as DER is refused when wrapped in PEM".into()
        });
    }
    if let Ok(list) = &from_pem {
        case.check(list.len() == 1 && list[0].as_ref() == mutant, || {
            "parse_certificates (PEM) did not return the input".into()
        });
    }
    let _ = case.run("parse_crls (certificate)", || parse_crls(mutant, "mutant"));
    let _ = case.run("TrustStore::add_bytes (DER)", || {
        TrustStore::new().add_bytes(mutant, "mutant")
    });
    let _ = case.run("TrustStore::add_bytes (PEM)", || {
        TrustStore::new().add_bytes(&wrapped, "mutant")
    });
    let _ = case.run("CrlSigner::from_cert_der", || {
        CrlSigner::from_cert_der(mutant).map(|s| (s.subject().len(), s.key_id().is_some()))
    });
    from_pem.is_ok() && raw.is_err()
}

#[test]
fn mutated_leaves_never_panic_and_are_never_accepted() {
    let fx = fx();
    let original = fx.pki.client.der.as_slice();
    let v = verifier(fx, true);
    let (mut parsed, mut pem_only) = (0usize, 0usize);
    for_each_mutant(
        "mutated leaves",
        "client certificate (leaf)",
        CERT_SEED,
        CERT_ITERATIONS,
        original,
        |rng| mutate(rng, original),
        |case| {
            let mutant = case.input;
            pem_only += usize::from(certificate_inputs(case, mutant));
            if parse_certificates(mutant, "m").is_ok() {
                parsed += 1;
            }
            let chain = over_intermediate(fx, mutant);
            for usage in [Usage::Client, Usage::Any] {
                let opts = require().with_usage(usage);
                let verdict = verify_both(case, &v, &chain, &opts, fx.now);
                case.check(!verdict.is_accepted() || mutant == original, || {
                    format!("a mutated leaf was accepted: {}", verdict.to_json())
                });
            }
            let off = verify_both(case, &v, &chain, &options(RevocationPolicy::Off), fx.now);
            case.check(!off.is_accepted() || mutant == original, || {
                format!(
                    "a mutated leaf was accepted (policy off): {}",
                    off.to_json()
                )
            });
            // The mutant alone, and as its own issuer.
            let _ = verify_both(case, &v, &chain[..1], &require(), fx.now);
        },
    );
    eprintln!(
        "mutated leaves: {parsed} still parse as certificates \
         ({pem_only} more only when wrapped in PEM)"
    );
}

#[test]
fn mutated_intermediates_never_panic_and_are_never_accepted() {
    let fx = fx();
    let original = fx.pki.intermediate.cert.der.as_slice();
    for_each_mutant(
        "mutated intermediates",
        "intermediate certificate",
        INTERMEDIATE_SEED,
        INTERMEDIATE_ITERATIONS,
        original,
        |rng| mutate(rng, original),
        |case| {
            let mutant = case.input;
            let identical = mutant == original;
            let _ = certificate_inputs(case, mutant);

            // Presented as the chain's intermediate.
            let mut v = verifier(fx, true);
            let chain = [fx.client_chain[0].clone(), CertificateDer::from(mutant)];
            let verdict = verify_both(case, &v, &chain, &require(), fx.now);
            case.check(!verdict.is_accepted() || identical, || {
                format!("a mutated intermediate was accepted: {}", verdict.to_json())
            });

            // Known as a CA (a would-be CRL signer): it can't unrevoke and
            // can't break the good chain.
            let known = case.run("Verifier::add_ca_certificate", || {
                v.add_ca_certificate(&CertificateDer::from(mutant))
            });
            if known.is_err() {
                // Refused: nothing changed for the verifier (and the same
                // bytes are refused below); the trust store is all that's left.
                as_anchor(case, mutant);
                return;
            }
            let good = verify_both(case, &v, &fx.client_chain, &require(), fx.now);
            case.check(good.is_accepted(), || {
                format!(
                    "an extra (mutated) CA certificate broke the good chain: {}",
                    good.to_json()
                )
            });
            let bad = verify_both(case, &v, &fx.revoked_chain, &require(), fx.now);
            case.check(bad.reason == ReasonCode::Revoked, || {
                format!(
                    "an extra (mutated) CA certificate changed a revocation: {}",
                    bad.to_json()
                )
            });

            // Known as a CA before the CRL arrives: the CRL must still be
            // verified with the real intermediate only.
            let mut late = verifier(fx, false);
            let _ = case.run("Verifier::add_ca_certificate (before CRL)", || {
                late.add_ca_certificate(&CertificateDer::from(mutant))
            });
            let _ = case.run("Verifier::add_crl (after mutated CA)", || {
                late.add_crl(&fx.pki.intermediate_crl.der)
            });
            let bad = verify_both(case, &late, &fx.revoked_chain, &require(), fx.now);
            case.check(bad.reason == ReasonCode::Revoked, || {
                format!(
                    "a mutated CA certificate loaded first changed a revocation: {}",
                    bad.to_json()
                )
            });

            as_anchor(case, mutant);
        },
    );
}

/// A mutant as a trust anchor: whatever it anchors, no panic.
fn as_anchor(case: &Case<'_>, mutant: &[u8]) {
    let fx = fx();
    let mut trust = TrustStore::new();
    let added = case.run("TrustStore::add", || {
        trust.add(CertificateDer::from(mutant.to_vec()))
    });
    if added.is_ok() {
        let v = Verifier::new(trust);
        let _ = verify_both(case, &v, &fx.client_chain[..1], &require(), fx.now);
    }
}

const RESIGNED_CERT_SEED: u64 = 0x5eed_0005;
const RESIGNED_CERT_ITERATIONS: usize = 1000;

#[test]
fn resigned_leaf_mutants_never_panic() {
    let fx = fx();
    let original = fx.pki.client.der.as_slice();
    let (tbs_content, alg) = split_signed(original);
    let key = intermediate_key(fx);
    let v = verifier(fx, true);
    // Sanity: the unchanged tbs, re-signed, is accepted.
    let same = resign(&tbs_content, &alg, key);
    let chain = over_intermediate(fx, same);
    assert!(v.verify_uncached(&chain, &require(), fx.now).is_accepted());

    let mut accepted = 0usize;
    for_each_mutant(
        "re-signed leaves",
        "re-signed client certificate",
        RESIGNED_CERT_SEED,
        RESIGNED_CERT_ITERATIONS,
        original,
        |rng| resign(&mutate(rng, &tbs_content), &alg, key),
        |case| {
            let mutant = case.input;
            let _ = certificate_inputs(case, mutant);
            let chain = over_intermediate(fx, mutant);
            let verdict = verify_both(case, &v, &chain, &require(), fx.now);
            if verdict.is_accepted() {
                accepted += 1;
                // Accepted under "require": every certificate has a verified,
                // fresh "good" from a CRL, and it is not the revoked serial.
                case.check(
                    verdict.status == Status::Good
                        && verdict.revocation.len() == 2
                        && verdict
                            .revocation
                            .iter()
                            .all(|r| r.status == vigil_core::CertStatus::Good),
                    || format!("accepted without good status: {}", verdict.to_json()),
                );
                case.check(
                    verdict
                        .chain
                        .first()
                        .map(|c| vigil_core::text::hex(&c.serial))
                        != Some(fx.pki.revoked_client.serial_hex()),
                    || format!("revoked serial accepted: {}", verdict.to_json()),
                );
            }
            let _ = verify_both(
                case,
                &v,
                &chain,
                &require()
                    .with_usage(Usage::Server)
                    .with_name("client.vigil.test".to_owned()),
                fx.now,
            );
        },
    );
    eprintln!("re-signed leaves: {accepted} accepted");
}
