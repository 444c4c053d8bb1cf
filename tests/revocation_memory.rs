//! CRL series and "revoked stays revoked" (issue 3, items 2 and 4) through
//! the library: an older issue of a CRL is refused, a newer one replaces
//! it, and a revocation once verified outlives the data that said so
//! (except a certificateHold, which may be lifted).

use std::time::SystemTime;

use pki_fixtures::{generate_shared, Cert, CrlSpec, Pki, PkiOptions, Reason};
use time::{macros::datetime, Duration};
use vigil_core::{
    CertStatus, CrlLoad, ReasonCode, Source, TrustStore, Usage, Verifier, VerifyOptions,
};

fn pki() -> &'static Pki {
    generate_shared(&PkiOptions {
        now: datetime!(2026-03-01 12:00:00 UTC),
        ..PkiOptions::default()
    })
    .unwrap()
}

fn verifier(pki: &Pki) -> Verifier {
    let mut trust = TrustStore::new();
    trust.add(pki.root.cert.certificate_der()).unwrap();
    let mut v = Verifier::new(trust);
    v.add_ca_certificate(&pki.intermediate.cert.certificate_der())
        .unwrap();
    assert!(matches!(
        v.add_crl(&pki.root_crl.der).unwrap(),
        CrlLoad::Verified { .. }
    ));
    v
}

/// An intermediate CRL with this number, revoking `revoked` with `reason`.
fn crl(pki: &Pki, number: u64, revoked: &[(&Cert, Reason)]) -> Vec<u8> {
    let mut spec = CrlSpec::new(&pki.options);
    spec.number = number;
    spec.this_update = pki.options.now - Duration::hours(2) + Duration::minutes(number as i64);
    for (cert, reason) in revoked {
        spec = spec.revoke(cert, pki.options.now - Duration::hours(3), *reason);
    }
    pki.intermediate.crl(&spec).unwrap().der
}

fn client_verdict(v: &Verifier, pki: &Pki, at: SystemTime) -> vigil_core::Verdict {
    let chain = [
        pki.client.certificate_der(),
        pki.intermediate.cert.certificate_der(),
    ];
    let options = VerifyOptions::new(Usage::Client);
    let uncached = v.verify_uncached(&chain, &options, at);
    assert_eq!(*v.verify(&chain, &options, at), uncached);
    uncached
}

fn now(pki: &Pki) -> SystemTime {
    pki.options.now.into()
}

#[test]
fn an_older_crl_of_the_same_series_is_refused() {
    let pki = pki();
    let mut v = verifier(pki);
    assert!(matches!(
        v.add_crl(&crl(pki, 5, &[])).unwrap(),
        CrlLoad::Verified { entries: 0 }
    ));
    // A replay of number 3 that would revoke the client is refused ...
    match v
        .add_crl(&crl(pki, 3, &[(&pki.client, Reason::KeyCompromise)]))
        .unwrap()
    {
        CrlLoad::Rollback { stored, offered } => {
            assert_eq!((stored, offered), (Some(vec![5]), Some(vec![3])));
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert_eq!(
        v.add_crl(&crl(pki, 5, &[])).unwrap(),
        CrlLoad::Unchanged { entries: 0 }
    );
    // ... so number 5 still decides.
    let verdict = client_verdict(&v, pki, now(pki));
    assert_eq!(verdict.reason, ReasonCode::Ok);
}

#[test]
fn a_revocation_left_out_of_a_later_crl_stays() {
    let pki = pki();
    let mut v = verifier(pki);
    v.add_crl(&crl(pki, 1, &[(&pki.client, Reason::KeyCompromise)]))
        .unwrap();
    assert_eq!(
        client_verdict(&v, pki, now(pki)).reason,
        ReasonCode::Revoked
    );
    // Number 2 no longer lists the client: it is still revoked, from memory.
    assert!(matches!(
        v.add_crl(&crl(pki, 2, &[])).unwrap(),
        CrlLoad::Verified { entries: 0 }
    ));
    let verdict = client_verdict(&v, pki, now(pki));
    assert_eq!(verdict.reason, ReasonCode::Revoked);
    let leaf = &verdict.revocation[0];
    assert_eq!(
        (leaf.status, leaf.source),
        (CertStatus::Revoked, Source::Crl)
    );
    assert_eq!(leaf.reason.as_deref(), Some("keyCompromise"));

    // The fact survives a restart through revocation_facts / remember.
    let facts = v.revocation_facts();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].serial, pki.client.serial);
    assert_eq!(
        facts[0].expires_at,
        Some(pki.client.not_after.unix_timestamp())
    );
    let mut restarted = verifier(pki);
    restarted.add_crl(&crl(pki, 2, &[])).unwrap();
    assert_eq!(
        client_verdict(&restarted, pki, now(pki)).reason,
        ReasonCode::Ok
    );
    for fact in facts {
        restarted.remember(fact);
    }
    assert_eq!(
        client_verdict(&restarted, pki, now(pki)).reason,
        ReasonCode::Revoked
    );

    // Once the certificate has expired, the fact may be dropped.
    let after_expiry: SystemTime = (pki.client.not_after + Duration::days(1)).into();
    assert_eq!(restarted.forget_expired(after_expiry), 1);
    assert!(restarted.revocation_facts().is_empty());
}

#[test]
fn a_revocation_outlives_its_stale_crl() {
    let pki = pki();
    let mut v = verifier(pki);
    v.add_crl(&crl(pki, 1, &[(&pki.client, Reason::KeyCompromise)]))
        .unwrap();
    // Two weeks on, the CRL (nextUpdate +7 days) and the root CRL are stale.
    let later: SystemTime = (pki.options.now + Duration::days(14)).into();
    let verdict = client_verdict(&v, pki, later);
    assert_eq!(verdict.reason, ReasonCode::Revoked);
}

#[test]
fn a_lifted_hold_is_not_remembered() {
    let pki = pki();
    let mut v = verifier(pki);
    v.add_crl(&crl(pki, 1, &[(&pki.client, Reason::CertificateHold)]))
        .unwrap();
    let verdict = client_verdict(&v, pki, now(pki));
    assert_eq!(verdict.reason, ReasonCode::Revoked);
    assert_eq!(
        verdict.revocation[0].reason.as_deref(),
        Some("certificateHold")
    );
    v.add_crl(&crl(pki, 2, &[])).unwrap();
    assert_eq!(client_verdict(&v, pki, now(pki)).reason, ReasonCode::Ok);
    assert!(v.revocation_facts().is_empty());
}
