//! Verification latency while a 1,000,000-entry CRL is ingested (issue
//! 12): p50 and p99 of cached and cold verifications through the
//! [`Engine`] while another thread ingests the CRL over and over, against
//! the same figures with nothing being ingested, measured in the same run.
//! The target is a p99 during ingest of at most 1.5x the idle p99. The
//! slowest verification and the number completed are shown beside it: a
//! verification that waits for a whole ingest is one sample among few, so
//! a lock shows in `max` and `n` before it reaches p99.
//!
//! Run with `cargo bench --bench contention`; `VIGIL_BENCH_INGESTS`
//! (default 4) sets how many ingests are measured. Each ingest of the same
//! CRL costs the whole parse, signature check and index (the series check
//! comes last), so every round does the full work.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use pki_fixtures::{generate, CrlSpec, PkiOptions};
use vigil_core::{CertificateDer, Usage, VerifyOptions};
use vigil_runtime::{Clock, Engine, EngineConfig, MemoryStore, Store};

struct Fixed(SystemTime);

impl Clock for Fixed {
    fn now(&self) -> SystemTime {
        self.0
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `Engine::verify_cached` of a chain verified before.
    Cached,
    /// Path validation only (`Engine::validate`).
    Validate,
    /// A whole verification without the verdict cache: path validation
    /// and revocation against the published snapshot.
    Cold,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cached => "cached",
            Kind::Validate => "validate",
            Kind::Cold => "cold",
        }
    }
}

struct Setup {
    engine: Engine,
    chain: Vec<CertificateDer<'static>>,
    options: VerifyOptions,
    big: Arc<Vec<u8>>,
}

fn setup() -> Setup {
    let pki = generate(&PkiOptions::default()).unwrap();
    let opts = &pki.options;
    let mut spec = CrlSpec::synthetic(opts, 1_000_000);
    spec.number = 1_000;
    let big = Arc::new(pki.intermediate.crl(&spec).unwrap().der);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let engine = Engine::open(
        vec![CertificateDer::from(pki.root.cert.der.clone())],
        store,
        EngineConfig::default(),
        Arc::new(Fixed(opts.now.into())),
    )
    .unwrap();
    let intermediate = CertificateDer::from(pki.intermediate.cert.der.clone());
    engine.add_ca_certificate(&intermediate).unwrap();
    engine.add_crl(&pki.root_crl.der).unwrap();
    // The 1M-entry CRL is loaded once: later ingests replace it with
    // itself, so verifications see the same data throughout.
    engine.add_crl(&big).unwrap();
    let chain = vec![CertificateDer::from(pki.client.der.clone()), intermediate];
    let options = VerifyOptions::new(Usage::Client);
    assert!(engine.verify_cached(&chain, &options).is_accepted());
    Setup {
        engine,
        chain,
        options,
        big,
    }
}

fn once(s: &Setup, kind: Kind) {
    match kind {
        Kind::Cached => {
            black_box(s.engine.verify_cached(&s.chain, &s.options));
        }
        Kind::Validate => {
            black_box(s.engine.validate(&s.chain, &s.options).is_ok());
        }
        Kind::Cold => {
            let at = s.engine.now();
            black_box(
                s.engine
                    .snapshot()
                    .verify_uncached(&s.chain, &s.options, at),
            );
        }
    }
}

/// Latencies of `kind` verifications, one thread, until `stop` is set or
/// `limit` are taken.
fn sample(s: &Setup, kind: Kind, stop: &AtomicBool, limit: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(limit.min(1 << 20));
    while out.len() < limit && !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        once(s, kind);
        out.push(started.elapsed());
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(s: &Setup) {
    let ingests: usize = std::env::var("VIGIL_BENCH_INGESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    eprintln!(
        "verification latency while a 1M-entry CRL ({:.1} MB) is ingested {ingests} times",
        s.big.len() as f64 / 1e6
    );
    eprintln!(
        "{:>9} | {:>10} {:>10} {:>10} {:>8} | {:>10} {:>10} {:>10} {:>8} | {:>9}",
        "kind",
        "idle p50",
        "idle p99",
        "idle max",
        "n",
        "ingest p50",
        "ingest p99",
        "ingest max",
        "n",
        "p99 ratio"
    );
    for kind in [Kind::Cached, Kind::Validate, Kind::Cold] {
        let never = AtomicBool::new(false);
        let limit = if kind == Kind::Cached { 400_000 } else { 4_000 };
        let mut idle = sample(s, kind, &never, limit);
        idle.sort();
        let stop = AtomicBool::new(false);
        let mut busy = std::thread::scope(|scope| {
            let ingest = scope.spawn(|| {
                let mut took = Vec::new();
                for _ in 0..ingests {
                    let started = Instant::now();
                    black_box(s.engine.add_crl(&s.big).unwrap());
                    took.push(started.elapsed());
                }
                stop.store(true, Ordering::Relaxed);
                took
            });
            let busy = sample(s, kind, &stop, usize::MAX);
            let took = ingest.join().unwrap();
            eprintln!("  ({} ingests took {took:?})", kind.name());
            busy
        });
        busy.sort();
        let (i99, b99) = (percentile(&idle, 0.99), percentile(&busy, 0.99));
        eprintln!(
            "{:>9} | {:>10.2?} {:>10.2?} {:>10.2?} {:>8} | {:>10.2?} {:>10.2?} {:>10.2?} {:>8} | {:>8.2}x",
            kind.name(),
            percentile(&idle, 0.5),
            i99,
            percentile(&idle, 1.0),
            idle.len(),
            percentile(&busy, 0.5),
            b99,
            percentile(&busy, 1.0),
            busy.len(),
            b99.as_secs_f64() / i99.as_secs_f64().max(1e-12),
        );
    }
}

fn benches(c: &mut Criterion) {
    let s = setup();
    report(&s);
    let mut g = c.benchmark_group("engine");
    g.bench_function("cached_1m", |b| b.iter(|| once(&s, Kind::Cached)));
    g.bench_function("cold_1m", |b| b.iter(|| once(&s, Kind::Cold)));
    g.finish();
}

criterion_group!(contention, benches);
criterion_main!(contention);
