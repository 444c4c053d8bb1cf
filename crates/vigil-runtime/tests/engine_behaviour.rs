//! The engine against a misbehaving fixture responder, over real HTTP on
//! 127.0.0.1 with a real sled store (issue 3, Tests section):
//!
//! * every misbehaviour of the responder, with the verdict it must give
//!   under `require` and under `prefer`, the exact reason code, and the
//!   error each affected source reports;
//! * one method misbehaving while the other is fine: the fine one answers;
//! * the refresh scheduler keeps data fresh before nextUpdate and picks up a
//!   revocation without any explicit refresh;
//! * a failing source is retried with backoff (not in a tight loop) and
//!   recovers once the responder does.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pki_fixtures::responder::{
    start_with_fresh_pki, Behaviour, Responder, ResponderOptions, Target,
};
use pki_fixtures::{Cert, Pki, PkiOptions, Reason};
use vigil_core::schedule::RefreshPolicy;
use vigil_core::{
    CertStatus, CertificateDer, Decision, ReasonCode, RevocationPolicy, Source, Status, Usage,
    Verdict, VerifierConfig, VerifyOptions,
};
use vigil_runtime::{
    Engine, EngineConfig, FetchConfig, SledStore, SourceState, Store, SystemClock,
};

/// The fetch timeouts of every test here: short, so `Slow` costs ~1 s.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How slow `Slow` is: well past [`TIMEOUT`].
const SLOW: Duration = Duration::from_millis(2500);
/// The `Oversized` body: 2 MiB, over both limits of [`fetch_config`].
const OVERSIZED: usize = 2 * 1024 * 1024;

/// 1 s timeouts, no in-fetch retries (so a refresh is one request), 1 MiB
/// for CRLs, 64 KiB for OCSP, no proxy.
fn fetch_config() -> FetchConfig {
    FetchConfig::default()
        .with_connect_timeout(TIMEOUT)
        .with_total_timeout(TIMEOUT)
        .with_retries(0)
        .with_max_crl_bytes(1024 * 1024)
        .with_max_ocsp_bytes(64 * 1024)
        .with_use_env_proxy(false)
}

fn config() -> EngineConfig {
    EngineConfig::default().with_fetch(fetch_config())
}

fn der(cert: &Cert) -> CertificateDer<'static> {
    CertificateDer::from(cert.der.clone())
}

/// The fixture client chain: leaf and intermediate (the root is the anchor).
fn client_chain(pki: &Pki) -> Vec<CertificateDer<'static>> {
    vec![der(&pki.client), der(&pki.intermediate.cert)]
}

fn options(policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions::new(Usage::Client).with_policy(policy)
}

/// A fresh engine (system clock) over an empty sled store in `dir`.
fn open(pki: &Pki, dir: &std::path::Path, config: EngineConfig) -> Engine {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    Engine::open(
        vec![der(&pki.root.cert)],
        store,
        config,
        Arc::new(SystemClock),
    )
    .unwrap()
}

async fn setup(opts: ResponderOptions) -> (Responder, Pki) {
    start_with_fresh_pki(PkiOptions::default(), opts)
        .await
        .unwrap()
}

fn describe(v: &Verdict) -> String {
    format!(
        "{:?}/{:?}/{} ({}) revocation: {:?}",
        v.verdict, v.status, v.reason, v.detail, v.revocation
    )
}

fn describe_sources(sources: &[SourceState]) -> String {
    sources
        .iter()
        .map(|s| format!("\n  {} {}: error {:?}", s.kind, s.url, s.last_error))
        .collect()
}

/// Both kinds of source are known, each with a last error.
fn assert_every_source_failed(what: &str, sources: &[SourceState]) {
    let kinds: BTreeSet<&str> = sources.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["crl", "ocsp"]),
        "{what}: {}",
        describe_sources(sources)
    );
    assert!(
        sources.iter().all(|s| s.last_error.is_some()),
        "{what}: every source should report its failure:{}",
        describe_sources(sources)
    );
}

/// What a fresh engine must say about the client chain when the whole
/// responder (CRL and OCSP) misbehaves like this.
struct Expect {
    /// The reason under `require` (any of these: when both methods fail
    /// alike, either may be reported).
    require: &'static [ReasonCode],
    /// Whether `prefer` soft-fails (status unknown) or still rejects.
    soft_fails: bool,
    /// Whether the fetches themselves fail (so every source must report a
    /// last error; data that arrives but is unusable is checked apart).
    fetch_fails: bool,
}

const MISSING: Expect = Expect {
    require: &[ReasonCode::RevocationDataMissing],
    soft_fails: true,
    fetch_fails: true,
};

/// Verifies the client chain with a fresh engine under `require` and under
/// `prefer` (a fresh engine each, so each fetches) while the responder
/// misbehaves like `behaviour`; checks verdicts, reasons and source errors.
async fn check_misbehaviour(behaviour: Behaviour, expect: &Expect) {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    responder.set_behaviour(Target::All, behaviour).unwrap();
    let chain = client_chain(&pki);

    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path(), config());
    let started = Instant::now();
    let require = engine
        .verify(&chain, &options(RevocationPolicy::Require))
        .await;
    let what = format!("{behaviour:?} under require");
    // The sources are fetched concurrently, each within the timeout: a slow
    // responder costs one timeout, not its delay per source.
    assert!(
        started.elapsed() < TIMEOUT * 2,
        "{what}: took {:?}",
        started.elapsed()
    );
    assert_eq!(
        require.verdict,
        Decision::Rejected,
        "{what}: {}",
        describe(&require)
    );
    assert!(
        expect.require.contains(&require.reason),
        "{what}: expected one of {:?}, got {}",
        expect.require,
        describe(&require)
    );
    let status = if expect.soft_fails {
        Status::Unknown
    } else {
        Status::Invalid
    };
    assert_eq!(require.status, status, "{what}: {}", describe(&require));
    if expect.fetch_fails {
        assert_every_source_failed(&what, &engine.sources());
    }

    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path(), config());
    let prefer = engine
        .verify(&chain, &options(RevocationPolicy::Prefer))
        .await;
    let what = format!("{behaviour:?} under prefer");
    if expect.soft_fails {
        assert_eq!(
            prefer.verdict,
            Decision::Accepted,
            "{what}: {}",
            describe(&prefer)
        );
        assert_eq!(
            prefer.reason,
            ReasonCode::RevocationUnknownSoftFail,
            "{what}: {}",
            describe(&prefer)
        );
        assert_eq!(
            prefer.status,
            Status::Unknown,
            "{what}: {}",
            describe(&prefer)
        );
    } else {
        assert_eq!(
            prefer.verdict,
            Decision::Rejected,
            "{what}: {}",
            describe(&prefer)
        );
        assert!(
            expect.require.contains(&prefer.reason),
            "{what}: expected one of {:?}, got {}",
            expect.require,
            describe(&prefer)
        );
    }
    assert!(
        prefer
            .revocation
            .iter()
            .all(|r| r.status != CertStatus::Good),
        "{what}: nothing may be reported good: {}",
        describe(&prefer)
    );
    if expect.fetch_fails {
        assert_every_source_failed(&what, &engine.sources());
    }
    responder.shutdown().await;
}

/// After a fresh engine fetched from a responder misbehaving like
/// `behaviour` (the whole body arrives, but it is stale or forged), every
/// source reports the failure in [`Engine::sources`].
async fn check_unusable_data_is_reported(behaviour: Behaviour) {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    responder.set_behaviour(Target::All, behaviour).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path(), config());
    let v = engine
        .verify(&client_chain(&pki), &options(RevocationPolicy::Require))
        .await;
    assert!(!v.is_accepted(), "{behaviour:?}: {}", describe(&v));
    assert_every_source_failed(&format!("{behaviour:?}"), &engine.sources());
    responder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responder_times_out_hard_fails_require_soft_fails_prefer() {
    check_misbehaviour(Behaviour::Slow(SLOW), &MISSING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_500_hard_fails_require_soft_fails_prefer() {
    check_misbehaviour(Behaviour::Status500, &MISSING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_body_hard_fails_require_soft_fails_prefer() {
    check_misbehaviour(Behaviour::Garbage, &MISSING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_hard_fails_require_soft_fails_prefer() {
    check_misbehaviour(Behaviour::Oversized(OVERSIZED), &MISSING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_data_hard_fails_require_soft_fails_prefer() {
    check_misbehaviour(
        Behaviour::Stale,
        &Expect {
            require: &[ReasonCode::RevocationDataStale],
            soft_fails: true,
            fetch_fails: false,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_data_is_reported_as_a_source_error() {
    check_unusable_data_is_reported(Behaviour::Stale).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signer_is_rejected_under_require_and_prefer() {
    check_misbehaviour(
        Behaviour::WrongSigner,
        &Expect {
            require: &[
                ReasonCode::CrlSignatureInvalid,
                ReasonCode::OcspSignatureInvalid,
            ],
            soft_fails: false,
            fetch_fails: false,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_data_is_reported_as_a_source_error() {
    check_unusable_data_is_reported(Behaviour::WrongSigner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_later_hard_fails_require_soft_fails_prefer() {
    check_misbehaviour(Behaviour::TryLater, &MISSING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_hard_fails_require_soft_fails_prefer() {
    check_misbehaviour(Behaviour::ConnectionReset, &MISSING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_down_hard_fails_require_soft_fails_prefer() {
    check_misbehaviour(Behaviour::Down, &MISSING).await;
}

/// Every misbehaviour.
fn misbehaviours() -> [Behaviour; 9] {
    [
        Behaviour::Slow(SLOW),
        Behaviour::Status500,
        Behaviour::Garbage,
        Behaviour::Oversized(OVERSIZED),
        Behaviour::Stale,
        Behaviour::WrongSigner,
        Behaviour::TryLater,
        Behaviour::ConnectionReset,
        Behaviour::Down,
    ]
}

/// With one method misbehaving (`broken`) and the other fine, a fresh
/// engine accepts the client chain under `require` with `ok`, every
/// certificate answered `good` by `answers`.
async fn check_one_method_broken(broken: Target, answers: Source) {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let chain = client_chain(&pki);
    let mut failures = Vec::new();
    for behaviour in misbehaviours() {
        responder.set_behaviour(broken, behaviour).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let engine = open(&pki, dir.path(), config());
        let v = engine
            .verify(&chain, &options(RevocationPolicy::Require))
            .await;
        let fine = v.verdict == Decision::Accepted
            && v.reason == ReasonCode::Ok
            && v.status == Status::Good
            && v.revocation.len() == 2
            && v.revocation
                .iter()
                .all(|r| r.source == answers && r.status == CertStatus::Good);
        if !fine {
            failures.push(format!("{broken:?} {behaviour:?}: {}", describe(&v)));
        }
        responder
            .set_behaviour(Target::All, Behaviour::Normal)
            .unwrap();
    }
    assert!(failures.is_empty(), "{failures:#?}");
    responder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_misbehaving_with_a_good_crl_is_ok_via_crl() {
    check_one_method_broken(Target::Ocsp, Source::Crl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_misbehaving_with_good_ocsp_is_ok_via_ocsp() {
    check_one_method_broken(Target::Crl, Source::Ocsp).await;
}

/// Misbehaviours where the fetch itself fails (nothing usable arrives).
fn fetch_failures() -> [Behaviour; 7] {
    [
        Behaviour::Slow(SLOW),
        Behaviour::Status500,
        Behaviour::Garbage,
        Behaviour::Oversized(OVERSIZED),
        Behaviour::TryLater,
        Behaviour::ConnectionReset,
        Behaviour::Down,
    ]
}

/// Opens a sled store in `dir`, waiting (up to 3 s) for a previous engine's
/// background writes to let go of it.
async fn reopen(dir: &std::path::Path) -> Arc<dyn Store> {
    let started = Instant::now();
    loop {
        match SledStore::open(dir) {
            Ok(store) => return Arc::new(store),
            Err(e) if started.elapsed() > Duration::from_secs(3) => panic!("reopen: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Whether the client chain is `ok` under `require`, every certificate
/// answered by OCSP (the preferred method).
fn ok_via_ocsp(v: &Verdict) -> bool {
    v.reason == ReasonCode::Ok
        && v.revocation.len() == 2
        && v.revocation.iter().all(|r| r.source == Source::Ocsp)
}

/// For each of `behaviours`: an engine holding fresh, verified data whose
/// responder then misbehaves refreshes every source; the data held stays in
/// use ("the previous data stays": still `ok` via OCSP under `require`), and
/// it is also what the store holds (an engine restarted offline on the same
/// store says the same).
async fn check_refresh_keeps_the_data_held(behaviours: &[Behaviour]) {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let chain = client_chain(&pki);
    let require = options(RevocationPolicy::Require);
    let mut failures = Vec::new();
    for &behaviour in behaviours {
        responder
            .set_behaviour(Target::All, Behaviour::Normal)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let engine = open(&pki, dir.path(), config());
        let v = engine.verify(&chain, &require).await;
        assert!(ok_via_ocsp(&v), "{}", describe(&v));
        responder.set_behaviour(Target::All, behaviour).unwrap();
        let refreshed = engine.refresh_all().await;
        let v = engine.verify_cached(&chain, &require);
        if !ok_via_ocsp(&v) {
            failures.push(format!(
                "{behaviour:?}: refresh {refreshed:?} -> {}",
                describe(&v)
            ));
        }
        drop(engine);
        let restarted = Engine::open(
            vec![der(&pki.root.cert)],
            reopen(dir.path()).await,
            config().with_offline(true),
            Arc::new(SystemClock),
        )
        .unwrap();
        let v = restarted.verify(&chain, &require).await;
        if !ok_via_ocsp(&v) {
            failures.push(format!("{behaviour:?}, restarted: {}", describe(&v)));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    responder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_data_held_and_stored() {
    check_refresh_keeps_the_data_held(&fetch_failures()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_data_never_replaces_the_data_held() {
    check_refresh_keeps_the_data_held(&[Behaviour::Stale]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_data_never_replaces_the_data_held() {
    check_refresh_keeps_the_data_held(&[Behaviour::WrongSigner]).await;
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The refresh scheduler alone keeps 4-second OCSP answers current (they
/// are replaced before their nextUpdate, so OCSP keeps answering) and
/// brings a revocation in, with no explicit refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_refreshes_before_next_update_and_sees_a_revocation() {
    let (responder, pki) = setup(ResponderOptions {
        crl_validity: time::Duration::seconds(4),
        ocsp_validity: time::Duration::seconds(4),
        ..ResponderOptions::default()
    })
    .await;
    let config = EngineConfig::default()
        .with_fetch(fetch_config())
        // No skew tolerance: an OCSP answer past its nextUpdate is stale at
        // once, and the CRL would have to answer instead.
        .with_verifier(VerifierConfig::default().with_clock_skew_secs(0))
        .with_refresh(
            RefreshPolicy::default()
                .with_fraction(0.5)
                .with_min_interval_secs(1)
                // The fixture's first CRLs are valid 7 days: refresh them soon.
                .with_max_interval_secs(2)
                .with_retry_base_secs(1)
                .with_retry_max_secs(2),
        );
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path(), config);
    let chain = client_chain(&pki);
    let require = options(RevocationPolicy::Require);

    let first = engine.verify(&chain, &require).await;
    assert_eq!(first.reason, ReasonCode::Ok, "{}", describe(&first));
    assert!(
        first.revocation.iter().all(|r| r.source == Source::Ocsp),
        "{}",
        describe(&first)
    );
    let first_next_update = first
        .revocation
        .iter()
        .filter_map(|r| r.next_update)
        .max()
        .unwrap();
    let scheduler = engine.spawn_scheduler();

    // Until well past the first answers' nextUpdate: OCSP keeps answering,
    // from answers newer than the first ones.
    let until = first_next_update + 2;
    while unix_now() <= until {
        let v = engine.verify_cached(&chain, &require);
        assert_eq!(v.reason, ReasonCode::Ok, "{}", describe(&v));
        assert!(
            v.revocation
                .iter()
                .all(|r| r.source == Source::Ocsp && r.status == CertStatus::Good),
            "an OCSP answer went stale: the scheduler did not refresh it in time: {}",
            describe(&v)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ocsp_next: Vec<i64> = engine
        .sources()
        .iter()
        .filter(|s| s.kind == "ocsp")
        .map(|s| s.next_update.unwrap())
        .collect();
    assert!(
        !ocsp_next.is_empty() && ocsp_next.iter().all(|n| *n > first_next_update),
        "{ocsp_next:?} vs {first_next_update}"
    );

    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    let revoked_at = Instant::now();
    let verdict = loop {
        let v = engine.verify_cached(&chain, &require);
        if v.reason == ReasonCode::Revoked || revoked_at.elapsed() > Duration::from_secs(8) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    scheduler.abort();
    assert_eq!(
        verdict.reason,
        ReasonCode::Revoked,
        "not seen revoked within 8 s: {}",
        describe(&verdict)
    );
    assert_eq!(verdict.revocation[0].status, CertStatus::Revoked);
    assert_eq!(
        verdict.revocation[0].reason.as_deref(),
        Some("keyCompromise")
    );
    responder.shutdown().await;
}

/// A refresh policy for the backoff tests: first retry after 1 s, then 2 s.
fn backoff_config() -> EngineConfig {
    EngineConfig::default()
        .with_fetch(fetch_config())
        .with_refresh(
            RefreshPolicy::default()
                .with_fraction(0.5)
                .with_min_interval_secs(1)
                .with_max_interval_secs(3600)
                .with_retry_base_secs(1)
                .with_retry_max_secs(2),
        )
}

/// Requests per (CA, kind) for the client chain's sources: one CRL and one
/// OCSP source per CA here.
fn request_counts(responder: &Responder) -> [(&'static str, u64); 4] {
    let i = responder.counts_for("intermediate");
    let r = responder.counts_for("root");
    [
        ("intermediate crl", i.crl),
        ("intermediate ocsp", i.ocsp()),
        ("root crl", r.crl),
        ("root ocsp", r.ocsp()),
    ]
}

/// Polls (every 100 ms, up to `limit`) until every source has no last
/// error; returns the sources as last seen.
async fn wait_recovered(engine: &Engine, limit: Duration) -> Vec<SourceState> {
    let started = Instant::now();
    loop {
        let sources = engine.sources();
        if sources.iter().all(|s| s.last_error.is_none()) || started.elapsed() > limit {
            return sources;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A responder answering 500: the scheduler retries every source, with
/// backoff (a handful of requests in 3 s, not a tight loop); once the
/// responder is back, every source recovers without an explicit refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_is_retried_with_backoff_and_recovers() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    responder
        .set_behaviour(Target::All, Behaviour::Status500)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path(), backoff_config());
    let chain = client_chain(&pki);
    let require = options(RevocationPolicy::Require);
    let v = engine.verify(&chain, &require).await;
    assert_eq!(
        v.reason,
        ReasonCode::RevocationDataMissing,
        "{}",
        describe(&v)
    );
    assert_eq!(
        engine.sources().len(),
        4,
        "{}",
        describe_sources(&engine.sources())
    );
    assert_every_source_failed("500", &engine.sources());

    let before = request_counts(&responder);
    assert!(before.iter().all(|(_, n)| *n == 1), "{before:?}");
    let scheduler = engine.spawn_scheduler();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = request_counts(&responder);
    for ((what, b), (_, a)) in before.iter().zip(after.iter()) {
        let retries = a - b;
        // Backoff 1 s then 2 s: about 2 retries in 3 s (whole-second
        // scheduling and jitter allow a little more); a tight loop would
        // make hundreds.
        assert!(
            (1..=5).contains(&retries),
            "{what}: {retries} retries in 3 s (before {before:?}, after {after:?})"
        );
    }
    assert_every_source_failed("500, retried", &engine.sources());

    responder
        .set_behaviour(Target::All, Behaviour::Normal)
        .unwrap();
    let back = Instant::now();
    let sources = wait_recovered(&engine, Duration::from_secs(6)).await;
    scheduler.abort();
    assert!(
        sources.iter().all(|s| s.last_error.is_none()),
        "not recovered within 6 s:{}",
        describe_sources(&sources)
    );
    // The retry delay is capped at 2 s.
    assert!(
        back.elapsed() < Duration::from_secs(4),
        "{:?}",
        back.elapsed()
    );
    let v = engine.verify_cached(&chain, &require);
    assert_eq!(v.reason, ReasonCode::Ok, "{}", describe(&v));
    responder.shutdown().await;
}

/// A responder that is down (connections refused, so it counts nothing):
/// the attempts show in the sources' last fetch times, spaced by the
/// backoff; once it is up again (same port), every source recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_responder_is_retried_with_backoff_and_recovered_from() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    responder
        .set_behaviour(Target::All, Behaviour::Down)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&pki, dir.path(), backoff_config());
    let chain = client_chain(&pki);
    let require = options(RevocationPolicy::Require);
    let v = engine.verify(&chain, &require).await;
    assert_eq!(
        v.reason,
        ReasonCode::RevocationDataMissing,
        "{}",
        describe(&v)
    );
    assert_every_source_failed("down", &engine.sources());

    // Distinct attempt times (whole seconds) per source over 3.5 s.
    let mut attempts: std::collections::BTreeMap<String, BTreeSet<i64>> = Default::default();
    let scheduler = engine.spawn_scheduler();
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(3500) {
        for s in engine.sources() {
            if let Some(at) = s.last_fetch {
                attempts.entry(s.url.clone()).or_default().insert(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    for (url, times) in &attempts {
        // The first attempt (by verify) and at least one retry; whole-second
        // times can only show one attempt per second.
        assert!((2..=5).contains(&times.len()), "{url}: {times:?}");
    }
    assert_every_source_failed("down, retried", &engine.sources());

    responder
        .set_behaviour(Target::All, Behaviour::Normal)
        .unwrap();
    let sources = wait_recovered(&engine, Duration::from_secs(6)).await;
    scheduler.abort();
    assert!(
        sources.iter().all(|s| s.last_error.is_none()),
        "not recovered within 6 s:{}",
        describe_sources(&sources)
    );
    let v = engine.verify_cached(&chain, &require);
    assert_eq!(v.reason, ReasonCode::Ok, "{}", describe(&v));
    responder.shutdown().await;
}
