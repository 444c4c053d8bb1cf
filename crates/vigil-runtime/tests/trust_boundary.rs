//! Issue 11, the trust boundary, attacked the way an outsider would: real
//! responders on 127.0.0.1 (one of them the attacker's), a real sled store,
//! real restarts. Each test is an attack that worked before the fix.
//!
//! The attacker's PKI is a second fixture PKI: its intermediate carries
//! exactly the real intermediate's name (the fixtures name every PKI's CAs
//! alike) under another key, so it is the "self-made CA copying a real
//! intermediate's DN".
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use pki_fixtures::openssl::{IndexEntry, OcspQuery};
use pki_fixtures::responder::{start_with_fresh_pki, Responder, ResponderOptions};
use pki_fixtures::{Cert, Pki, PkiOptions, Reason};
use vigil_core::revocation::OcspError;
use vigil_core::{
    CertificateDer, Decision, ReasonCode, RevocationPolicy, Status, Usage, VerifyOptions,
};
use vigil_runtime::{Engine, EngineConfig, SledStore, Store, SystemClock};

fn der(cert: &Cert) -> CertificateDer<'static> {
    CertificateDer::from(cert.der.clone())
}

fn client(policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions::new(Usage::Client).with_policy(policy)
}

fn open(pki: &Pki, dir: &std::path::Path) -> Engine {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    Engine::open(
        vec![der(&pki.root.cert)],
        store,
        EngineConfig::default(),
        Arc::new(SystemClock),
    )
    .unwrap()
}

async fn two_pkis() -> ((Responder, Pki), (Responder, Pki)) {
    let real = start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap();
    let evil = start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap();
    // The premise: same issuer name, other key.
    let subject = |c: &Cert| {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, x) = X509Certificate::from_der(&c.der).unwrap();
        x.subject().as_raw().to_vec()
    };
    assert_eq!(
        subject(&real.1.intermediate.cert),
        subject(&evil.1.intermediate.cert)
    );
    assert_ne!(real.1.intermediate.cert.der, evil.1.intermediate.cert.der);
    (real, evil)
}

fn requests(r: &Responder) -> u64 {
    let c = r.counts();
    c.crl + c.ocsp_get + c.ocsp_post + c.not_found
}

/// Revocation poisoning: a CA copying the real intermediate's name lists a
/// victim's serial in CRL #n, drops it in CRL #n+1, through chains that
/// validate (the victim's own) with its certificates appended. The victim
/// stays good, also after a restart, and the attacker's responder hears
/// nothing: appended certificates are not on the validated path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_copying_a_real_intermediates_name_cannot_revoke_its_certificates() {
    let ((real, pki), (evil, evil_pki)) = two_pkis().await;
    let dir = tempfile::tempdir().unwrap();
    let victim = vec![der(&pki.client), der(&pki.intermediate.cert)];
    let attack: Vec<CertificateDer<'static>> = vec![
        der(&pki.client),
        der(&pki.intermediate.cert),
        der(&evil_pki.client),
        der(&evil_pki.intermediate.cert),
    ];
    {
        let engine = open(&pki, dir.path());
        // A CA certificate that does not chain to an anchor is no signer.
        assert!(!engine
            .add_ca_certificate(&der(&evil_pki.intermediate.cert))
            .unwrap());
        evil.revoke_serial("intermediate", &pki.client.serial, Reason::KeyCompromise)
            .unwrap();
        for policy in [RevocationPolicy::Require, RevocationPolicy::Prefer] {
            let v = engine.verify(&attack, &client(policy)).await;
            assert_eq!(v.status, Status::Good, "{}", v.to_json());
        }
        evil.unrevoke(&pki.client).unwrap();
        engine.refresh_all().await;
        let v = engine
            .verify(&attack, &client(RevocationPolicy::Require))
            .await;
        assert_eq!(v.status, Status::Good, "{}", v.to_json());
        // Even given directly, the attacker's CRLs say nothing about the
        // real intermediate's certificates.
        let evil_crl = evil.current_crl("intermediate").unwrap();
        let _ = engine.add_crl(&evil_crl.der);
        let v = engine
            .verify(&victim, &client(RevocationPolicy::Require))
            .await;
        assert_eq!(
            (v.verdict, v.status, v.reason),
            (Decision::Accepted, Status::Good, ReasonCode::Ok),
            "{}",
            v.to_json()
        );
        assert_eq!(requests(&evil), 0, "the attacker's responder was asked");
    }
    let engine = open(&pki, dir.path());
    let v = engine
        .verify(&victim, &client(RevocationPolicy::Require))
        .await;
    assert_eq!(v.status, Status::Good, "after restart: {}", v.to_json());
    assert!(requests(&real) > 0);
}

/// Fetch before validation (SSRF): a chain that leads to no anchor names
/// the attacker's responder; verifying it costs no request at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_chain_costs_no_network_io() {
    let ((_real, pki), (evil, evil_pki)) = two_pkis().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path());
    let untrusted = vec![der(&evil_pki.client), der(&evil_pki.intermediate.cert)];
    for policy in [RevocationPolicy::Require, RevocationPolicy::Prefer] {
        let v = engine.verify(&untrusted, &client(policy)).await;
        assert_eq!(v.verdict, Decision::Rejected, "{}", v.to_json());
        assert_eq!(v.status, Status::Invalid);
    }
    assert_eq!(requests(&evil), 0);
    assert!(engine.sources().is_empty(), "{:?}", engine.sources());
}

/// A hostile server staples an answer about another certificate (the
/// victim's CertID, signed by the look-alike CA): it is refused, held
/// nowhere, and the victim's verdict does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_staple_about_another_certificate_is_not_held() {
    let ((_real, pki), (_evil, evil_pki)) = two_pkis().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path());
    let victim = vec![der(&pki.client), der(&pki.intermediate.cert)];
    let before = engine
        .verify(&victim, &client(RevocationPolicy::Prefer))
        .await;
    assert_eq!(before.status, Status::Good, "{}", before.to_json());
    let forged = OcspQuery::from_issuer(&pki.intermediate.cert)
        .about(&pki.client.pem)
        .entry(IndexEntry::revoked(
            &pki.client,
            pki.options.now,
            Some(Reason::KeyCompromise),
        ))
        .signed_by(&evil_pki.intermediate.cert)
        .respond()
        .unwrap();
    // The hostile server's own chain validates; the answer is not about it.
    let hostile = vec![der(&pki.server), der(&pki.intermediate.cert)];
    let server = client(RevocationPolicy::Prefer).with_usage(Usage::Server);
    assert!(matches!(
        engine.add_stapled_ocsp(&forged, &hostile, &server),
        Err(OcspError::NotForPath { .. })
    ));
    // About the victim's own path, but signed by the look-alike: refused.
    assert!(engine
        .add_stapled_ocsp(&forged, &victim, &client(RevocationPolicy::Prefer))
        .is_err());
    // From a chain that validates to no anchor: refused before anything.
    let untrusted = vec![der(&evil_pki.client), der(&evil_pki.intermediate.cert)];
    assert!(matches!(
        engine.add_stapled_ocsp(&forged, &untrusted, &client(RevocationPolicy::Prefer)),
        Err(OcspError::NotForPath { .. })
    ));
    for policy in [RevocationPolicy::Require, RevocationPolicy::Prefer] {
        let v = engine.verify_cached(&victim, &client(policy));
        assert_eq!(
            (v.verdict, v.status),
            (Decision::Accepted, Status::Good),
            "{}",
            v.to_json()
        );
    }
}

/// "Revoked stays revoked" survives a crash right after the refresh that
/// taught it: the fact is durable before the CRL that no longer lists the
/// certificate replaces the one that did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_learned_by_a_refresh_is_durable_at_once() {
    let (real, pki) = start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let victim = vec![der(&pki.client), der(&pki.intermediate.cert)];
    {
        let engine = open(&pki, dir.path());
        let v = engine
            .verify(&victim, &client(RevocationPolicy::Require))
            .await;
        assert_eq!(v.status, Status::Good, "{}", v.to_json());
        real.revoke(&pki.client, Reason::KeyCompromise).unwrap();
        engine.refresh_all().await;
        // The CA takes it off its list (as after a hold was released, but
        // keyCompromise is never lifted): revoked stays revoked.
        real.unrevoke(&pki.client).unwrap();
        engine.refresh_all().await;
        let v = engine.verify_cached(&victim, &client(RevocationPolicy::Require));
        assert_eq!(v.status, Status::Revoked, "{}", v.to_json());
        // Dropped without any shutdown or flush of the engine: only what
        // was already durable survives.
        std::mem::forget(engine);
    }
    // sled keeps a lock on the directory while the forgotten handle lives:
    // copy the files, as a crash would leave them.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    let engine = open(&pki, copy.path());
    let v = engine
        .verify(&victim, &client(RevocationPolicy::Require))
        .await;
    assert_eq!(
        v.status,
        Status::Revoked,
        "after the crash: {}",
        v.to_json()
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
