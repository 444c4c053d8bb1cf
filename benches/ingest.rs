//! Online revocation at real sizes (issue 3): ingest of a 1,000,000-entry
//! CRL over HTTP from 127.0.0.1 (fetch, verify, index, persist in sled),
//! restart with it in the store, and OCSP response verification against
//! the raw signature check it contains. Baseline: `openssl crl -noout` on
//! the same file in the same run.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use pki_fixtures::responder::{start_with_fresh_pki, ResponderOptions};
use pki_fixtures::{CrlSpec, PkiOptions};
use vigil_core::revocation::{build_request, CertIdHash, ParsedOcsp};
use vigil_core::CertificateDer;
use vigil_runtime::{Engine, EngineConfig, FetchConfig, Refreshed, SledStore, Store, SystemClock};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak-RSS mark (Linux: `echo 5 > /proc/self/clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn config() -> EngineConfig {
    EngineConfig::default().with_fetch(
        FetchConfig::default()
            .with_use_env_proxy(false)
            .with_retries(0)
            .with_total_timeout(Duration::from_secs(60)),
    )
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
    let mut spec = CrlSpec::synthetic(&pki.options, 1_000_000);
    spec.number = 7;
    let crl = Arc::new(pki.intermediate.crl(&spec).unwrap().der);
    drop(spec);
    eprintln!("1M-entry CRL: {:.1} MB", crl.len() as f64 / 1e6);

    // A plain HTTP server on 127.0.0.1 serving the CRL (no ETag: every
    // fetch transfers the body).
    let served = Arc::clone(&crl);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/big.crl", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/big.crl",
        axum::routing::get(move || {
            let served = Arc::clone(&served);
            async move { served.as_ref().clone() }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });

    let anchors = vec![
        CertificateDer::from(pki.root.cert.der.clone()),
        // The intermediate as an anchor too, so the CRL is verified as it
        // is ingested (in a chain it would be verified on first use).
        CertificateDer::from(pki.intermediate.cert.der.clone()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let open = |dir: &std::path::Path| {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
        Engine::open(anchors.clone(), store, config(), Arc::new(SystemClock)).unwrap()
    };

    // One measured ingest with its peak memory.
    let engine = open(dir.path());
    let peak_resettable = reset_peak();
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    assert_eq!(rt.block_on(engine.refresh_crl(&url)), Refreshed::Updated);
    let took = started.elapsed();
    let peak = status_kib("VmHWM:");
    eprintln!(
        "ingest (fetch + verify + index + persist) of the 1M CRL: {took:?}; peak RSS {} above the {} MiB before{}",
        format_args!("+{:.0} MiB", peak.saturating_sub(rss_before) as f64 / 1024.0),
        rss_before / 1024,
        if peak_resettable { "" } else { " (peak not resettable: upper bound)" }
    );
    drop(engine);

    // Restart with the CRL in the store.
    let started = Instant::now();
    let engine = open(dir.path());
    eprintln!(
        "restart with the 1M CRL in the store, re-verified and indexed: {:?}",
        started.elapsed()
    );
    drop(engine);

    // openssl on the same file.
    let file = dir.path().join("big.der");
    std::fs::write(&file, crl.as_ref()).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "/usr/bin/time -f '%M' openssl crl -inform DER -noout -in {} 2>&1 >/dev/null || openssl crl -inform DER -noout -in {}",
            file.display(),
            file.display()
        ))
        .output();
    if let Ok(out) = out {
        eprintln!(
            "openssl crl -noout on the same file: {:?} (max RSS {} KiB)",
            started.elapsed(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }

    let mut g = c.benchmark_group("online");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let ingest_dir = tempfile::tempdir().unwrap();
    let engine = open(ingest_dir.path());
    g.bench_function("ingest_1m_crl_over_http", |b| {
        b.iter(|| rt.block_on(engine.refresh_crl(&url)))
    });
    g.bench_function("restart_with_1m_crl", |b| b.iter(|| drop(open(dir.path()))));
    g.finish();
    drop(engine);

    // OCSP: verification of one response vs the signature check inside it.
    let (responder, opki) = rt
        .block_on(start_with_fresh_pki(
            PkiOptions::default(),
            ResponderOptions::default(),
        ))
        .unwrap();
    let request = build_request(
        &opki.client.der,
        &opki.intermediate.cert.der,
        CertIdHash::Sha1,
        None,
    )
    .unwrap();
    let fetcher = vigil_runtime::Fetcher::new(config().fetch).unwrap();
    let response = rt
        .block_on(fetcher.fetch_ocsp(&responder.ocsp_url("intermediate"), &request))
        .unwrap()
        .body
        .to_vec();
    let issuer = opki.intermediate.cert.der.clone();
    let spki = x509_spki_key(&issuer);
    let now = SystemTime::now();
    let mut g = c.benchmark_group("ocsp");
    g.bench_function("vigil_parse_and_verify_response", |b| {
        b.iter(|| {
            let parsed = ParsedOcsp::from_der(black_box(&response)).unwrap();
            assert_eq!(parsed.verify_for_issuer(&issuer, now).unwrap().len(), 1);
        })
    });
    let parsed = ParsedOcsp::from_der(&response).unwrap();
    let (tbs, _, sig) = parsed.signed_parts();
    g.bench_function("raw_ecdsa_p256_signature_check", |b| {
        b.iter(|| {
            webpki::ring::ECDSA_P256_SHA256
                .verify_signature(black_box(&spki), tbs, sig)
                .unwrap()
        })
    });
    g.finish();
}

/// The subjectPublicKey bits of a certificate (for the raw baseline).
fn x509_spki_key(cert: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(cert).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
