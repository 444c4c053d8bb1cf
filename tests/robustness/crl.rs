//! CRLs: mutants with the signature intact (they must never verify), and
//! mutants re-signed with the real key (they may say anything, but never
//! undo a revocation); a CRL without entries.

use pki_fixtures::CrlSpec;
use vigil_core::input::{parse_certificates, parse_crls};
use vigil_core::revocation::{ParsedCrl, VerifiedCrl};
use vigil_core::{CrlLoad, ReasonCode, RevocationPolicy, Status};

use crate::fixture::{fx, intermediate_key, options, require, verifier};
use crate::harness::{
    check_same_as_original, elements, for_each_mutant, pem, resign, split_signed, tbs_of,
    verify_both,
};
use crate::support::mutate::mutate;

const CRL_SEED: u64 = 0x5eed_0001;
const CRL_ITERATIONS: usize = 3000;
/// CRL mutants that do not parse (so that `Verifier::add_crl` refuses them
/// and the verifier stays as it was) go through the verifier and the chain
/// verifications on every this many iterations only.
const REFUSED_CRL_VERIFY_EVERY: usize = 16;

#[test]
fn mutated_crls_never_panic_and_never_verify() {
    let fx = fx();
    let original = fx.pki.intermediate_crl.der.as_slice();
    let original_tbs = tbs_of(original).unwrap();
    let (mut parsed, mut verified, mut loaded) = (0usize, 0usize, 0usize);
    for_each_mutant(
        "mutated CRLs",
        "intermediate CRL",
        CRL_SEED,
        CRL_ITERATIONS,
        original,
        |rng| mutate(rng, original),
        |case| {
            let mutant = case.input;
            let identical = mutant == original;

            // ParsedCrl::from_der + verify with the real issuer.
            let result = case.run("ParsedCrl::from_der / verify", || {
                ParsedCrl::from_der(mutant).map(|p| {
                    let _ = (p.issuer(), p.this_update(), p.next_update());
                    let _ = p.authority_key_id();
                    p.verify(&fx.signer)
                })
            });
            if let Ok(v) = &result {
                parsed += 1;
                if let Ok(crl) = v {
                    verified += 1;
                    case.check(identical || tbs_of(mutant) == Some(original_tbs), || {
                        "a CRL whose tbsCertList differs verified with the issuer's key".into()
                    });
                    case.check(identical, || {
                        "a CRL that differs from the original (outside tbsCertList) verified".into()
                    });
                    check_same_as_original(case, fx, crl);
                }
            }
            let _ = case.run("VerifiedCrl::from_der", || {
                VerifiedCrl::from_der(mutant, &fx.signer).map(|c| c.len())
            });

            // The input layer, DER and PEM.
            let raw = case.run("parse_crls (DER)", || parse_crls(mutant, "mutant"));
            if let Ok(list) = &raw {
                case.check(list.len() == 1 && list[0] == mutant, || {
                    "parse_crls (DER) did not return the input".into()
                });
            }
            let wrapped = pem("X509 CRL", mutant);
            let from_pem = case.run("parse_crls (PEM)", || parse_crls(&wrapped, "mutant"));
            if !mutant.is_empty() {
                case.check(
                    from_pem
                        .as_ref()
                        .is_ok_and(|l| l.len() == 1 && l[0] == mutant),
                    || format!("parse_crls (PEM) did not round-trip: {from_pem:?}"),
                );
            }
            let _ = case.run("parse_certificates (CRL DER)", || {
                parse_certificates(mutant, "mutant")
            });

            // The verifier: a mutant alone must not make anything accepted,
            // and must never make the revoked client accepted.
            if result.is_err() && !case.iteration.is_multiple_of(REFUSED_CRL_VERIFY_EVERY) {
                // Unparsable: `Verifier::add_crl` refuses it before anything
                // changes; the verifier paths run on a sample only.
                return;
            }
            {
                let mut v = verifier(fx, false);
                let load = case.run("Verifier::add_crl", || v.add_crl(mutant));
                case.check(load.is_err() == result.is_err(), || {
                    format!("ParsedCrl::from_der and Verifier::add_crl disagree: {load:?}")
                });
                if let Ok(CrlLoad::Verified { entries }) = &load {
                    loaded += 1;
                    case.check(identical, || {
                        format!("a mutated CRL was loaded as verified ({entries} entries)")
                    });
                }
                let good = verify_both(case, &v, &fx.client_chain, &require(), fx.now);
                case.check(!good.is_accepted() || identical, || {
                    format!("client accepted on a mutated CRL alone: {}", good.to_json())
                });
                let bad = verify_both(case, &v, &fx.revoked_chain, &require(), fx.now);
                case.check(!bad.is_accepted(), || {
                    format!("revoked client accepted: {}", bad.to_json())
                });
                if let Ok(CrlLoad::Rejected(e)) = &load {
                    // "prefer" soft-fails unknown status, never a CRL that
                    // failed verification against the issuer's key.
                    let soft = verify_both(
                        case,
                        &v,
                        &fx.revoked_chain,
                        &options(RevocationPolicy::Prefer),
                        fx.now,
                    );
                    case.check(!soft.is_accepted(), || {
                        format!(
                            "revoked client accepted under prefer with a rejected CRL ({e}): {}",
                            soft.to_json()
                        )
                    });
                }
            }
        },
    );
    eprintln!("mutated CRLs: {parsed} parsed, {verified} verified, {loaded} loaded as verified");
}

const RESIGNED_CRL_SEED: u64 = 0x5eed_0002;
const RESIGNED_CRL_ITERATIONS: usize = 1500;

#[test]
fn resigned_crl_mutants_never_panic_and_never_unrevoke() {
    let fx = fx();
    let original = fx.pki.intermediate_crl.der.as_slice();
    let (tbs_content, alg) = split_signed(original);
    let key = intermediate_key(fx);
    // Sanity: re-signing the unchanged tbs gives a CRL that verifies.
    let same = resign(&tbs_content, &alg, key);
    let crl = VerifiedCrl::from_der(&same, &fx.signer).unwrap();
    assert_eq!(crl.len(), 1);

    let (mut verified, mut revoked_still) = (0usize, 0usize);
    for_each_mutant(
        "re-signed CRLs",
        "re-signed intermediate CRL",
        RESIGNED_CRL_SEED,
        RESIGNED_CRL_ITERATIONS,
        original,
        |rng| resign(&mutate(rng, &tbs_content), &alg, key),
        |case| {
            let mutant = case.input;
            let result = case.run("ParsedCrl::from_der / verify", || {
                ParsedCrl::from_der(mutant).map(|p| p.verify(&fx.signer))
            });
            if let Ok(Ok(crl)) = &result {
                verified += 1;
                case.run("VerifiedCrl accessors", || {
                    let _ = (crl.issuer(), crl.number(), crl.scope(), crl.delta_base());
                    let _ = (crl.unsupported(), crl.has_freshest_crl(), crl.is_empty());
                    let _ = (crl.retained_bytes(), crl.signer_fingerprint());
                    let _ = crl.lookup(&fx.pki.revoked_client.serial);
                    let _ = crl.lookup(&fx.pki.client.serial);
                    let _ = crl.lookup(&[]);
                    let _ = crl.lookup(&[0u8; 40]);
                    let _ = format!("{crl:?}");
                });
            }

            if result.is_err() && !case.iteration.is_multiple_of(REFUSED_CRL_VERIFY_EVERY) {
                // Unparsable: `Verifier::add_crl` refuses it before anything
                // changes; the verifier paths run on a sample only.
                return;
            }

            // Loaded next to the original: any verdict, no panic, and the
            // original's revocation still stands.
            let mut v = verifier(fx, true);
            let _ = case.run("Verifier::add_crl", || v.add_crl(mutant));
            let bad = verify_both(case, &v, &fx.revoked_chain, &require(), fx.now);
            case.check(bad.reason == ReasonCode::Revoked, || {
                format!(
                    "an extra CRL from the same issuer changed a revocation: {}",
                    bad.to_json()
                )
            });
            revoked_still += 1;
            let _ = verify_both(case, &v, &fx.client_chain, &require(), fx.now);

            // Loaded alone: any verdict, no panic; if the client is accepted,
            // its status must come from a CRL that said "good".
            let mut alone = verifier(fx, false);
            let _ = case.run("Verifier::add_crl (alone)", || alone.add_crl(mutant));
            let good = verify_both(case, &alone, &fx.client_chain, &require(), fx.now);
            if good.is_accepted() {
                case.check(
                    good.status == Status::Good
                        && good
                            .revocation
                            .iter()
                            .all(|r| r.status == vigil_core::CertStatus::Good),
                    || format!("accepted without a good status: {}", good.to_json()),
                );
            }
            let _ = verify_both(
                case,
                &alone,
                &fx.revoked_chain,
                &options(RevocationPolicy::Prefer),
                fx.now,
            );
        },
    );
    eprintln!("re-signed CRLs: {verified} verified; revocation held in {revoked_still}");
}

#[test]
fn a_crl_without_entries_verifies_and_revokes_nothing() {
    // Not an error: a CRL with no entries is the normal state of most CAs.
    let fx = fx();
    let empty = fx
        .pki
        .intermediate
        .crl(&CrlSpec::new(&fx.pki.options))
        .unwrap();
    assert!(empty.revoked_serials.is_empty());
    let crl = ParsedCrl::from_der(&empty.der)
        .unwrap()
        .verify(&fx.signer)
        .unwrap();
    assert!(crl.is_empty());
    assert_eq!(crl.len(), 0);
    assert!(crl.lookup(&fx.pki.client.serial).is_none());
    assert!(crl.lookup(&fx.pki.revoked_client.serial).is_none());

    let mut v = verifier(fx, false);
    assert_eq!(
        v.add_crl(&empty.der).unwrap(),
        CrlLoad::Verified { entries: 0 }
    );
    let good = v.verify_uncached(&fx.client_chain, &require(), fx.now);
    assert!(good.is_accepted(), "{}", good.to_json());

    // An empty revokedCertificates SEQUENCE (RFC 5280 says to omit it, but
    // it means the same), signed by the real issuer: no panic, no entries.
    let (tbs_content, alg) = split_signed(&empty.der);
    let fields = elements(&tbs_content);
    // version, signature, issuer, thisUpdate, nextUpdate, [0] extensions
    assert_eq!(fields.len(), 6, "unexpected CRL layout");
    let mut content: Vec<u8> = fields[..5].concat();
    content.extend([0x30, 0x00]);
    content.extend_from_slice(&fields[5]);
    let crafted = resign(&content, &alg, intermediate_key(fx));
    match VerifiedCrl::from_der(&crafted, &fx.signer) {
        Ok(crl) => assert!(crl.is_empty()),
        Err(e) => eprintln!("empty revokedCertificates SEQUENCE refused: {e}"),
    }
}
