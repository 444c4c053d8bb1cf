//! The refresh scheduler (issue 11, item 5) against real fixture responders
//! on 127.0.0.1 and a real sled store: restored sources it cannot refresh
//! back off instead of spinning, slow endpoints do not hold up the others,
//! a new source wakes a scheduler that started with none, aborting stops it
//! promptly, and the source cap evicts the least recently used source.
#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pki_fixtures::responder::{
    start_with_fresh_pki, Behaviour, Responder, ResponderOptions, Target,
};
use pki_fixtures::{Cert, Pki, PkiOptions};
use vigil_core::schedule::RefreshPolicy;
use vigil_core::{
    CertificateDer, Methods, ReasonCode, RevocationPolicy, Usage, VerifierConfig, VerifyOptions,
};
use vigil_runtime::{
    Engine, EngineConfig, FetchConfig, SledStore, SourceKind, SourceRecord, Store, SystemClock,
};

fn fetch_config(timeout: Duration) -> FetchConfig {
    FetchConfig::default()
        .with_connect_timeout(Duration::from_secs(1))
        .with_total_timeout(timeout)
        .with_retries(0)
}

/// Everything due every second; retries after 1 s, then 2 s.
fn fast_policy() -> RefreshPolicy {
    RefreshPolicy::default()
        .with_fraction(0.5)
        .with_min_interval_secs(1)
        .with_max_interval_secs(1)
        .with_retry_base_secs(1)
        .with_retry_max_secs(2)
}

fn der(cert: &Cert) -> CertificateDer<'static> {
    CertificateDer::from(cert.der.clone())
}

fn client_chain(pki: &Pki) -> Vec<CertificateDer<'static>> {
    vec![der(&pki.client), der(&pki.intermediate.cert)]
}

fn require() -> VerifyOptions {
    VerifyOptions::new(Usage::Client).with_policy(RevocationPolicy::Require)
}

fn open(anchors: &[&Pki], store: Arc<dyn Store>, config: EngineConfig) -> Engine {
    Engine::open(
        anchors.iter().map(|p| der(&p.root.cert)).collect(),
        store,
        config,
        Arc::new(SystemClock),
    )
    .unwrap()
}

async fn responder() -> (Responder, Pki) {
    start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap()
}

/// CPU time (user + system) of the calling thread, from
/// /proc/thread-self/stat (fields 14 and 15, in clock ticks of 10 ms).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The regression of "restart spin": OCSP sources restored from the store
/// have no certificate/issuer pair to build a request from. The scheduler
/// must retry them with backoff (yielding), not loop on them. Runs on a
/// runtime of one thread of its own, whose CPU time is measured; the old
/// scheduler never yielded, so the test waits on it from outside.
#[test]
fn restored_ocsp_only_sources_do_not_spin_and_abort_is_prompt() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(async {
            let (responder, pki) = responder().await;
            let dir = tempfile::tempdir().unwrap();
            let config = EngineConfig::default()
                .with_fetch(fetch_config(Duration::from_secs(2)))
                .with_verifier(VerifierConfig::default().with_methods(Methods::OcspOnly))
                .with_refresh(fast_policy());
            {
                let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
                let engine = open(&[&pki], Arc::clone(&store), config.clone());
                let v = engine.verify(&client_chain(&pki), &require()).await;
                assert_eq!(v.reason, ReasonCode::Ok, "{v:?}");
                assert!(engine.sources().iter().all(|s| s.kind == "ocsp"));
                store.flush().unwrap();
            }
            // Restart: every restored source is due within a second.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
            let engine = open(&[&pki], store, config);
            assert_eq!(engine.sources().len(), 2);
            let requests_before = responder.counts().ocsp();
            let cpu_before = thread_cpu();
            let scheduler = engine.spawn_scheduler();
            let mut attempts = std::collections::BTreeSet::new();
            let watch = Instant::now();
            while watch.elapsed() < Duration::from_secs(4) {
                for s in engine.sources() {
                    attempts.insert((s.url.clone(), s.last_fetch));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let cpu = thread_cpu() - cpu_before;
            let sources = engine.sources();
            let aborted = Instant::now();
            scheduler.abort();
            let joined = tokio::time::timeout(Duration::from_secs(2), scheduler).await;
            let abort_took = aborted.elapsed();
            // A verification naming them supplies the pair, backoff or not:
            // they are refreshed and recover.
            let v = engine.verify(&client_chain(&pki), &require()).await;
            assert_eq!(v.reason, ReasonCode::Ok, "{v:?}");
            assert!(responder.counts().ocsp() > requests_before);
            for s in engine.sources() {
                assert_eq!(s.last_error, None, "{s:?}");
            }
            responder.shutdown().await;
            (
                cpu,
                attempts.len(),
                sources,
                joined.map(|r| r.is_err_and(|e| e.is_cancelled())),
                abort_took,
                requests_before,
            )
        });
        let _ = done_tx.send(result);
    });
    let (cpu, attempts, sources, joined, abort_took, _) = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the test thread failed (see its panic above) or the scheduler never yielded");
    assert!(cpu < Duration::from_millis(400), "{cpu:?} of CPU in 4 s");
    // Per source: the stored attempt, then retries after ~1 s and ~2 s.
    assert!(
        (2..=2 * 4).contains(&attempts),
        "{attempts} distinct attempts"
    );
    for s in &sources {
        let error = s.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("no certificate known"), "{s:?}");
        assert!(s.next_attempt.is_some(), "{s:?}");
    }
    assert_eq!(joined, Ok(true), "the aborted scheduler did not end");
    assert!(abort_took < Duration::from_secs(1), "{abort_took:?}");
}

/// A responder that takes 10 s per answer does not hold up another's
/// refreshes: the scheduler runs refreshes concurrently. Aborting it while
/// the slow refreshes hang stops it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_responder_does_not_delay_other_sources() {
    let (slow, slow_pki) = responder().await;
    let (fast, fast_pki) = responder().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = open(
        &[&slow_pki, &fast_pki],
        store,
        EngineConfig::default()
            .with_fetch(fetch_config(Duration::from_secs(15)))
            .with_refresh(fast_policy()),
    );
    for pki in [&slow_pki, &fast_pki] {
        let v = engine.verify(&client_chain(pki), &require()).await;
        assert_eq!(v.reason, ReasonCode::Ok, "{v:?}");
    }
    assert_eq!(engine.sources().len(), 8);
    slow.set_behaviour(Target::All, Behaviour::Slow(Duration::from_secs(10)))
        .unwrap();
    let slow_before = slow.counts();
    let fast_before = fast.counts();
    let scheduler = engine.spawn_scheduler();
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let slow_after = slow.counts();
    let fast_after = fast.counts();
    // The slow responder got its requests (and is still sitting on them)...
    assert!(slow_after.crl > slow_before.crl, "{slow_after:?}");
    // ...while the fast one was refreshed every second or so.
    let fast_crl = fast_after.crl - fast_before.crl;
    let fast_ocsp = fast_after.ocsp() - fast_before.ocsp();
    assert!(fast_crl >= 2 * 2, "{fast_crl} CRL refreshes in 2.6 s");
    assert!(fast_ocsp >= 2 * 2, "{fast_ocsp} OCSP refreshes in 2.6 s");
    let fast_errors: Vec<_> = engine
        .sources()
        .into_iter()
        .filter(|s| s.url.contains(&fast.local_addr().to_string()))
        .filter_map(|s| s.last_error)
        .collect();
    assert!(fast_errors.is_empty(), "{fast_errors:?}");

    let aborted = Instant::now();
    scheduler.abort();
    let joined = tokio::time::timeout(Duration::from_secs(3), scheduler).await;
    assert!(
        matches!(&joined, Ok(Err(e)) if e.is_cancelled()),
        "{joined:?}"
    );
    assert!(aborted.elapsed() < Duration::from_secs(1));
    slow.set_behaviour(Target::All, Behaviour::Normal).unwrap();
    slow.shutdown().await;
    fast.shutdown().await;
}

/// A scheduler started before any source exists is woken by the first
/// verification's sources and keeps to the policy (1 s), instead of
/// sleeping its 60 s idle wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_source_wakes_a_scheduler_that_started_empty() {
    let (responder, pki) = responder().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = open(
        &[&pki],
        store,
        EngineConfig::default()
            .with_fetch(fetch_config(Duration::from_secs(2)))
            // Only max_interval is set below the default min_interval: it
            // must be honoured.
            .with_refresh(RefreshPolicy::default().with_max_interval_secs(1)),
    );
    let scheduler = engine.spawn_scheduler();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = engine.verify(&client_chain(&pki), &require()).await;
    assert_eq!(v.reason, ReasonCode::Ok, "{v:?}");
    let verified = Instant::now();
    let after_verify = responder.counts();
    let refreshed = loop {
        let now = responder.counts();
        if now.crl > after_verify.crl && now.ocsp() > after_verify.ocsp() {
            break Some(verified.elapsed());
        }
        if verified.elapsed() > Duration::from_secs(5) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    scheduler.abort();
    let took = refreshed.expect("no scheduled refresh within 5 s of the first sources");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    responder.shutdown().await;
}

/// With a cap of 2 sources, a source restored from the store that no
/// verification has named is evicted first when new ones arrive: from
/// memory and from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_cap_evicts_the_least_recently_used_source() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let old = "http://127.0.0.1:9/old.crl";
    store
        .put(&SourceRecord::new(
            old,
            SourceKind::Crl,
            vec![0x30, 0x00],
            1,
        ))
        .unwrap();
    let (_responder, pki) = responder().await;
    let engine = open(
        &[&pki],
        Arc::clone(&store),
        EngineConfig::default()
            .with_fetch(fetch_config(Duration::from_secs(1)))
            .with_max_sources(2),
    );
    assert_eq!(engine.sources().len(), 1);
    // Port 9 (discard) is closed on loopback: each refresh fails at once,
    // and adds its source.
    let a = "http://127.0.0.1:9/a.crl";
    let b = "http://127.0.0.1:9/b.crl";
    engine.refresh_crl(a).await;
    let urls = |e: &Engine| e.sources().into_iter().map(|s| s.url).collect::<Vec<_>>();
    assert_eq!(urls(&engine), [a, old]);
    assert_eq!(engine.sources_evicted(), 0);
    engine.refresh_crl(b).await;
    assert_eq!(urls(&engine), [a, b]);
    assert_eq!(engine.sources_evicted(), 1);
    // The store forgets it too (in the background).
    let started = Instant::now();
    while store.get(old).unwrap().is_some() && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(store.get(old).unwrap().is_none());
    // The next one evicts the least recently added of the two (ties go in
    // key order).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let c = "http://127.0.0.1:9/c.crl";
    engine.refresh_crl(c).await;
    assert_eq!(urls(&engine), [b, c]);
    assert_eq!(engine.sources_evicted(), 2);
}

/// `refresh_concurrency` bounds the scheduler's refreshes in flight: six
/// due sources on a slow endpoint, a bound of two, never more than two
/// requests at once (the fetcher's own per-host bound is four).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_refreshes_in_flight_are_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    #[derive(Clone, Default)]
    struct Load {
        now: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
        hits: Arc<AtomicUsize>,
    }
    let load = Load::default();
    let router = axum::Router::new()
        .route(
            "/{name}",
            axum::routing::get(
                |axum::extract::State(l): axum::extract::State<Load>| async move {
                    l.hits.fetch_add(1, Ordering::SeqCst);
                    let now = l.now.fetch_add(1, Ordering::SeqCst) + 1;
                    l.peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    l.now.fetch_sub(1, Ordering::SeqCst);
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                },
            ),
        )
        .with_state(load.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let (_responder, pki) = responder().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = open(
        &[&pki],
        store,
        EngineConfig::default()
            .with_fetch(fetch_config(Duration::from_secs(5)))
            .with_refresh(fast_policy())
            .with_refresh_concurrency(2),
    );
    // Six sources, each failed once (sequentially: one request at a time).
    for i in 0..6 {
        engine.refresh_crl(&format!("http://{addr}/{i}.crl")).await;
    }
    assert_eq!(load.peak.load(Ordering::SeqCst), 1);
    let scheduler = engine.spawn_scheduler();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    scheduler.abort();
    // All six were retried...
    assert!(load.hits.load(Ordering::SeqCst) >= 6 + 6);
    // ...two at a time.
    assert_eq!(load.peak.load(Ordering::SeqCst), 2);
}
