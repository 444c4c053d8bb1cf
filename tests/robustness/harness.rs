//! Encoding helpers, panic capture and failure reports, and the mutation
//! loops every test runs its mutants through.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant, SystemTime};

use vigil_core::revocation::VerifiedCrl;
use vigil_core::{CertificateDer, Verdict, Verifier, VerifyOptions};

use pki_fixtures::der::{tlv, Reader};

use crate::fixture::Fx;
use crate::support::mutate::Rng;

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `der` as PEM text with `label`.
pub(crate) fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    pki_fixtures::pem(label, der).into_bytes()
}

/// The top-level elements of a DER content.
pub(crate) fn elements(content: &[u8]) -> Vec<Vec<u8>> {
    let mut r = Reader::new(content);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (_, _, whole) = r.read_any().unwrap();
        out.push(whole.to_vec());
    }
    out
}

/// The parts of a signed structure (Certificate or CertificateList):
/// the tbs content octets and the signatureAlgorithm element.
pub(crate) fn split_signed(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, outer, _) = Reader::new(der).read_any().unwrap();
    let mut signed = Reader::new(outer);
    let (_, tbs_content, _) = signed.read_any().unwrap();
    let (_, _, alg) = signed.read_any().unwrap();
    (tbs_content.to_vec(), alg.to_vec())
}

/// The tbs element (header included) of a signed structure, if readable.
pub(crate) fn tbs_of(der: &[u8]) -> Option<&[u8]> {
    let (_, outer, _) = Reader::new(der).read_any()?;
    let (_, _, tbs) = Reader::new(outer).read_any()?;
    Some(tbs)
}

/// Signs `tbs_content` (wrapped in a SEQUENCE) with a P-256 PKCS#8 key and
/// assembles a Certificate / CertificateList.
pub(crate) fn resign(tbs_content: &[u8], alg: &[u8], pkcs8: &[u8]) -> Vec<u8> {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng).unwrap();
    let tbs = tlv(0x30, tbs_content);
    let sig = key.sign(&rng, &tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend_from_slice(sig.as_ref());
    let mut body = tbs;
    body.extend_from_slice(alg);
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// One mutant under test: where it came from, for reports.
pub(crate) struct Case<'a> {
    pub(crate) target: &'a str,
    pub(crate) seed: u64,
    pub(crate) iteration: usize,
    pub(crate) input: &'a [u8],
    pub(crate) original: &'a [u8],
    /// Also verify through the cache and compare (doubles the cost).
    pub(crate) check_cache: bool,
}

impl<'a> Case<'a> {
    /// Iteration `iteration` of a mutation loop over `original`; every
    /// [`CACHE_CHECK_EVERY`]th also goes through the verdict cache.
    pub(crate) fn mutant(
        target: &'a str,
        seed: u64,
        iteration: usize,
        input: &'a [u8],
        original: &'a [u8],
    ) -> Self {
        Self {
            target,
            seed,
            iteration,
            input,
            original,
            check_cache: iteration.is_multiple_of(CACHE_CHECK_EVERY),
        }
    }

    /// A single hand-made input (no seed, no original), cache checked.
    pub(crate) fn fixed(target: &'a str, input: &'a [u8]) -> Self {
        Self {
            target,
            seed: 0,
            iteration: 0,
            input,
            original: &[],
            check_cache: true,
        }
    }

    pub(crate) fn describe(&self) -> String {
        let mut s = format!(
            "target {}, seed {:#x}, iteration {}\ninput ({} bytes): {}",
            self.target,
            self.seed,
            self.iteration,
            self.input.len(),
            hex(self.input)
        );
        if std::env::var_os("ROBUSTNESS_VERBOSE").is_some() {
            s.push_str(&format!("\noriginal: {}", hex(self.original)));
        }
        s
    }

    /// Runs `f`, turning a panic into a failure that names the input.
    pub(crate) fn run<R>(&self, what: &str, f: impl FnOnce() -> R) -> R {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "<non-string panic payload>".into());
                panic!("PANIC in {what}: {msg}\n{}", self.describe());
            }
        }
    }

    #[track_caller]
    pub(crate) fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            panic!("PROPERTY VIOLATED: {}\n{}", what(), self.describe());
        }
    }
}

/// In the mutation loops, every this many iterations also go through the
/// verdict cache (compared with the uncached verdict).
pub(crate) const CACHE_CHECK_EVERY: usize = 4;

/// Runs `body` for iterations `0..n`, stopping early (and saying so) if the
/// time budget runs out; returns how many ran.
pub(crate) fn iterate(
    name: &str,
    n: usize,
    budget: Duration,
    mut body: impl FnMut(usize),
) -> usize {
    let start = Instant::now();
    for i in 0..n {
        if start.elapsed() > budget {
            eprintln!("{name}: time budget reached after {i} of {n} iterations");
            return i;
        }
        body(i);
    }
    eprintln!("{name}: {n} iterations in {:?}", start.elapsed());
    n
}

/// A mutation loop named `name` (see [`iterate`]): each iteration makes a
/// mutant with `make` from the generator seeded with `seed` and hands it to
/// `body` as a [`Case`] of `target` against `original`.
pub(crate) fn for_each_mutant(
    name: &str,
    target: &str,
    seed: u64,
    n: usize,
    original: &[u8],
    mut make: impl FnMut(&mut Rng) -> Vec<u8>,
    mut body: impl FnMut(&Case<'_>),
) -> usize {
    let mut rng = Rng::new(seed);
    iterate(name, n, Duration::from_secs(8), |i| {
        let mutant = make(&mut rng);
        body(&Case::mutant(target, seed, i, &mutant, original));
    })
}

/// Verifies without the cache and, when the case asks for it, through the
/// cache too (which must agree); checks the verdict serializes.
pub(crate) fn verify_both(
    case: &Case<'_>,
    v: &Verifier,
    chain: &[CertificateDer<'_>],
    opts: &VerifyOptions,
    at: SystemTime,
) -> Verdict {
    let uncached = case.run("Verifier::verify_uncached", || {
        v.verify_uncached(chain, opts, at)
    });
    if case.check_cache {
        let cached = case.run("Verifier::verify", || v.verify(chain, opts, at));
        case.check(*cached == uncached, || {
            format!(
                "cached verdict {} differs from uncached {}",
                cached.to_json(),
                uncached.to_json()
            )
        });
    }
    // The JSON contract shape must always serialize.
    case.check(!uncached.to_json().contains("\"error\""), || {
        format!("verdict does not serialize: {}", uncached.to_json())
    });
    uncached
}

/// A CRL that verified: it must say exactly what the original says.
pub(crate) fn check_same_as_original(case: &Case<'_>, fx: &Fx, crl: &VerifiedCrl) {
    case.check(crl.this_update() == fx.crl_this_update, || {
        "verified mutant has another thisUpdate".into()
    });
    case.check(crl.next_update() == fx.crl_next_update, || {
        "verified mutant has another nextUpdate".into()
    });
    case.check(crl.len() == fx.crl_entries, || {
        "verified mutant has another entry count".into()
    });
    case.check(crl.lookup(&fx.pki.revoked_client.serial).is_some(), || {
        "verified mutant no longer revokes revoked-client".into()
    });
    case.check(crl.lookup(&fx.pki.client.serial).is_none(), || {
        "verified mutant revokes client".into()
    });
}
