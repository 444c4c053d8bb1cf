//! The engine end to end: revocation data fetched over real HTTP from the
//! fixture responder on 127.0.0.1, verified by the core, persisted in a real
//! sled store, refreshed, and surviving restarts (issue 3).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pki_fixtures::responder::{
    start_with_fresh_pki, Behaviour, Responder, ResponderOptions, Target,
};
use pki_fixtures::{Cert, Pki, PkiOptions, Reason};
use vigil_core::{CertificateDer, ReasonCode, RevocationPolicy, Source, Usage, VerifyOptions};
use vigil_runtime::{Clock, Engine, EngineConfig, FetchConfig, Refreshed, SledStore, Store};

/// A clock the test moves.
#[derive(Clone)]
struct TestClock(Arc<Mutex<SystemTime>>);

impl TestClock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(SystemTime::now())))
    }
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

fn config() -> EngineConfig {
    EngineConfig::default().with_fetch(
        FetchConfig::default()
            .with_connect_timeout(Duration::from_secs(2))
            .with_total_timeout(Duration::from_secs(3))
            .with_retries(0)
            .with_use_env_proxy(false),
    )
}

fn der(cert: &Cert) -> CertificateDer<'static> {
    CertificateDer::from(cert.der.clone())
}

fn chain(pki: &Pki, leaf: &Cert) -> Vec<CertificateDer<'static>> {
    vec![der(leaf), der(&pki.intermediate.cert)]
}

fn options(policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions::new(Usage::Client).with_policy(policy)
}

fn open(pki: &Pki, dir: &std::path::Path, clock: &TestClock) -> Engine {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    Engine::open(
        vec![der(&pki.root.cert)],
        store,
        config(),
        Arc::new(clock.clone()),
    )
    .unwrap()
}

async fn setup() -> (Responder, Pki) {
    start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_verifies_and_follows_a_revocation() {
    let (responder, pki) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let engine = open(&pki, dir.path(), &clock);

    let verdict = engine
        .verify(
            &chain(&pki, &pki.client),
            &options(RevocationPolicy::Require),
        )
        .await;
    assert_eq!(verdict.reason, ReasonCode::Ok, "{}", verdict.detail);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
    let kinds: Vec<&str> = engine.sources().iter().map(|s| s.kind).collect();
    assert!(
        kinds.contains(&"crl") && kinds.contains(&"ocsp"),
        "{kinds:?}"
    );

    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    let refreshed = engine.refresh_all().await;
    assert!(
        refreshed
            .iter()
            .all(|(_, r)| !matches!(r, Refreshed::Failed(_))),
        "{refreshed:?}"
    );
    let verdict = engine.verify_cached(
        &chain(&pki, &pki.client),
        &options(RevocationPolicy::Require),
    );
    assert_eq!(verdict.reason, ReasonCode::Revoked);
    assert_eq!(
        verdict.revocation[0].reason.as_deref(),
        Some("keyCompromise")
    );
    // Another client of the same CA is untouched.
    let other = engine
        .verify(&chain(&pki, &pki.server), &VerifyOptions::default())
        .await;
    assert_eq!(other.reason, ReasonCode::Ok, "{}", other.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_crl_costs_a_304_and_no_reparse() {
    let (responder, pki) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path(), &TestClock::new());
    let url = responder.crl_url("intermediate");
    assert_eq!(engine.refresh_crl(&url).await, Refreshed::Updated);
    assert_eq!(engine.refresh_crl(&url).await, Refreshed::NotModified);
    assert_eq!(responder.counts_for("intermediate").crl_not_modified, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_answers_from_the_store_until_next_update() {
    let (responder, pki) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    {
        let engine = open(&pki, dir.path(), &clock);
        let v = engine
            .verify(
                &chain(&pki, &pki.client),
                &options(RevocationPolicy::Require),
            )
            .await;
        assert_eq!(v.reason, ReasonCode::Ok);
    }
    responder
        .set_behaviour(Target::All, Behaviour::Down)
        .unwrap();
    let engine = open(&pki, dir.path(), &clock);
    let v = engine
        .verify(
            &chain(&pki, &pki.client),
            &options(RevocationPolicy::Require),
        )
        .await;
    assert_eq!(v.reason, ReasonCode::Ok, "{}", v.detail);
    // Past the OCSP answer (1 h) and the fixture CRLs (7 days): unknown under require,
    // accepted under prefer.
    clock.advance(Duration::from_secs(8 * 86400));
    let v = engine
        .verify(
            &chain(&pki, &pki.client),
            &options(RevocationPolicy::Require),
        )
        .await;
    assert!(
        v.reason.as_str().starts_with("revocation_data"),
        "{}",
        v.reason
    );
    let v = engine
        .verify(
            &chain(&pki, &pki.client),
            &options(RevocationPolicy::Prefer),
        )
        .await;
    assert_eq!(v.reason, ReasonCode::RevocationUnknownSoftFail);
    assert!(engine.sources().iter().any(|s| s.last_error.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_stays_revoked_across_staleness_and_restart() {
    let (responder, pki) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    {
        let engine = open(&pki, dir.path(), &clock);
        let v = engine
            .verify(
                &chain(&pki, &pki.client),
                &options(RevocationPolicy::Require),
            )
            .await;
        assert_eq!(v.reason, ReasonCode::Revoked);
    }
    responder
        .set_behaviour(Target::All, Behaviour::Down)
        .unwrap();
    clock.advance(Duration::from_secs(3 * 86400));
    let engine = open(&pki, dir.path(), &clock);
    let v = engine
        .verify(
            &chain(&pki, &pki.client),
            &options(RevocationPolicy::Prefer),
        )
        .await;
    assert_eq!(v.reason, ReasonCode::Revoked, "{}", v.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_responders_fail_closed_under_require() {
    let (responder, pki) = setup().await;
    for (behaviour, expect_soft) in [
        (Behaviour::Status500, true),
        (Behaviour::Garbage, true),
        (Behaviour::Stale, true),
        (Behaviour::WrongSigner, false),
        (Behaviour::TryLater, true),
    ] {
        responder.set_behaviour(Target::All, behaviour).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let engine = open(&pki, dir.path(), &TestClock::new());
        let require = engine
            .verify(
                &chain(&pki, &pki.client),
                &options(RevocationPolicy::Require),
            )
            .await;
        assert!(!require.is_accepted(), "{behaviour:?}: {}", require.reason);
        let prefer = engine
            .verify(
                &chain(&pki, &pki.client),
                &options(RevocationPolicy::Prefer),
            )
            .await;
        assert_eq!(
            prefer.is_accepted(),
            expect_soft,
            "{behaviour:?}: {} {}",
            prefer.reason,
            prefer.detail
        );
    }
}

/// An older CRL served after a newer one is refused, and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_crl_served_after_a_newer_one_is_refused() {
    let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
    let crl = |number: u64, revoked: bool| {
        let mut spec = pki_fixtures::CrlSpec::new(&pki.options);
        spec.number = number;
        if revoked {
            spec = spec.revoke(&pki.client, pki.options.now, Reason::KeyCompromise);
        }
        pki.intermediate.crl(&spec).unwrap().der
    };
    let body = Arc::new(Mutex::new(crl(5, true)));
    let served = Arc::clone(&body);
    let app = axum::Router::new().route(
        "/crl",
        axum::routing::get(move || {
            let served = Arc::clone(&served);
            async move { served.lock().unwrap().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/crl", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let mut anchors = vec![der(&pki.root.cert)];
    anchors.push(der(&pki.intermediate.cert));
    let engine = Engine::open(
        anchors,
        Arc::clone(&store),
        config(),
        Arc::new(TestClock::new()),
    )
    .unwrap();
    assert_eq!(engine.refresh_crl(&url).await, Refreshed::Updated);
    // The replay: number 4, which no longer lists the client.
    *body.lock().unwrap() = crl(4, false);
    match engine.refresh_crl(&url).await {
        Refreshed::Failed(why) => assert!(why.contains("older"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let state = engine.sources().into_iter().find(|s| s.url == url).unwrap();
    assert_eq!(state.crl_number.as_deref(), Some(&[5][..]));
    assert!(state.last_error.unwrap().contains("older"));
    assert_eq!(store.get(&url).unwrap().unwrap().crl_number, Some(vec![5]));
}
