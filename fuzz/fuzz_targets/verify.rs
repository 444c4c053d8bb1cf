//! Fuzz target: the input as the leaf certificate of a chain verified
//! against the fixture root (`data/root.der`), with the fixture intermediate
//! and both CRLs loaded, at the fixture's generation time.
//!
//! Oracles beyond "no panic": the cached and uncached verdicts agree, and a
//! leaf is only ever accepted if its tbsCertificate is the fixture client's
//! (`data/client.der`, the seed): nothing else carries a signature of the
//! intermediate's key.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use vigil_core::{CertificateDer, RevocationPolicy, TrustStore, Usage, Verifier, VerifyOptions};

static ROOT: &[u8] = include_bytes!("../data/root.der");
static INTERMEDIATE: &[u8] = include_bytes!("../data/intermediate.der");
static ROOT_CRL: &[u8] = include_bytes!("../data/root.crl");
static INTERMEDIATE_CRL: &[u8] = include_bytes!("../data/intermediate.crl");
static CLIENT: &[u8] = include_bytes!("../data/client.der");

/// The fixture's `now` (2026-11-26T03:54:51Z): every certificate is valid
/// and both CRLs are current. Regenerating `data/` means updating this.
const NOW_UNIX: u64 = 1_795_665_291;

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let mut trust = TrustStore::new();
        trust
            .add(CertificateDer::from(ROOT))
            .expect("fuzz/data/root.der is not a usable trust anchor");
        let mut v = Verifier::new(trust);
        v.add_ca_certificate(&CertificateDer::from(INTERMEDIATE))
            .expect("fuzz/data/intermediate.der is not a certificate");
        v.add_crl(ROOT_CRL)
            .expect("fuzz/data/root.crl is not a CRL");
        v.add_crl(INTERMEDIATE_CRL)
            .expect("fuzz/data/intermediate.crl is not a CRL");
        v
    })
}

/// The tbsCertificate element (header included) of a DER certificate, by a
/// minimal walk; `None` when the bytes do not have that shape.
fn tbs(der: &[u8]) -> Option<&[u8]> {
    fn header(d: &[u8]) -> Option<(usize, usize)> {
        let first = *d.get(1)?;
        if first < 0x80 {
            return Some((2, usize::from(first)));
        }
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = d
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        Some((2 + n, len))
    }
    let (h, l) = header(der)?;
    let body = der.get(h..h.checked_add(l)?)?;
    let (th, tl) = header(body)?;
    body.get(..th.checked_add(tl)?)
}

fuzz_target!(|data: &[u8]| {
    let v = verifier();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX);
    let leaf = CertificateDer::from(data);
    let intermediate = CertificateDer::from(INTERMEDIATE);
    let with_intermediate = [leaf.clone(), intermediate];
    let alone = [leaf];
    for policy in [RevocationPolicy::Require, RevocationPolicy::Off] {
        let options = VerifyOptions {
            usage: Usage::Any,
            policy,
            ..VerifyOptions::default()
        };
        for chain in [&with_intermediate[..], &alone[..]] {
            let verdict = v.verify_uncached(chain, &options, at);
            let _ = verdict.to_json();
            let cached = v.verify(chain, &options, at);
            assert_eq!(*cached, verdict, "cached and uncached verdicts differ");
            if verdict.is_accepted() {
                assert!(
                    tbs(data).is_some() && tbs(data) == tbs(CLIENT),
                    "a leaf other than the fixture client was accepted: {}",
                    verdict.to_json()
                );
            }
        }
    }
});
