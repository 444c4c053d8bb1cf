//! Immutable snapshots (issue 12): a published snapshot never changes; a
//! CRL prepared against one snapshot is checked again at commit against
//! the state current by then, so ingests prepared side by side cannot undo
//! each other and a signer admitted meanwhile is used.
#![allow(clippy::unwrap_used)]

use std::time::SystemTime;

use pki_fixtures::{generate, CrlSpec, Pki, PkiOptions, Reason};
use vigil_core::{CertificateDer, CrlLoad, Status, TrustStore, Usage, Verifier, VerifyOptions};

fn der(bytes: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from(bytes.to_vec())
}

fn setup() -> (Pki, Verifier) {
    let pki = generate(&PkiOptions::default()).unwrap();
    let mut trust = TrustStore::new();
    trust.add(der(&pki.root.cert.der)).unwrap();
    let mut verifier = Verifier::new(trust);
    verifier.add_crl(&pki.root_crl.der).unwrap();
    (pki, verifier)
}

fn crl(pki: &Pki, number: u64, revoke_client: bool) -> Vec<u8> {
    let mut spec = CrlSpec::new(&pki.options);
    spec.number = number;
    if revoke_client {
        spec = spec.revoke(
            &pki.client,
            pki.options.now - time::Duration::hours(2),
            Reason::KeyCompromise,
        );
    }
    pki.intermediate.crl(&spec).unwrap().der
}

fn client_status(
    pki: &Pki,
    verify: impl Fn(&[CertificateDer<'static>], &VerifyOptions, SystemTime) -> Status,
) -> Status {
    let chain = [der(&pki.client.der), der(&pki.intermediate.cert.der)];
    let options = VerifyOptions::new(Usage::Client);
    verify(&chain, &options, pki.options.now.into())
}

#[test]
fn a_published_snapshot_never_changes() {
    let (pki, mut verifier) = setup();
    verifier
        .add_ca_certificate(&der(&pki.intermediate.cert.der))
        .unwrap();
    verifier.add_crl(&crl(&pki, 10, false)).unwrap();
    let before = verifier.snapshot();
    verifier.add_crl(&crl(&pki, 11, true)).unwrap();
    let after = verifier.snapshot();
    assert_ne!(before.generation(), after.generation());
    let by = |snap: &vigil_core::Snapshot| {
        client_status(&pki, |c, o, at| snap.verify_uncached(c, o, at).status)
    };
    assert_eq!(by(&before), Status::Good);
    assert_eq!(by(&after), Status::Revoked);
    // The revocation memory is shared by every snapshot on purpose: once a
    // verified source said "revoked", no snapshot says otherwise, old ones
    // included ("revoked stays revoked").
    assert_eq!(by(&before), Status::Revoked);
    assert_eq!(
        client_status(&pki, |c, o, at| before.verify(c, o, at).status),
        Status::Revoked
    );
}

#[test]
fn two_ingests_prepared_side_by_side_cannot_undo_each_other() {
    let (pki, mut verifier) = setup();
    verifier
        .add_ca_certificate(&der(&pki.intermediate.cert.der))
        .unwrap();
    // Number 10 revokes the client; 11 and 12 no longer list it.
    verifier.add_crl(&crl(&pki, 10, true)).unwrap();
    let base = verifier.snapshot();
    let older = base.prepare_crl(&crl(&pki, 11, false)).unwrap();
    let newer = base.prepare_crl(&crl(&pki, 12, false)).unwrap();
    assert_eq!(verifier.commit_crl(newer), CrlLoad::Verified { entries: 0 });
    // Prepared against the same snapshot, but committed after a newer
    // issue: the series order is decided against what is loaded now
    // (RFC 5280 §5.2.3).
    match verifier.commit_crl(older) {
        CrlLoad::Rollback { stored, offered } => {
            assert_eq!(stored.as_deref(), Some(&[12u8][..]));
            assert_eq!(offered.as_deref(), Some(&[11u8][..]));
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    // The revocation number 12 dropped is remembered, not lost.
    assert_eq!(
        client_status(&pki, |c, o, at| verifier.verify(c, o, at).status),
        Status::Revoked
    );
}

#[test]
fn a_signer_admitted_after_preparation_verifies_the_crl_at_commit() {
    let (pki, mut verifier) = setup();
    // Nobody known can verify the intermediate's CRL yet.
    let prepared = verifier
        .snapshot()
        .prepare_crl(&crl(&pki, 10, true))
        .unwrap();
    assert_eq!(prepared.signature_check(), None);
    verifier
        .add_ca_certificate(&der(&pki.intermediate.cert.der))
        .unwrap();
    assert_eq!(
        verifier.commit_crl(prepared),
        CrlLoad::Verified { entries: 1 }
    );
    assert_eq!(
        client_status(&pki, |c, o, at| verifier.verify(c, o, at).status),
        Status::Revoked
    );
}
