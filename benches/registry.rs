//! The live-connection registry at the issue's size: 10,000 tracked
//! connections under one intermediate, 1,000 of them revoked by one new CRL.
//!
//! Run with `cargo bench --bench registry`. Measured:
//! - `registry/on_crl_10k_conns_1k_revoked`: from "the CRL is loaded in the
//!   verifier" to the last teardown event fired (`Registry::on_crl`);
//! - `registry/add_crl_and_on_crl`: the same, including loading the CRL
//!   (parse, signature check, index);
//! - `registry/on_revoked_1k`: the same 1,000 revocations delivered one by
//!   one as verified facts (`Registry::on_revoked`).
//!
//! The index memory per tracked connection is printed once before the runs.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use pki_fixtures::{generate, Cert, CertSpec, CrlSpec, Pki, PkiOptions, Reason};
use rustls_pki_types::CertificateDer;
use vigil_core::{AcceptedPath, CrlLoad, Registry, TrustStore, Usage, Verifier, VerifyOptions};

const CONNECTIONS: usize = 10_000;
const REVOKED: usize = 1_000;

struct Setup {
    pki: Pki,
    chains: Vec<Vec<CertificateDer<'static>>>,
    verdicts: Vec<AcceptedPath>,
    leaves: Vec<Cert>,
    crl: Vec<u8>,
    at: SystemTime,
}

fn options() -> VerifyOptions {
    VerifyOptions::new(Usage::Client)
}

fn der(cert: &Cert) -> CertificateDer<'static> {
    CertificateDer::from(cert.der.clone())
}

/// A verifier with the root and intermediate CRLs (number 1, empty).
fn base_verifier(pki: &Pki) -> Verifier {
    let mut trust = TrustStore::new();
    trust.add(der(&pki.root.cert)).unwrap();
    let mut v = Verifier::new(trust);
    v.add_ca_certificate(&der(&pki.intermediate.cert)).unwrap();
    let fresh = CrlSpec::new(&pki.options);
    v.add_crl(&pki.root.crl(&fresh).unwrap().der).unwrap();
    v.add_crl(&pki.intermediate.crl(&fresh).unwrap().der)
        .unwrap();
    v
}

fn setup() -> Setup {
    let pki = generate(&PkiOptions::default()).unwrap();
    let started = Instant::now();
    let leaves: Vec<Cert> = (0..CONNECTIONS)
        .map(|i| {
            let name = format!("bench-client-{i}");
            pki.intermediate
                .issue_leaf(&CertSpec::leaf(&name, &name, &pki.options))
                .unwrap()
        })
        .collect();
    eprintln!(
        "generated {CONNECTIONS} leaves in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let at: SystemTime = pki.options.now.into();
    let v = base_verifier(&pki);
    let chains: Vec<Vec<CertificateDer<'static>>> = leaves
        .iter()
        .map(|l| vec![der(l), der(&pki.intermediate.cert)])
        .collect();
    let verdicts: Vec<AcceptedPath> = chains
        .iter()
        .map(|c| {
            let verdict = v.verify(c, &options(), at);
            verdict.accepted_path().expect("accepted")
        })
        .collect();
    let mut spec = CrlSpec::new(&pki.options);
    spec.number = 2;
    spec.this_update += time::Duration::minutes(1);
    // Every tenth connection is revoked.
    for leaf in leaves.iter().step_by(CONNECTIONS / REVOKED) {
        spec = spec.revoke(
            leaf,
            pki.options.now - time::Duration::minutes(30),
            Reason::KeyCompromise,
        );
    }
    let crl = pki.intermediate.crl(&spec).unwrap().der;
    Setup {
        pki,
        chains,
        verdicts,
        leaves,
        crl,
        at,
    }
}

fn tracked(s: &Setup) -> Registry {
    let reg = Registry::new(options());
    for (chain, verdict) in s.chains.iter().zip(&s.verdicts) {
        let mut labels = BTreeMap::new();
        labels.insert("peer".to_owned(), "127.0.0.1:40000".to_owned());
        let (_, signal) = reg.track(chain.clone(), labels, verdict, s.at);
        signal.on_fire(Box::new(|_| {}));
    }
    reg
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let reg = tracked(&s);
    let stats = reg.stats();
    eprintln!(
        "{} connections: index {} bytes ({} per connection; labels and \
         signal included, certificate DER and parsed certificates excluded)",
        stats.connections,
        stats.index_bytes,
        stats.index_bytes / stats.connections.max(1)
    );
    let mut loaded = base_verifier(&s.pki);
    assert!(matches!(
        loaded.add_crl(&s.crl).unwrap(),
        CrlLoad::Verified { entries } if entries == REVOKED
    ));
    let events = reg.on_crl(&loaded, &s.crl, s.at);
    assert_eq!(events.len(), REVOKED);
    assert_eq!(reg.len(), CONNECTIONS - REVOKED);

    let mut group = c.benchmark_group("registry");
    group.sample_size(10);
    group.bench_function("on_crl_10k_conns_1k_revoked", |b| {
        b.iter_batched(
            || tracked(&s),
            |reg| {
                let events = reg.on_crl(&loaded, &s.crl, s.at);
                assert_eq!(events.len(), REVOKED);
                reg
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("add_crl_and_on_crl", |b| {
        b.iter_batched(
            || (tracked(&s), base_verifier(&s.pki)),
            |(reg, mut v)| {
                v.add_crl(&s.crl).unwrap();
                let events = reg.on_crl(&v, &s.crl, s.at);
                assert_eq!(events.len(), REVOKED);
                (reg, v)
            },
            BatchSize::PerIteration,
        )
    });
    let issuer = x509_parser::parse_x509_certificate(&s.pki.intermediate.cert.der)
        .unwrap()
        .1
        .subject()
        .as_raw()
        .to_vec();
    group.bench_function("on_revoked_1k", |b| {
        b.iter_batched(
            || tracked(&s),
            |reg| {
                let mut n = 0;
                for leaf in s.leaves.iter().step_by(CONNECTIONS / REVOKED) {
                    n += reg.on_revoked(&issuer, &leaf.serial, None, s.at).len();
                }
                assert_eq!(n, REVOKED);
                reg
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(loaded);
}

criterion_group!(benches, bench);
criterion_main!(benches);
