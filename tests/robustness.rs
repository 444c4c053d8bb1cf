//! Robustness of `vigil_core` against hostile input: the service never
//! panics on input, and never trusts what it could not verify.
//!
//! * Deterministic mutation testing (fixed seeds, a tiny inline xorshift
//!   PRNG, bounded iteration counts): the fixture PKI's intermediate CRL
//!   (with a revoked entry), the client certificate and the intermediate are
//!   mutated (bit flips, special bytes, truncation, insertion, deletion,
//!   duplicated ranges, tag and length rewrites) and fed to every entry point
//!   that takes bytes: `ParsedCrl::from_der` + `verify`, `Verifier::add_crl`,
//!   `input::parse_crls` / `parse_certificates` (DER and PEM),
//!   `TrustStore::add_bytes`, `Verifier::add_ca_certificate` and
//!   `Verifier::verify` with the mutant as leaf or intermediate.
//!   Every call runs under `catch_unwind`, so a panic is reported with its
//!   target, seed, iteration and the input in hex. Security properties are
//!   checked on every mutant: a CRL that differs from the original never
//!   verifies with the intermediate's key and never makes a chain accepted;
//!   a leaf or intermediate that differs from the original is never
//!   accepted; the revoked client is never accepted.
//! * "Re-signed" mutants: the signed part (tbsCertList / tbsCertificate) is
//!   mutated and then signed again with the real issuer key, so mutations
//!   get past the signature check and reach entry, extension and path
//!   processing. An authentic CRL may say anything, but a revocation by
//!   the original CRL must still stand.
//! * Edge inputs (empty, one byte, indefinite and huge lengths, deep
//!   nesting, broken PEM, whitespace), every truncation, a CRL without
//!   entries, a mixed PEM bundle, unusual serial numbers (zero, negative,
//!   over 20 octets, non-minimal), and verification at extreme times (also
//!   against a verdict cache holding an acceptance).
//!
//! The fixture keys are random per run, so the mutation sequence is
//! deterministic but the bytes it mutates are not; failures therefore print
//! the mutated input in hex (and the original with `ROBUSTNESS_VERBOSE=1`).
//! Coverage-guided fuzzing of the same entry points lives in `fuzz/` (it
//! needs a nightly toolchain).

#![allow(clippy::unwrap_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use pki_fixtures::{CrlSpec, KeyAlg, Pki, PkiOptions};
use vigil_core::input::{parse_certificates, parse_crls};
use vigil_core::revocation::{CrlSigner, ParsedCrl, VerifiedCrl};
use vigil_core::{
    CertificateDer, CrlLoad, Decision, ReasonCode, RevocationPolicy, Status, TrustStore, Usage,
    Verdict, Verifier, VerifyOptions,
};

// ---------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------

/// The fixture PKI and what the tests derive from it, built once.
struct Fx {
    pki: Pki,
    /// When every verification happens (the fixture's `now`).
    now: SystemTime,
    /// client, intermediate
    client_chain: Vec<CertificateDer<'static>>,
    /// revoked-client, intermediate
    revoked_chain: Vec<CertificateDer<'static>>,
    /// The intermediate as a CRL signer.
    signer: CrlSigner,
    /// The original intermediate CRL's thisUpdate / nextUpdate / entries.
    crl_this_update: i64,
    crl_next_update: Option<i64>,
    crl_entries: usize,
}

fn fx() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(|| {
        let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
        assert_eq!(
            pki.options.alg,
            KeyAlg::EcdsaP256,
            "re-signing assumes P-256"
        );
        let now = SystemTime::from(pki.options.now);
        let client_chain = vec![
            CertificateDer::from(pki.client.der.clone()),
            CertificateDer::from(pki.intermediate.cert.der.clone()),
        ];
        let revoked_chain = vec![
            CertificateDer::from(pki.revoked_client.der.clone()),
            CertificateDer::from(pki.intermediate.cert.der.clone()),
        ];
        let signer = CrlSigner::from_cert_der(&pki.intermediate.cert.der).unwrap();
        let crl = ParsedCrl::from_der(&pki.intermediate_crl.der)
            .unwrap()
            .verify(&signer)
            .unwrap();
        assert_eq!(crl.len(), 1);
        assert!(crl.lookup(&pki.revoked_client.serial).is_some());
        assert!(crl.lookup(&pki.client.serial).is_none());
        let fx = Fx {
            crl_this_update: crl.this_update(),
            crl_next_update: crl.next_update(),
            crl_entries: crl.len(),
            pki,
            now,
            client_chain,
            revoked_chain,
            signer,
        };
        // Baseline: the good chain is accepted, the revoked one is not.
        let v = verifier(&fx, true);
        let good = v.verify_uncached(&fx.client_chain, &require(), fx.now);
        assert!(good.is_accepted(), "baseline: {}", good.to_json());
        let bad = v.verify_uncached(&fx.revoked_chain, &require(), fx.now);
        assert_eq!(
            bad.reason,
            ReasonCode::Revoked,
            "baseline: {}",
            bad.to_json()
        );
        fx
    })
}

fn options(policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions {
        usage: Usage::Client,
        policy,
        ..VerifyOptions::default()
    }
}

fn require() -> VerifyOptions {
    options(RevocationPolicy::Require)
}

/// Root anchor, the intermediate as a known CA, the root CRL, and the
/// original intermediate CRL when `with_crl`.
fn verifier(fx: &Fx, with_crl: bool) -> Verifier {
    let mut trust = TrustStore::new();
    trust
        .add(CertificateDer::from(fx.pki.root.cert.der.clone()))
        .unwrap();
    let mut v = Verifier::new(trust);
    v.add_ca_certificate(&CertificateDer::from(fx.pki.intermediate.cert.der.clone()))
        .unwrap();
    assert_eq!(
        v.add_crl(&fx.pki.root_crl.der).unwrap(),
        CrlLoad::Verified { entries: 1 }
    );
    if with_crl {
        assert_eq!(
            v.add_crl(&fx.pki.intermediate_crl.der).unwrap(),
            CrlLoad::Verified { entries: 1 }
        );
    }
    v
}

// ---------------------------------------------------------------------------
// Deterministic randomness and mutation
// ---------------------------------------------------------------------------

/// xorshift64* (Marsaglia / Vigna): small, fast, and good enough to pick
/// mutations. Deterministic for a given seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Never zero: xorshift has an all-zero fixed point.
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`; `n` must be non-zero.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Bytes that tend to matter in DER: zero, all ones, the long-form and
/// indefinite length marker, common tags.
const INTERESTING: &[u8] = &[
    0x00, 0xff, 0x80, 0x7f, 0x81, 0x82, 0x84, 0x01, 0x30, 0x31, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a,
    0x17, 0x18, 0xa0, 0xa3, 0x1f,
];

/// Tags to swap in for an element's tag.
const TAGS: &[u8] = &[
    0x30, 0x31, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x13, 0x17, 0x18, 0x80, 0x81, 0x82,
    0x86, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0x1f, 0x3f, 0xbf, 0xff, 0x00,
];

/// Where one TLV header sits in a buffer.
#[derive(Clone, Copy, Debug)]
struct Header {
    tag_at: usize,
    /// Offset of the first length octet.
    len_at: usize,
    /// Number of length octets (1 for the short form).
    len_octets: usize,
    /// Content length.
    len: usize,
}

/// Reads a TLV header: (header length, content length), definite lengths of
/// up to 4 octets only.
fn tlv_header(data: &[u8]) -> Option<(usize, usize)> {
    let first = *data.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 || data.len() < 2 + n {
        return None;
    }
    let len = data[2..2 + n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((2 + n, len))
}

/// Every TLV header found by a lenient walk (descending into constructed
/// elements, BIT STRINGs and OCTET STRINGs that happen to hold DER).
fn headers(data: &[u8]) -> Vec<Header> {
    fn walk(data: &[u8], base: usize, depth: u32, out: &mut Vec<Header>) {
        let mut i = 0;
        while i < data.len() && out.len() < 2048 {
            let Some((hlen, len)) = tlv_header(&data[i..]) else {
                return;
            };
            let start = i + hlen;
            let Some(end) = start.checked_add(len).filter(|e| *e <= data.len()) else {
                return;
            };
            out.push(Header {
                tag_at: base + i,
                len_at: base + i + 1,
                len_octets: hlen - 1,
                len,
            });
            let tag = data[i];
            if depth < 24 {
                let content = &data[start..end];
                if tag & 0x20 != 0 || tag == 0x04 {
                    walk(content, base + start, depth + 1, out);
                } else if tag == 0x03 && content.len() > 1 {
                    walk(&content[1..], base + start + 1, depth + 1, out);
                }
            }
            i = end;
        }
    }
    let mut out = Vec::new();
    walk(data, 0, 0, &mut out);
    out
}

/// DER length octets for `len`.
fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// A TLV with `tag` around `content`.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// Replaces an element's length octets with something else: off by one,
/// zero, indefinite, non-minimal, oversized, or random.
fn mutate_length(rng: &mut Rng, data: &mut Vec<u8>, h: Header) {
    let new: Vec<u8> = match rng.below(9) {
        0 => der_len(h.len + 1),
        1 => der_len(h.len.saturating_sub(1)),
        2 => vec![0x00],
        3 => vec![0x80],
        4 => {
            // Non-minimal long form of the same length.
            let mut v = vec![0x82];
            v.extend((h.len as u16).to_be_bytes());
            v
        }
        5 => vec![0x84, 0xff, 0xff, 0xff, 0xff],
        6 => vec![0x85, 0x01, 0x00, 0x00, 0x00, 0x00],
        7 => der_len(h.len + 1 + rng.below(300)),
        _ => vec![rng.byte()],
    };
    data.splice(h.len_at..h.len_at + h.len_octets, new);
}

/// One random mutation of `data`.
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        data.push(rng.byte());
        return;
    }
    let len = data.len();
    match rng.below(12) {
        0 | 1 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        2 => {
            let i = rng.below(len);
            data[i] = rng.pick(INTERESTING);
        }
        3 => {
            let i = rng.below(len);
            data[i] = rng.byte();
        }
        4 => data.truncate(rng.below(len)),
        5 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(4);
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.below(2) == 0 {
                        rng.pick(INTERESTING)
                    } else {
                        rng.byte()
                    }
                })
                .collect();
            data.splice(at..at, bytes);
        }
        6 => {
            let at = rng.below(len);
            let n = 1 + rng.below(16.min(len - at));
            data.drain(at..at + n);
        }
        7 => {
            // Duplicate a range somewhere (repeated elements, extensions).
            let from = rng.below(len);
            let n = 1 + rng.below(64.min(len - from));
            let copy = data[from..from + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, copy);
        }
        8 | 9 => {
            let hs = headers(data);
            if hs.is_empty() {
                let i = rng.below(len);
                data[i] = rng.pick(INTERESTING);
            } else {
                let h = hs[rng.below(hs.len())];
                mutate_length(rng, data, h);
            }
        }
        10 => {
            let hs = headers(data);
            if hs.is_empty() {
                data.truncate(rng.below(len));
            } else {
                let h = hs[rng.below(hs.len())];
                data[h.tag_at] = rng.pick(TAGS);
            }
        }
        _ => {
            // Delete a whole element, or swap two adjacent ones.
            let hs = headers(data);
            if let Some(h) = (!hs.is_empty()).then(|| hs[rng.below(hs.len())]) {
                let end = (h.len_at + h.len_octets + h.len).min(len);
                data.drain(h.tag_at..end);
            } else {
                let a = rng.below(len);
                let b = rng.below(len);
                data.swap(a, b);
            }
        }
    }
}

/// 1 to 3 mutations (mostly 1) of `original`.
fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut data = original.to_vec();
    let rounds = match rng.below(8) {
        0..=4 => 1,
        5 | 6 => 2,
        _ => 3,
    };
    for _ in 0..rounds {
        mutate_once(rng, &mut data);
    }
    data
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `der` as PEM text with `label`.
fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    pki_fixtures::pem(label, der).into_bytes()
}

/// The parts of a signed structure (Certificate or CertificateList):
/// the tbs content octets and the signatureAlgorithm element.
fn split_signed(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (hlen, len) = tlv_header(der).unwrap();
    let outer = &der[hlen..hlen + len];
    let (thlen, tlen) = tlv_header(outer).unwrap();
    let tbs_content = outer[thlen..thlen + tlen].to_vec();
    let rest = &outer[thlen + tlen..];
    let (ahlen, alen) = tlv_header(rest).unwrap();
    let alg = rest[..ahlen + alen].to_vec();
    (tbs_content, alg)
}

/// The tbs element (header included) of a signed structure, if readable.
fn tbs_of(der: &[u8]) -> Option<&[u8]> {
    let (hlen, len) = tlv_header(der)?;
    let outer = der.get(hlen..hlen.checked_add(len)?)?;
    let (thlen, tlen) = tlv_header(outer)?;
    outer.get(..thlen.checked_add(tlen)?)
}

/// Signs `tbs_content` (wrapped in a SEQUENCE) with a P-256 PKCS#8 key and
/// assembles a Certificate / CertificateList.
fn resign(tbs_content: &[u8], alg: &[u8], pkcs8: &[u8]) -> Vec<u8> {
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

// ---------------------------------------------------------------------------
// Panic capture and failure reports
// ---------------------------------------------------------------------------

/// One mutant under test: where it came from, for reports.
struct Case<'a> {
    target: &'a str,
    seed: u64,
    iteration: usize,
    input: &'a [u8],
    original: &'a [u8],
    /// Also verify through the cache and compare (doubles the cost).
    check_cache: bool,
}

impl<'a> Case<'a> {
    /// Iteration `iteration` of a mutation loop over `original`; every
    /// [`CACHE_CHECK_EVERY`]th also goes through the verdict cache.
    fn mutant(
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
    fn fixed(target: &'a str, input: &'a [u8]) -> Self {
        Self {
            target,
            seed: 0,
            iteration: 0,
            input,
            original: &[],
            check_cache: true,
        }
    }

    fn describe(&self) -> String {
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
    fn run<R>(&self, what: &str, f: impl FnOnce() -> R) -> R {
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
    fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            panic!("PROPERTY VIOLATED: {}\n{}", what(), self.describe());
        }
    }
}

/// In the mutation loops, every this many iterations also go through the
/// verdict cache (compared with the uncached verdict).
const CACHE_CHECK_EVERY: usize = 4;

/// Runs `body` for iterations `0..n`, stopping early (and saying so) if the
/// time budget runs out; returns how many ran.
fn iterate(name: &str, n: usize, budget: Duration, mut body: impl FnMut(usize)) -> usize {
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
fn for_each_mutant(
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
fn verify_both(
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
fn check_same_as_original(case: &Case<'_>, fx: &Fx, crl: &VerifiedCrl) {
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

// ---------------------------------------------------------------------------
// 1. Mutated CRLs (signature intact)
// ---------------------------------------------------------------------------

const CRL_SEED: u64 = 0x5eed_0001;
const CRL_ITERATIONS: usize = 3000;
/// CRL mutants that do not parse (so that `Verifier::add_crl` refuses them
/// and the verifier stays as it was) go through the verifier and the chain
/// verifications on every this many iterations only.
const REFUSED_CRL_VERIFY_EVERY: usize = 16;

#[test]
fn mutated_crls_never_panic_and_never_verify() {
    let fx = fx();
    let original = fx.pki.intermediate_crl.der.as_slice();
    let original_tbs = tbs_of(original).unwrap();
    let (mut parsed, mut verified, mut loaded) = (0usize, 0usize, 0usize);
    for_each_mutant(
        "mutated CRLs",
        "intermediate CRL",
        CRL_SEED,
        CRL_ITERATIONS,
        original,
        |rng| mutate(rng, original),
        |case| {
            let mutant = case.input;
            let identical = mutant == original;

            // ParsedCrl::from_der + verify with the real issuer.
            let result = case.run("ParsedCrl::from_der / verify", || {
                ParsedCrl::from_der(mutant).map(|p| {
                    let _ = (p.issuer(), p.this_update(), p.next_update());
                    let _ = p.authority_key_id();
                    p.verify(&fx.signer)
                })
            });
            if let Ok(v) = &result {
                parsed += 1;
                if let Ok(crl) = v {
                    verified += 1;
                    case.check(identical || tbs_of(mutant) == Some(original_tbs), || {
                        "a CRL whose tbsCertList differs verified with the issuer's key".into()
                    });
                    case.check(identical, || {
                        "a CRL that differs from the original (outside tbsCertList) verified".into()
                    });
                    check_same_as_original(case, fx, crl);
                }
            }
            let _ = case.run("VerifiedCrl::from_der", || {
                VerifiedCrl::from_der(mutant, &fx.signer).map(|c| c.len())
            });

            // The input layer, DER and PEM.
            let raw = case.run("parse_crls (DER)", || parse_crls(mutant, "mutant"));
            if let Ok(list) = &raw {
                case.check(list.len() == 1 && list[0] == mutant, || {
                    "parse_crls (DER) did not return the input".into()
                });
            }
            let wrapped = pem("X509 CRL", mutant);
            let from_pem = case.run("parse_crls (PEM)", || parse_crls(&wrapped, "mutant"));
            if !mutant.is_empty() {
                case.check(
                    from_pem
                        .as_ref()
                        .is_ok_and(|l| l.len() == 1 && l[0] == mutant),
                    || format!("parse_crls (PEM) did not round-trip: {from_pem:?}"),
                );
            }
            let _ = case.run("parse_certificates (CRL DER)", || {
                parse_certificates(mutant, "mutant")
            });

            // The verifier: a mutant alone must not make anything accepted,
            // and must never make the revoked client accepted.
            if result.is_err() && !case.iteration.is_multiple_of(REFUSED_CRL_VERIFY_EVERY) {
                // Unparsable: `Verifier::add_crl` refuses it before anything
                // changes; the verifier paths run on a sample only.
                return;
            }
            {
                let mut v = verifier(fx, false);
                let load = case.run("Verifier::add_crl", || v.add_crl(mutant));
                case.check(load.is_err() == result.is_err(), || {
                    format!("ParsedCrl::from_der and Verifier::add_crl disagree: {load:?}")
                });
                if let Ok(CrlLoad::Verified { entries }) = &load {
                    loaded += 1;
                    case.check(identical, || {
                        format!("a mutated CRL was loaded as verified ({entries} entries)")
                    });
                }
                let good = verify_both(case, &v, &fx.client_chain, &require(), fx.now);
                case.check(!good.is_accepted() || identical, || {
                    format!("client accepted on a mutated CRL alone: {}", good.to_json())
                });
                let bad = verify_both(case, &v, &fx.revoked_chain, &require(), fx.now);
                case.check(!bad.is_accepted(), || {
                    format!("revoked client accepted: {}", bad.to_json())
                });
                if let Ok(CrlLoad::Rejected(e)) = &load {
                    // "prefer" soft-fails unknown status, never a CRL that
                    // failed verification against the issuer's key.
                    let soft = verify_both(
                        case,
                        &v,
                        &fx.revoked_chain,
                        &options(RevocationPolicy::Prefer),
                        fx.now,
                    );
                    case.check(!soft.is_accepted(), || {
                        format!(
                            "revoked client accepted under prefer with a rejected CRL ({e}): {}",
                            soft.to_json()
                        )
                    });
                }
            }
        },
    );
    eprintln!("mutated CRLs: {parsed} parsed, {verified} verified, {loaded} loaded as verified");
}

// ---------------------------------------------------------------------------
// 2. Re-signed CRL mutants (mutations get past the signature)
// ---------------------------------------------------------------------------

const RESIGNED_CRL_SEED: u64 = 0x5eed_0002;
const RESIGNED_CRL_ITERATIONS: usize = 1500;

#[test]
fn resigned_crl_mutants_never_panic_and_never_unrevoke() {
    let fx = fx();
    let original = fx.pki.intermediate_crl.der.as_slice();
    let (tbs_content, alg) = split_signed(original);
    let key = intermediate_key(fx);
    // Sanity: re-signing the unchanged tbs gives a CRL that verifies.
    let same = resign(&tbs_content, &alg, key);
    let crl = VerifiedCrl::from_der(&same, &fx.signer).unwrap();
    assert_eq!(crl.len(), 1);

    let (mut verified, mut revoked_still) = (0usize, 0usize);
    for_each_mutant(
        "re-signed CRLs",
        "re-signed intermediate CRL",
        RESIGNED_CRL_SEED,
        RESIGNED_CRL_ITERATIONS,
        original,
        |rng| resign(&mutate(rng, &tbs_content), &alg, key),
        |case| {
            let mutant = case.input;
            let result = case.run("ParsedCrl::from_der / verify", || {
                ParsedCrl::from_der(mutant).map(|p| p.verify(&fx.signer))
            });
            if let Ok(Ok(crl)) = &result {
                verified += 1;
                case.run("VerifiedCrl accessors", || {
                    let _ = (crl.issuer(), crl.number(), crl.scope(), crl.delta_base());
                    let _ = (crl.unsupported(), crl.has_freshest_crl(), crl.is_empty());
                    let _ = (crl.retained_bytes(), crl.signer_fingerprint());
                    let _ = crl.lookup(&fx.pki.revoked_client.serial);
                    let _ = crl.lookup(&fx.pki.client.serial);
                    let _ = crl.lookup(&[]);
                    let _ = crl.lookup(&[0u8; 40]);
                    let _ = format!("{crl:?}");
                });
            }

            if result.is_err() && !case.iteration.is_multiple_of(REFUSED_CRL_VERIFY_EVERY) {
                // Unparsable: `Verifier::add_crl` refuses it before anything
                // changes; the verifier paths run on a sample only.
                return;
            }

            // Loaded next to the original: any verdict, no panic, and the
            // original's revocation still stands.
            let mut v = verifier(fx, true);
            let _ = case.run("Verifier::add_crl", || v.add_crl(mutant));
            let bad = verify_both(case, &v, &fx.revoked_chain, &require(), fx.now);
            case.check(bad.reason == ReasonCode::Revoked, || {
                format!(
                    "an extra CRL from the same issuer changed a revocation: {}",
                    bad.to_json()
                )
            });
            revoked_still += 1;
            let _ = verify_both(case, &v, &fx.client_chain, &require(), fx.now);

            // Loaded alone: any verdict, no panic; if the client is accepted,
            // its status must come from a CRL that said "good".
            let mut alone = verifier(fx, false);
            let _ = case.run("Verifier::add_crl (alone)", || alone.add_crl(mutant));
            let good = verify_both(case, &alone, &fx.client_chain, &require(), fx.now);
            if good.is_accepted() {
                case.check(
                    good.status == Status::Good
                        && good
                            .revocation
                            .iter()
                            .all(|r| r.status == vigil_core::CertStatus::Good),
                    || format!("accepted without a good status: {}", good.to_json()),
                );
            }
            let _ = verify_both(
                case,
                &alone,
                &fx.revoked_chain,
                &options(RevocationPolicy::Prefer),
                fx.now,
            );
        },
    );
    eprintln!("re-signed CRLs: {verified} verified; revocation held in {revoked_still}");
}

// ---------------------------------------------------------------------------
// 3. Mutated certificates (signature intact)
// ---------------------------------------------------------------------------

const CERT_SEED: u64 = 0x5eed_0003;
const CERT_ITERATIONS: usize = 2000;
const INTERMEDIATE_SEED: u64 = 0x5eed_0004;
const INTERMEDIATE_ITERATIONS: usize = 1000;

/// Feeds a certificate mutant to the input layer and the trust store;
/// returns whether it was read as a certificate from PEM but not from DER
/// (allowed: only DER input is checked for a single outer SEQUENCE by
/// Vigil itself; counted for the report).
fn certificate_inputs(case: &Case<'_>, mutant: &[u8]) -> bool {
    let raw = case.run("parse_certificates (DER)", || {
        parse_certificates(mutant, "mutant")
    });
    let wrapped = pem("CERTIFICATE", mutant);
    let from_pem = case.run("parse_certificates (PEM)", || {
        parse_certificates(&wrapped, "mutant")
    });
    if let Ok(list) = &raw {
        case.check(list.len() == 1 && list[0].as_ref() == mutant, || {
            "parse_certificates (DER) did not return the input".into()
        });
        case.check(from_pem.is_ok(), || {
            "a certificate read as DER is refused when wrapped in PEM".into()
        });
    }
    if let Ok(list) = &from_pem {
        case.check(list.len() == 1 && list[0].as_ref() == mutant, || {
            "parse_certificates (PEM) did not return the input".into()
        });
    }
    let _ = case.run("parse_crls (certificate)", || parse_crls(mutant, "mutant"));
    let _ = case.run("TrustStore::add_bytes (DER)", || {
        TrustStore::new().add_bytes(mutant, "mutant")
    });
    let _ = case.run("TrustStore::add_bytes (PEM)", || {
        TrustStore::new().add_bytes(&wrapped, "mutant")
    });
    let _ = case.run("CrlSigner::from_cert_der", || {
        CrlSigner::from_cert_der(mutant).map(|s| (s.subject().len(), s.key_id().is_some()))
    });
    from_pem.is_ok() && raw.is_err()
}

#[test]
fn mutated_leaves_never_panic_and_are_never_accepted() {
    let fx = fx();
    let original = fx.pki.client.der.as_slice();
    let v = verifier(fx, true);
    let (mut parsed, mut pem_only) = (0usize, 0usize);
    for_each_mutant(
        "mutated leaves",
        "client certificate (leaf)",
        CERT_SEED,
        CERT_ITERATIONS,
        original,
        |rng| mutate(rng, original),
        |case| {
            let mutant = case.input;
            pem_only += usize::from(certificate_inputs(case, mutant));
            if parse_certificates(mutant, "m").is_ok() {
                parsed += 1;
            }
            let chain = over_intermediate(fx, mutant);
            for usage in [Usage::Client, Usage::Any] {
                let opts = VerifyOptions { usage, ..require() };
                let verdict = verify_both(case, &v, &chain, &opts, fx.now);
                case.check(!verdict.is_accepted() || mutant == original, || {
                    format!("a mutated leaf was accepted: {}", verdict.to_json())
                });
            }
            let off = verify_both(case, &v, &chain, &options(RevocationPolicy::Off), fx.now);
            case.check(!off.is_accepted() || mutant == original, || {
                format!(
                    "a mutated leaf was accepted (policy off): {}",
                    off.to_json()
                )
            });
            // The mutant alone, and as its own issuer.
            let _ = verify_both(case, &v, &chain[..1], &require(), fx.now);
        },
    );
    eprintln!(
        "mutated leaves: {parsed} still parse as certificates \
         ({pem_only} more only when wrapped in PEM)"
    );
}

#[test]
fn mutated_intermediates_never_panic_and_are_never_accepted() {
    let fx = fx();
    let original = fx.pki.intermediate.cert.der.as_slice();
    for_each_mutant(
        "mutated intermediates",
        "intermediate certificate",
        INTERMEDIATE_SEED,
        INTERMEDIATE_ITERATIONS,
        original,
        |rng| mutate(rng, original),
        |case| {
            let mutant = case.input;
            let identical = mutant == original;
            let _ = certificate_inputs(case, mutant);

            // Presented as the chain's intermediate.
            let mut v = verifier(fx, true);
            let chain = [fx.client_chain[0].clone(), CertificateDer::from(mutant)];
            let verdict = verify_both(case, &v, &chain, &require(), fx.now);
            case.check(!verdict.is_accepted() || identical, || {
                format!("a mutated intermediate was accepted: {}", verdict.to_json())
            });

            // Known as a CA (a would-be CRL signer): it can't unrevoke and
            // can't break the good chain.
            let known = case.run("Verifier::add_ca_certificate", || {
                v.add_ca_certificate(&CertificateDer::from(mutant))
            });
            if known.is_err() {
                // Refused: nothing changed for the verifier (and the same
                // bytes are refused below); the trust store is all that's left.
                as_anchor(case, mutant);
                return;
            }
            let good = verify_both(case, &v, &fx.client_chain, &require(), fx.now);
            case.check(good.is_accepted(), || {
                format!(
                    "an extra (mutated) CA certificate broke the good chain: {}",
                    good.to_json()
                )
            });
            let bad = verify_both(case, &v, &fx.revoked_chain, &require(), fx.now);
            case.check(bad.reason == ReasonCode::Revoked, || {
                format!(
                    "an extra (mutated) CA certificate changed a revocation: {}",
                    bad.to_json()
                )
            });

            // Known as a CA before the CRL arrives: the CRL must still be
            // verified with the real intermediate only.
            let mut late = verifier(fx, false);
            let _ = case.run("Verifier::add_ca_certificate (before CRL)", || {
                late.add_ca_certificate(&CertificateDer::from(mutant))
            });
            let _ = case.run("Verifier::add_crl (after mutated CA)", || {
                late.add_crl(&fx.pki.intermediate_crl.der)
            });
            let bad = verify_both(case, &late, &fx.revoked_chain, &require(), fx.now);
            case.check(bad.reason == ReasonCode::Revoked, || {
                format!(
                    "a mutated CA certificate loaded first changed a revocation: {}",
                    bad.to_json()
                )
            });

            as_anchor(case, mutant);
        },
    );
}

/// A mutant as a trust anchor: whatever it anchors, no panic.
fn as_anchor(case: &Case<'_>, mutant: &[u8]) {
    let fx = fx();
    let mut trust = TrustStore::new();
    let added = case.run("TrustStore::add", || {
        trust.add(CertificateDer::from(mutant.to_vec()))
    });
    if added.is_ok() {
        let v = Verifier::new(trust);
        let _ = verify_both(case, &v, &fx.client_chain[..1], &require(), fx.now);
    }
}

// ---------------------------------------------------------------------------
// 4. Re-signed certificate mutants
// ---------------------------------------------------------------------------

const RESIGNED_CERT_SEED: u64 = 0x5eed_0005;
const RESIGNED_CERT_ITERATIONS: usize = 1000;

#[test]
fn resigned_leaf_mutants_never_panic() {
    let fx = fx();
    let original = fx.pki.client.der.as_slice();
    let (tbs_content, alg) = split_signed(original);
    let key = intermediate_key(fx);
    let v = verifier(fx, true);
    // Sanity: the unchanged tbs, re-signed, is accepted.
    let same = resign(&tbs_content, &alg, key);
    let chain = over_intermediate(fx, same);
    assert!(v.verify_uncached(&chain, &require(), fx.now).is_accepted());

    let mut accepted = 0usize;
    for_each_mutant(
        "re-signed leaves",
        "re-signed client certificate",
        RESIGNED_CERT_SEED,
        RESIGNED_CERT_ITERATIONS,
        original,
        |rng| resign(&mutate(rng, &tbs_content), &alg, key),
        |case| {
            let mutant = case.input;
            let _ = certificate_inputs(case, mutant);
            let chain = over_intermediate(fx, mutant);
            let verdict = verify_both(case, &v, &chain, &require(), fx.now);
            if verdict.is_accepted() {
                accepted += 1;
                // Accepted under "require": every certificate has a verified,
                // fresh "good" from a CRL, and it is not the revoked serial.
                case.check(
                    verdict.status == Status::Good
                        && verdict.revocation.len() == 2
                        && verdict
                            .revocation
                            .iter()
                            .all(|r| r.status == vigil_core::CertStatus::Good),
                    || format!("accepted without good status: {}", verdict.to_json()),
                );
                case.check(
                    verdict.chain.first().map(|c| c.serial.as_str())
                        != Some(fx.pki.revoked_client.serial_hex().as_str()),
                    || format!("revoked serial accepted: {}", verdict.to_json()),
                );
            }
            let _ = verify_both(
                case,
                &v,
                &chain,
                &VerifyOptions {
                    usage: Usage::Server,
                    name: Some("client.vigil.test".into()),
                    ..require()
                },
                fx.now,
            );
        },
    );
    eprintln!("re-signed leaves: {accepted} accepted");
}

/// The leaf's tbsCertificate content with its serial number INTEGER
/// replaced by `serial_content`.
fn with_serial(tbs_content: &[u8], serial_content: &[u8]) -> Vec<u8> {
    // version [0] EXPLICIT, then serialNumber INTEGER.
    let (vh, vl) = tlv_header(tbs_content).unwrap();
    assert_eq!(tbs_content[0], 0xa0);
    let after_version = vh + vl;
    let (sh, sl) = tlv_header(&tbs_content[after_version..]).unwrap();
    assert_eq!(tbs_content[after_version], 0x02);
    let mut out = tbs_content[..after_version].to_vec();
    out.extend(tlv(0x02, serial_content));
    out.extend_from_slice(&tbs_content[after_version + sh + sl..]);
    out
}

/// The intermediate's private key (PKCS#8), which signs leaves and CRLs.
fn intermediate_key(fx: &Fx) -> &[u8] {
    &fx.pki.intermediate.cert.key_pkcs8_der
}

/// `leaf` followed by the fixture's intermediate.
fn over_intermediate<'a>(fx: &Fx, leaf: impl Into<CertificateDer<'a>>) -> [CertificateDer<'a>; 2] {
    [leaf.into(), fx.client_chain[1].clone()]
}

/// The client certificate with its serial INTEGER content replaced by
/// `serial`, signed again by the intermediate, followed by the intermediate.
fn client_with_serial(fx: &Fx, serial: &[u8]) -> [CertificateDer<'static>; 2] {
    let (tbs_content, alg) = split_signed(&fx.pki.client.der);
    let leaf = resign(
        &with_serial(&tbs_content, serial),
        &alg,
        intermediate_key(fx),
    );
    over_intermediate(fx, leaf)
}

#[test]
fn a_leaf_with_the_revoked_serial_is_revoked() {
    // The issuer signs a second certificate with the revoked serial: it is
    // the revoked certificate as far as the CRL is concerned.
    let fx = fx();
    let v = verifier(fx, true);
    let chain = client_with_serial(fx, &fx.pki.revoked_client.serial);
    let verdict = v.verify_uncached(&chain, &require(), fx.now);
    assert_eq!(verdict.reason, ReasonCode::Revoked, "{}", verdict.to_json());
}

#[test]
fn non_minimal_encodings_of_a_revoked_serial_are_not_accepted() {
    // The same number as a revoked serial, encoded with redundant leading
    // sign octets (not DER, but webpki reads serials leniently). RFC 5280
    // identifies certificates by serial *number*, so the CRL entry applies:
    // such a leaf must not be accepted. (Found by this suite: the leaf's raw
    // serial octets used to miss the CRL index, which holds minimal forms.)
    let fx = fx();
    let revoked = fx.pki.revoked_client.serial.as_slice();
    assert!(revoked[0] & 0x80 == 0, "fixture serials are positive");
    let negative: &[u8] = &[0x80, 0x01];
    let cases: [(&str, Vec<u8>, &[u8]); 4] = [
        ("one leading 0x00", [&[0x00][..], revoked].concat(), revoked),
        (
            "two leading 0x00",
            [&[0x00, 0x00][..], revoked].concat(),
            revoked,
        ),
        ("negative, leading 0xff", vec![0xff, 0x80, 0x01], negative),
        (
            "negative, two leading 0xff",
            vec![0xff, 0xff, 0x80, 0x01],
            negative,
        ),
    ];
    for (name, cert_serial, listed) in cases {
        let mut v = verifier(fx, false);
        let crl = crl_listing(fx, &[listed]);
        assert!(matches!(
            v.add_crl(&crl),
            Ok(CrlLoad::Verified { entries: 1 })
        ));
        let chain = client_with_serial(fx, &cert_serial);
        let verdict = v.verify_uncached(&chain, &require(), fx.now);
        assert!(
            !verdict.is_accepted(),
            "{name}: serial {} accepted although {} is revoked: {}",
            hex(&cert_serial),
            hex(listed),
            verdict.to_json()
        );
    }
}

/// The top-level elements of a DER content.
fn elements(mut content: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (h, l) = tlv_header(content).unwrap();
        out.push(content[..h + l].to_vec());
        content = &content[h + l..];
    }
    out
}

/// The fixture intermediate CRL re-issued (signed by the intermediate's real
/// key) with exactly these entries: serial INTEGER content octets, each
/// revoked at thisUpdate without extensions.
fn crl_listing(fx: &Fx, serials: &[&[u8]]) -> Vec<u8> {
    let (tbs_content, alg) = split_signed(&fx.pki.intermediate_crl.der);
    // version, signature, issuer, thisUpdate, nextUpdate, revoked, [0] exts
    let fields = elements(&tbs_content);
    assert_eq!(fields.len(), 7, "unexpected CRL layout");
    let entries: Vec<u8> = serials
        .iter()
        .flat_map(|serial| {
            let mut entry = tlv(0x02, serial);
            entry.extend_from_slice(&fields[3]);
            tlv(0x30, &entry)
        })
        .collect();
    let mut content = fields[..5].concat();
    content.extend(tlv(0x30, &entries));
    content.extend_from_slice(&fields[6]);
    resign(&content, &alg, intermediate_key(fx))
}

#[test]
fn unusual_serials_are_looked_up_exactly() {
    // Serials webpki reads leniently: zero, negative, over 20 octets. The
    // issuer signs a leaf with each and a CRL listing it: revoked; with a
    // CRL listing something else: good. No panic either way.
    let fx = fx();
    let long: Vec<u8> = (1..=40).collect();
    let serials: [(&str, &[u8]); 6] = [
        ("zero", &[0x00]),
        ("minus one", &[0xff]),
        ("negative", &[0x80, 0x01, 0x02]),
        ("21 octets", &long[..21]),
        ("40 octets", &long),
        ("one", &[0x01]),
    ];
    for (name, serial) in serials {
        let chain = client_with_serial(fx, serial);
        let listed = crl_listing(fx, &[&fx.pki.revoked_client.serial, serial]);
        let unlisted = crl_listing(fx, &[&fx.pki.revoked_client.serial, &[0x7f, 0x7f]]);
        for (crl, expect_revoked) in [(listed, true), (unlisted, false)] {
            let mut v = verifier(fx, false);
            let load = v.add_crl(&crl);
            assert!(
                matches!(load, Ok(CrlLoad::Verified { entries: 2 })),
                "{name}: {load:?}"
            );
            let verdict = v.verify_uncached(&chain, &require(), fx.now);
            if expect_revoked {
                assert_eq!(
                    verdict.reason,
                    ReasonCode::Revoked,
                    "{name}: {}",
                    verdict.to_json()
                );
            } else {
                // Accepted, or refused by path validation; never revoked.
                assert_ne!(
                    verdict.reason,
                    ReasonCode::Revoked,
                    "{name}: {}",
                    verdict.to_json()
                );
            }
        }
    }
}

#[test]
fn a_crl_with_a_non_der_entry_serial_is_refused_whole() {
    // One entry with a non-minimal INTEGER: the whole CRL is unusable, so
    // nothing it covers is "good" (fail closed).
    let fx = fx();
    let mut padded = vec![0x00];
    padded.extend_from_slice(&fx.pki.client.serial);
    let crl = crl_listing(fx, &[&fx.pki.revoked_client.serial, &padded]);
    assert!(VerifiedCrl::from_der(&crl, &fx.signer).is_err());
    let mut v = verifier(fx, false);
    let _ = v.add_crl(&crl);
    for chain in [&fx.client_chain, &fx.revoked_chain] {
        let verdict = v.verify_uncached(chain, &require(), fx.now);
        assert!(!verdict.is_accepted(), "{}", verdict.to_json());
    }
}

// ---------------------------------------------------------------------------
// 5. Mutated PEM text
// ---------------------------------------------------------------------------

const PEM_SEED: u64 = 0x5eed_0006;
const PEM_ITERATIONS: usize = 3000;

#[test]
fn mutated_pem_text_never_panics() {
    let fx = fx();
    let mut bundle = fx.pki.client.pem.clone().into_bytes();
    bundle.extend_from_slice(fx.pki.intermediate_crl.pem.as_bytes());
    bundle.extend_from_slice(fx.pki.intermediate.cert.pem.as_bytes());
    // Binary mutations, then text-level damage too: lines dropped, dashes,
    // CRs, NULs.
    let damage = |rng: &mut Rng| {
        let mut mutant = mutate(rng, &bundle);
        match rng.below(6) {
            0 => {
                let at = rng.below(mutant.len() + 1);
                mutant.splice(at..at, b"\r".iter().copied());
            }
            1 => {
                let at = rng.below(mutant.len() + 1);
                mutant.splice(at..at, b"-----".iter().copied());
            }
            2 => {
                if let Some(nl) = mutant.iter().position(|b| *b == b'\n') {
                    mutant.remove(nl);
                }
            }
            3 => {
                let at = rng.below(mutant.len() + 1);
                mutant.splice(at..at, b"-----BEGIN X509 CRL-----\n".iter().copied());
            }
            _ => {}
        }
        mutant
    };
    for_each_mutant(
        "mutated PEM",
        "PEM bundle (certificate, CRL, certificate)",
        PEM_SEED,
        PEM_ITERATIONS,
        &bundle,
        damage,
        |case| {
            let mutant = case.input;
            if let Ok(certs) = case.run("parse_certificates", || {
                parse_certificates(mutant, "mutant")
            }) {
                if !certs.is_empty() {
                    let v = verifier(fx, true);
                    let _ = verify_both(case, &v, &certs, &require(), fx.now);
                }
            }
            if let Ok(crls) = case.run("parse_crls", || parse_crls(mutant, "mutant")) {
                let mut v = verifier(fx, false);
                for crl in &crls {
                    let _ = case.run("Verifier::add_crl", || v.add_crl(crl));
                }
            }
            let _ = case.run("TrustStore::add_bytes", || {
                TrustStore::new().add_bytes(mutant, "mutant")
            });
        },
    );
}

// ---------------------------------------------------------------------------
// 6. Edge inputs
// ---------------------------------------------------------------------------

/// Properly nested SEQUENCEs, `depth` deep, around nothing.
fn nested_sequences(depth: usize) -> Vec<u8> {
    let mut der = Vec::new();
    for _ in 0..depth {
        der = tlv(0x30, &der);
    }
    der
}

/// Feeds `input` to every entry point; everything must be an error (or a
/// rejection), nothing may panic. `crl_outer_ok` allows `parse_crls` to
/// succeed: it only checks the outer structure by design.
fn assert_refused_everywhere(name: &str, input: &[u8], crl_outer_ok: bool) {
    let fx = fx();
    let case = Case::fixed(name, input);
    case.check(
        case.run("parse_certificates", || parse_certificates(input, name))
            .is_err(),
        || "parse_certificates accepted it".into(),
    );
    let crls = case.run("parse_crls", || parse_crls(input, name));
    case.check(crls.is_err() || crl_outer_ok, || {
        format!("parse_crls accepted it: {crls:?}")
    });
    case.check(
        case.run("ParsedCrl::from_der", || {
            ParsedCrl::from_der(input).is_err()
        }),
        || "ParsedCrl::from_der accepted it".into(),
    );
    case.check(
        case.run("TrustStore::add_bytes", || {
            TrustStore::new().add_bytes(input, name).is_err()
        }),
        || "TrustStore::add_bytes accepted it".into(),
    );
    case.check(
        case.run("CrlSigner::from_cert_der", || {
            CrlSigner::from_cert_der(input).is_err()
        }),
        || "CrlSigner::from_cert_der accepted it".into(),
    );
    let mut v = verifier(fx, true);
    case.check(
        case.run("Verifier::add_crl", || v.add_crl(input).is_err()),
        || "Verifier::add_crl accepted it".into(),
    );
    case.check(
        case.run("Verifier::add_ca_certificate", || {
            v.add_ca_certificate(&CertificateDer::from(input)).is_err()
        }),
        || "Verifier::add_ca_certificate accepted it".into(),
    );
    let leaf = over_intermediate(fx, input);
    let verdict = verify_both(&case, &v, &leaf, &require(), fx.now);
    case.check(verdict.verdict == Decision::Rejected, || {
        format!("accepted as a leaf: {}", verdict.to_json())
    });
    // Junk among the intermediates next to the real one: ignored.
    let inter = [
        fx.client_chain[0].clone(),
        CertificateDer::from(input),
        fx.client_chain[1].clone(),
    ];
    let verdict = verify_both(&case, &v, &inter, &require(), fx.now);
    case.check(verdict.is_accepted(), || {
        format!(
            "a junk extra intermediate broke the good chain: {}",
            verdict.to_json()
        )
    });
}

#[test]
fn edge_inputs_are_refused_without_panic() {
    // The client certificate's base64 on one line.
    let client_b64: String = fx()
        .pki
        .client
        .pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("empty", Vec::new(), false),
        ("one byte 0x30", vec![0x30], false),
        ("one byte 0x00", vec![0x00], false),
        ("one byte 0xff", vec![0xff], false),
        ("empty SEQUENCE", vec![0x30, 0x00], true),
        ("indefinite length", vec![0x30, 0x80], false),
        (
            "indefinite length with EOC",
            vec![0x30, 0x80, 0x00, 0x00],
            false,
        ),
        (
            "huge length",
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            false,
        ),
        (
            "huge 8-octet length",
            vec![0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            false,
        ),
        ("high tag number", vec![0x3f, 0x81, 0x01, 0x00], false),
        ("0x30 x 100000", vec![0x30; 100_000], false),
        ("0x30 0x80 x 50000", [0x30, 0x80].repeat(50_000), false),
        ("nested SEQUENCE x 64", nested_sequences(64), true),
        ("nested SEQUENCE x 5000", nested_sequences(5000), true),
        ("whitespace only", b" \t\r\n  \n".to_vec(), false),
        ("NUL bytes", vec![0u8; 64], false),
        (
            "PEM BEGIN without END",
            format!("-----BEGIN CERTIFICATE-----\n{client_b64}\n").into_bytes(),
            false,
        ),
        (
            "PEM CRL BEGIN without END",
            format!("-----BEGIN X509 CRL-----\n{client_b64}\n").into_bytes(),
            false,
        ),
        (
            "PEM invalid base64",
            b"-----BEGIN CERTIFICATE-----\n!!!not*base64@@@\n-----END CERTIFICATE-----\n".to_vec(),
            false,
        ),
        (
            "PEM CRL invalid base64",
            b"-----BEGIN X509 CRL-----\n!!!not*base64@@@\n-----END X509 CRL-----\n".to_vec(),
            false,
        ),
        (
            "PEM mismatched END",
            format!("-----BEGIN CERTIFICATE-----\n{client_b64}\n-----END X509 CRL-----\n")
                .into_bytes(),
            false,
        ),
        (
            "PEM empty body",
            b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_vec(),
            false,
        ),
        (
            "PEM unknown label",
            format!("-----BEGIN FOO-----\n{client_b64}\n-----END FOO-----\n").into_bytes(),
            false,
        ),
        ("lone BEGIN marker", b"-----BEGIN ".to_vec(), false),
        (
            "non-UTF-8 garbage",
            vec![0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28],
            false,
        ),
    ];
    for (name, input, crl_outer_ok) in &cases {
        assert_refused_everywhere(name, input, *crl_outer_ok);
    }
}

#[test]
fn truncations_of_every_length_are_refused() {
    // Every strict prefix of the CRL and the client certificate.
    let fx = fx();
    let v = verifier(fx, true);
    for (name, original) in [
        ("CRL prefix", fx.pki.intermediate_crl.der.as_slice()),
        ("certificate prefix", fx.pki.client.der.as_slice()),
    ] {
        for n in 0..original.len() {
            let input = &original[..n];
            let case = Case {
                iteration: n,
                original,
                ..Case::fixed(name, input)
            };
            case.check(
                case.run("ParsedCrl::from_der", || {
                    ParsedCrl::from_der(input).is_err()
                }),
                || "a truncated input parsed as a CRL".into(),
            );
            case.check(
                case.run("parse_certificates", || {
                    parse_certificates(input, name).is_err()
                }),
                || "a truncated input parsed as a certificate".into(),
            );
            case.check(
                case.run("parse_crls", || parse_crls(input, name).is_err()),
                || "a truncated input passed parse_crls".into(),
            );
            let chain = over_intermediate(fx, input);
            let verdict = case.run("Verifier::verify_uncached", || {
                v.verify_uncached(&chain, &require(), fx.now)
            });
            case.check(!verdict.is_accepted(), || {
                format!("a truncated leaf was accepted: {}", verdict.to_json())
            });
        }
    }
}

#[test]
fn a_crl_without_entries_verifies_and_revokes_nothing() {
    // Not an error: a CRL with no entries is the normal state of most CAs.
    let fx = fx();
    let empty = fx
        .pki
        .intermediate
        .crl(&CrlSpec::new(&fx.pki.options))
        .unwrap();
    assert!(empty.revoked_serials.is_empty());
    let crl = ParsedCrl::from_der(&empty.der)
        .unwrap()
        .verify(&fx.signer)
        .unwrap();
    assert!(crl.is_empty());
    assert_eq!(crl.len(), 0);
    assert!(crl.lookup(&fx.pki.client.serial).is_none());
    assert!(crl.lookup(&fx.pki.revoked_client.serial).is_none());

    let mut v = verifier(fx, false);
    assert_eq!(
        v.add_crl(&empty.der).unwrap(),
        CrlLoad::Verified { entries: 0 }
    );
    let good = v.verify_uncached(&fx.client_chain, &require(), fx.now);
    assert!(good.is_accepted(), "{}", good.to_json());

    // An empty revokedCertificates SEQUENCE (RFC 5280 says to omit it, but
    // it means the same), signed by the real issuer: no panic, no entries.
    let (tbs_content, alg) = split_signed(&empty.der);
    let fields = elements(&tbs_content);
    // version, signature, issuer, thisUpdate, nextUpdate, [0] extensions
    assert_eq!(fields.len(), 6, "unexpected CRL layout");
    let mut content: Vec<u8> = fields[..5].concat();
    content.extend([0x30, 0x00]);
    content.extend_from_slice(&fields[5]);
    let crafted = resign(&content, &alg, intermediate_key(fx));
    match VerifiedCrl::from_der(&crafted, &fx.signer) {
        Ok(crl) => assert!(crl.is_empty()),
        Err(e) => eprintln!("empty revokedCertificates SEQUENCE refused: {e}"),
    }
}

#[test]
fn a_mixed_pem_bundle_is_split_by_kind() {
    let fx = fx();
    let mut bundle = String::from("some preamble text\n");
    bundle.push_str(&fx.pki.intermediate_crl.pem);
    bundle.push_str(&fx.pki.client.pem);
    bundle.push_str(&fx.pki.root_crl.pem);
    bundle.push_str("trailing text\n");
    let certs = parse_certificates(bundle.as_bytes(), "bundle").unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].as_ref(), fx.pki.client.der.as_slice());
    let crls = parse_crls(bundle.as_bytes(), "bundle").unwrap();
    assert_eq!(
        crls,
        vec![
            fx.pki.intermediate_crl.der.clone(),
            fx.pki.root_crl.der.clone()
        ]
    );

    // A certificate where a CRL is expected and vice versa: clear errors.
    assert!(parse_crls(fx.pki.client.pem.as_bytes(), "cert").is_err());
    assert!(parse_certificates(fx.pki.intermediate_crl.pem.as_bytes(), "crl").is_err());
    // As DER, a CRL is not a certificate (parse_crls only checks the outer
    // SEQUENCE, so a certificate passes there; ParsedCrl refuses it).
    assert!(parse_certificates(&fx.pki.intermediate_crl.der, "crl").is_err());
    assert!(ParsedCrl::from_der(&fx.pki.client.der).is_err());
    assert!(TrustStore::new()
        .add_bytes(fx.pki.intermediate_crl.pem.as_bytes(), "crl")
        .is_err());
}

// ---------------------------------------------------------------------------
// 7. Extreme times
// ---------------------------------------------------------------------------

#[test]
fn extreme_times_reject_the_good_chain_without_panic() {
    let fx = fx();
    let v = verifier(fx, true);
    let day = Duration::from_secs(86_400);
    // 9999-12-31T23:59:59Z
    let year_9999 = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    // (name, time, the reasons it must be rejected for: any when `None`)
    let mut times: Vec<(&str, SystemTime, Option<&[ReasonCode]>)> = vec![
        (
            "UNIX_EPOCH",
            SystemTime::UNIX_EPOCH,
            Some(&[ReasonCode::NotYetValid]),
        ),
        (
            "1969-12-31",
            SystemTime::UNIX_EPOCH - day,
            Some(&[ReasonCode::NotYetValid]),
        ),
        ("year 9999", year_9999, Some(&[ReasonCode::Expired])),
    ];
    // Representable extremes of SystemTime on this platform.
    let epoch = SystemTime::UNIX_EPOCH;
    let extremes = [
        (
            "35000 years before 1970",
            epoch.checked_sub(Duration::from_secs(1 << 40)),
        ),
        (
            "i64::MAX seconds",
            epoch.checked_add(Duration::from_secs(i64::MAX as u64)),
        ),
        (
            "u64::MAX seconds",
            epoch.checked_add(Duration::from_secs(u64::MAX)),
        ),
    ];
    times.extend(
        extremes
            .into_iter()
            .filter_map(|(name, t)| Some((name, t?, None))),
    );
    let policies = [
        RevocationPolicy::Require,
        RevocationPolicy::Prefer,
        RevocationPolicy::Off,
    ];
    for (name, at, expected) in &times {
        for policy in policies {
            let case = Case::fixed(name, &[]);
            let verdict = verify_both(&case, &v, &fx.client_chain, &options(policy), *at);
            assert_eq!(
                verdict.verdict,
                Decision::Rejected,
                "{name}: {}",
                verdict.to_json()
            );
            if let Some(expected) = expected {
                assert!(
                    expected.contains(&verdict.reason),
                    "{name} ({policy}): {}",
                    verdict.to_json()
                );
            }
        }
    }
    // A verifier loaded with data, asked at extreme times, then at the
    // right time: extreme lookups must not poison the cache.
    let good = verify_both(
        &Case::fixed("after extremes", &[]),
        &v,
        &fx.client_chain,
        &require(),
        fx.now,
    );
    assert!(good.is_accepted(), "{}", good.to_json());

    // The reverse: an accepted verdict is now cached; asked again at the
    // extreme times (and just after the CRL's nextUpdate), the cache must
    // not answer with it.
    let cached = v.verify(&fx.client_chain, &require(), fx.now);
    assert!(cached.is_accepted(), "{}", cached.to_json());
    let after_next_update = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(fx.crl_next_update.unwrap() + 1).unwrap());
    let mut later: Vec<(&str, SystemTime)> = times.iter().map(|(n, t, _)| (*n, *t)).collect();
    later.push(("just after nextUpdate", after_next_update));
    for (name, at) in later {
        let verdict = v.verify(&fx.client_chain, &require(), at);
        assert_eq!(
            verdict.verdict,
            Decision::Rejected,
            "{name}, after a cached acceptance: {}",
            verdict.to_json()
        );
    }
    let stale = v.verify(&fx.client_chain, &require(), after_next_update);
    assert_eq!(
        stale.reason,
        ReasonCode::RevocationDataStale,
        "{}",
        stale.to_json()
    );
}
