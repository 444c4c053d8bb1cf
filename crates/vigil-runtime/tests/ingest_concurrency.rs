//! Verifications never wait for ingest (issue 12): while a 1,000,000-entry
//! CRL is parsed, verified and indexed, verifications keep completing,
//! cached and cold alike. The ingesting thread marks its start and end;
//! the verifying threads note when each verification completes in
//! between. Under a lock held for the ingest, no verification completes
//! for (nearly) all of it; without one, completions spread over it. So the
//! test compares the longest silence with the ingest itself: no absolute
//! time threshold, which a loaded 2-core machine would break.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use pki_fixtures::{generate, CrlSpec, PkiOptions};
use vigil_core::{CertificateDer, CrlLoad, Usage, VerifyOptions};
use vigil_runtime::{Clock, Engine, EngineConfig, MemoryStore, Store};

struct Fixed(SystemTime);

impl Clock for Fixed {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// What one verifying thread saw during the ingest.
struct Seen {
    /// Verifications that completed during it.
    completed: u64,
    /// The longest time between two completions (or the ingest's start
    /// and the first one).
    longest_gap: Duration,
    /// When the last one completed.
    last: Option<Instant>,
}

#[test]
fn verifications_complete_while_a_million_entry_crl_is_ingested() {
    let pki = generate(&PkiOptions::default()).unwrap();
    let opts = &pki.options;
    let mut spec = CrlSpec::synthetic(opts, 1_000_000);
    spec.number = 1_000;
    let big = pki.intermediate.crl(&spec).unwrap().der;
    drop(spec);

    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let engine = Engine::open(
        vec![CertificateDer::from(pki.root.cert.der.clone())],
        store,
        EngineConfig::default(),
        Arc::new(Fixed(opts.now.into())),
    )
    .unwrap();
    let intermediate = CertificateDer::from(pki.intermediate.cert.der.clone());
    assert!(engine.add_ca_certificate(&intermediate).unwrap());
    engine.add_crl(&pki.root_crl.der).unwrap();
    engine.add_crl(&pki.intermediate_crl.der).unwrap();
    let chain = vec![
        CertificateDer::from(pki.client.der.clone()),
        intermediate.clone(),
    ];
    let options = VerifyOptions::new(Usage::Client);
    assert!(engine.verify_cached(&chain, &options).is_accepted());

    let start = Arc::new(OnceLock::<Instant>::new());
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = [true, false]
        .into_iter()
        .map(|cached| {
            let (engine, chain, options) = (engine.clone(), chain.clone(), options.clone());
            let (start, started, finished) = (start.clone(), started.clone(), finished.clone());
            std::thread::spawn(move || {
                let mut seen = Seen {
                    completed: 0,
                    longest_gap: Duration::ZERO,
                    last: None,
                };
                while !finished.load(Ordering::SeqCst) {
                    if cached {
                        assert!(engine.verify_cached(&chain, &options).is_accepted());
                    } else {
                        // Path validation: signatures checked every time.
                        assert!(engine.validate(&chain, &options).is_ok());
                    }
                    let now = Instant::now();
                    if started.load(Ordering::SeqCst) && !finished.load(Ordering::SeqCst) {
                        let since = seen.last.or(start.get().copied()).unwrap_or(now);
                        seen.longest_gap =
                            seen.longest_gap.max(now.saturating_duration_since(since));
                        seen.last = Some(now);
                        seen.completed += 1;
                    }
                }
                seen
            })
        })
        .collect();

    // Let both readers run before the ingest starts.
    std::thread::sleep(Duration::from_millis(50));
    let began = Instant::now();
    start.set(began).unwrap();
    started.store(true, Ordering::SeqCst);
    let load = engine.add_crl(&big).unwrap();
    let ended = Instant::now();
    finished.store(true, Ordering::SeqCst);
    let seen: Vec<Seen> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(load, CrlLoad::Verified { entries: 1_000_000 });
    let ingest = ended - began;
    for (kind, seen) in ["cached", "cold"].iter().zip(&seen) {
        let tail = seen
            .last
            .map_or(ingest, |last| ended.saturating_duration_since(last));
        let silence = seen.longest_gap.max(tail);
        eprintln!(
            "{kind}: {} verifications completed during a {ingest:?} ingest; longest silence {silence:?}",
            seen.completed
        );
        assert!(
            seen.completed > 0 && silence < ingest / 2,
            "{kind} verifications waited for the ingest: {} completed during it, none for {silence:?} of {ingest:?}",
            seen.completed
        );
    }
    // The new data is in use once published.
    assert!(engine.verify_cached(&chain, &options).is_accepted());
}
