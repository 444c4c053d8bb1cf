//! Verification and CRL-loading benchmarks at real CRL sizes, with
//! rustls-webpki (and `openssl crl`) measured in the same run as baselines.
//!
//! Run with `cargo bench --bench verify`. The figures the issue asks for:
//! - `cold/*`: a 3-certificate P-256 chain with revocation against a CRL of
//!   10k / 1M entries, Vigil (`verify_uncached`) vs webpki with and without
//!   the CRL;
//! - `cached/*`: the same chain again with unchanged data (verdict cache);
//! - `crl_load/*`: parse + signature + index of the 1M-entry CRL, vs
//!   webpki's `OwnedCertRevocationList::from_der`; `openssl crl` timing and
//!   retained memory are printed once before the runs.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use pki_fixtures::{generate, CrlSpec, PkiOptions};
use rustls_pki_types::{CertificateDer, UnixTime};
use vigil_core::revocation::CrlSigner;
use vigil_core::revocation::VerifiedCrl;
use vigil_core::{TrustStore, Usage, Verifier, VerifyOptions};
use webpki::{
    anchor_from_trusted_cert, CertRevocationList, EndEntityCert, KeyUsage, OwnedCertRevocationList,
    RevocationOptionsBuilder,
};

struct Setup {
    root: CertificateDer<'static>,
    intermediate: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    root_crl: Vec<u8>,
    crl_10k: Vec<u8>,
    crl_1m: Vec<u8>,
    at: SystemTime,
}

fn crl_with(pki: &pki_fixtures::Pki, n: u32) -> Vec<u8> {
    let mut spec = CrlSpec::synthetic(&pki.options, n);
    spec.number = u64::from(n);
    pki.intermediate.crl(&spec).unwrap().der
}

fn setup() -> Setup {
    let pki = generate(&PkiOptions::default()).unwrap();
    let started = Instant::now();
    let crl_1m = crl_with(&pki, 1_000_000);
    eprintln!(
        "generated a 1,000,000-entry CRL ({:.1} MB) in {:?}",
        crl_1m.len() as f64 / 1e6,
        started.elapsed()
    );
    Setup {
        root: CertificateDer::from(pki.root.cert.der.clone()),
        intermediate: CertificateDer::from(pki.intermediate.cert.der.clone()),
        leaf: CertificateDer::from(pki.client.der.clone()),
        root_crl: pki.root_crl.der.clone(),
        crl_10k: crl_with(&pki, 10_000),
        crl_1m,
        at: pki.options.now.into(),
    }
}

fn verifier(s: &Setup, crl: &[u8]) -> Verifier {
    let mut trust = TrustStore::new();
    trust.add(s.root.clone()).unwrap();
    let mut v = Verifier::new(trust);
    v.add_ca_certificate(&s.intermediate).unwrap();
    v.add_crl(&s.root_crl).unwrap();
    v.add_crl(crl).unwrap();
    v
}

fn unix(at: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One-off figures that criterion does not measure: retained memory and the
/// `openssl crl` baseline on the same file.
fn report_load(s: &Setup) {
    let signer = CrlSigner::from_cert_der(&s.intermediate).unwrap();
    let started = Instant::now();
    let crl = VerifiedCrl::from_der(&s.crl_1m, &signer).unwrap();
    let took = started.elapsed();
    // The index's own accounting: RSS can't see it, as the allocator reuses
    // the memory the CRL generation freed.
    eprintln!(
        "vigil: 1M-entry CRL loaded (first, cold pages) in {took:?}; index retains {:.1} MiB, {} entries",
        crl.retained_bytes() as f64 / 1048576.0,
        crl.len()
    );
    drop(crl);
    let started = Instant::now();
    black_box(ring::digest::digest(&ring::digest::SHA256, &s.crl_1m));
    eprintln!(
        "floor: SHA-256 over the whole CRL takes {:?}",
        started.elapsed()
    );
    let before = rss_kib();
    let started = Instant::now();
    let owned = OwnedCertRevocationList::from_der(&s.crl_1m).unwrap();
    let took = started.elapsed();
    eprintln!(
        "webpki: OwnedCertRevocationList::from_der in {took:?} (RSS +{:.1} MiB)",
        (rss_kib().saturating_sub(before)) as f64 / 1024.0
    );
    drop(owned);

    let dir = std::env::temp_dir().join(format!("vigil-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let crl_path = dir.join("crl-1m.der");
    let ca_path = dir.join("intermediate.der");
    std::fs::write(&crl_path, &s.crl_1m).unwrap();
    std::fs::write(&ca_path, s.intermediate.as_ref()).unwrap();
    let pem = dir.join("intermediate.pem");
    let _ = std::process::Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&ca_path)
        .arg("-out")
        .arg(&pem)
        .status();
    for (label, extra) in [
        ("parse", vec![]),
        (
            "parse + verify signature",
            vec!["-CAfile".to_owned(), pem.display().to_string()],
        ),
    ] {
        let started = Instant::now();
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "command -v /usr/bin/time >/dev/null && exec /usr/bin/time -f '%M' openssl crl -inform DER -noout -in {} {} 2>&1 >/dev/null || exec openssl crl -inform DER -noout -in {} {}",
                crl_path.display(),
                extra.join(" "),
                crl_path.display(),
                extra.join(" ")
            ))
            .output();
        match status {
            Ok(out) if out.status.success() => eprintln!(
                "openssl crl -noout ({label}): {:?} {}",
                started.elapsed(),
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .last()
                    .filter(|l| l.trim().parse::<u64>().is_ok())
                    .map(|kib| format!("(max RSS {kib} KiB)"))
                    .unwrap_or_default()
            ),
            _ => eprintln!("openssl crl ({label}): not available"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn benches(c: &mut Criterion) {
    let s = setup();
    report_load(&s);
    let anchors = [anchor_from_trusted_cert(&s.root).unwrap().to_owned()];
    let intermediates = [s.intermediate.clone()];
    let at = unix(s.at);
    let root_crl =
        CertRevocationList::Owned(OwnedCertRevocationList::from_der(&s.root_crl).unwrap());
    let chain = [s.leaf.clone(), s.intermediate.clone()];
    let options = VerifyOptions::new(Usage::Client);

    let mut g = c.benchmark_group("cold");
    g.bench_function("webpki_chain_no_crl", |b| {
        b.iter(|| {
            let ee = EndEntityCert::try_from(black_box(&s.leaf)).unwrap();
            ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                at,
                KeyUsage::client_auth(),
                None,
                None,
            )
            .map(|_| ())
            .unwrap()
        })
    });
    for (label, der) in [("10k", &s.crl_10k), ("1m", &s.crl_1m)] {
        let v = verifier(&s, der);
        g.bench_function(format!("vigil_crl_{label}"), |b| {
            b.iter(|| {
                let verdict = v.verify_uncached(black_box(&chain), &options, s.at);
                assert!(verdict.is_accepted());
                verdict
            })
        });
    }
    let crl_10k = CertRevocationList::Owned(OwnedCertRevocationList::from_der(&s.crl_10k).unwrap());
    let crl_1m = CertRevocationList::Owned(OwnedCertRevocationList::from_der(&s.crl_1m).unwrap());
    for (label, crl) in [("10k", &crl_10k), ("1m", &crl_1m)] {
        let crls = [&root_crl, crl];
        if label == "1m" {
            g.sample_size(10).measurement_time(Duration::from_secs(5));
        }
        g.bench_function(format!("webpki_crl_{label}"), |b| {
            b.iter(|| {
                let revocation = RevocationOptionsBuilder::new(&crls).unwrap().build();
                let ee = EndEntityCert::try_from(black_box(&s.leaf)).unwrap();
                ee.verify_for_usage(
                    webpki::ALL_VERIFICATION_ALGS,
                    &anchors,
                    &intermediates,
                    at,
                    KeyUsage::client_auth(),
                    Some(revocation),
                    None,
                )
                .map(|_| ())
                .unwrap()
            })
        });
    }
    g.finish();
    drop(crl_1m);

    let mut g = c.benchmark_group("cached");
    let v = verifier(&s, &s.crl_1m);
    g.bench_function("vigil_crl_1m", |b| {
        b.iter(|| v.verify(black_box(&chain), &options, s.at))
    });
    g.finish();
    drop(v);

    let mut g = c.benchmark_group("crl_load");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let signer = CrlSigner::from_cert_der(&s.intermediate).unwrap();
    g.bench_function("vigil_1m", |b| {
        b.iter(|| VerifiedCrl::from_der(black_box(&s.crl_1m), &signer).unwrap())
    });
    g.bench_function("webpki_owned_1m", |b| {
        b.iter(|| OwnedCertRevocationList::from_der(black_box(&s.crl_1m)).unwrap())
    });
    g.finish();
}

criterion_group!(verify, benches);
criterion_main!(verify);
