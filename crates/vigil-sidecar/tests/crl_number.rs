//! RFC 5280 §5.2.3: a CRL whose cRLNumber is missing or critical is refused
//! when the engine refreshes it from the fixture responder on 127.0.0.1, and
//! the refusal is what `GET /v1/revocation` reports as the source's
//! `last_error` (served by the real router on a real listener). The store
//! never keeps the refused CRL.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use pki_fixtures::responder::{start_with_fresh_pki, Behaviour, ResponderOptions, Target};
use pki_fixtures::{CrlNumberFault, PkiOptions};
use serde_json::Value;
use tokio::net::TcpListener;
use vigil_core::CertificateDer;
use vigil_runtime::{
    Engine, EngineConfig, FetchConfig, MemoryStore, Refreshed, Store, SystemClock,
};
use vigil_sidecar::{app, SidecarConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_with_a_missing_or_critical_crl_number_is_the_sources_last_error() {
    let (responder, pki) = start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = EngineConfig::default().with_fetch(
        FetchConfig::default()
            .with_use_env_proxy(false)
            .with_retries(0),
    );
    let engine = Engine::open(
        vec![CertificateDer::from(pki.root.cert.der.clone())],
        Arc::clone(&store),
        config,
        Arc::new(SystemClock),
    )
    .unwrap();
    engine
        .add_ca_certificate(&CertificateDer::from(pki.intermediate.cert.der.clone()))
        .unwrap();
    let (router, _sidecar) = app(engine.clone(), Arc::clone(&store), SidecarConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let url = responder.crl_url("intermediate");
    for (fault, expected) in [
        (CrlNumberFault::Missing, "no cRLNumber"),
        (CrlNumberFault::Critical, "cRLNumber extension is critical"),
    ] {
        responder
            .set_behaviour(Target::Crl, Behaviour::NonconformingCrl(fault))
            .unwrap();
        match engine.refresh_crl(&url).await {
            Refreshed::Failed(why) => assert!(why.contains(expected), "{fault:?}: {why}"),
            other => panic!("{fault:?}: expected a refusal, got {other:?}"),
        }
        let body = http
            .get(format!("{base}/v1/revocation"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let listing: Value = serde_json::from_str(&body).unwrap();
        let source = listing["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["url"] == url.as_str())
            .unwrap_or_else(|| panic!("{url} not listed: {listing}"));
        let last_error = source["last_error"].as_str().unwrap_or_default();
        assert!(last_error.contains(expected), "{fault:?}: {source}");
        assert!(store.get(&url).unwrap().is_none(), "{fault:?}: stored");
    }

    // The same responder serving a conforming CRL again: accepted, error cleared.
    responder
        .set_behaviour(Target::Crl, Behaviour::Normal)
        .unwrap();
    assert_eq!(engine.refresh_crl(&url).await, Refreshed::Updated);
    let state = engine.sources().into_iter().find(|s| s.url == url).unwrap();
    assert_eq!(state.last_error, None);
}
