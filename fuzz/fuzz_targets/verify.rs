//! Fuzz target: `vigil verify` end to end, at library level. The input is a
//! list of records (`vigil_fuzz::records`): kind 0 a chain part (PEM bundle
//! or DER, as `vigil verify LEAF --intermediate` reads them), 1 a CRL
//! (`--crl`, PEM or DER), 2 an OCSP response (`--ocsp-response`), 3 the
//! options (policy, depth, usage). One Verifier anchored at the fixture
//! root takes the CRLs and OCSP responses and judges the chain at
//! `data/now`, cached and uncached.
//!
//! Oracles beyond "no panic": the cached and uncached verdicts agree; an
//! accepted leaf is one of the fixture's signed clients (nothing else
//! carries a signature of the intermediate's key); under `require`, only
//! the good client can be accepted (everything signed about revoked-client
//! says revoked).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::input::{parse_certificates, parse_crls};
use vigil_core::{
    CertificateDer, Depth, RevocationPolicy, TrustStore, Usage, Verifier, VerifyOptions,
};
use vigil_fuzz::{now, records, same_tbs, CLIENT, REVOKED_CLIENT, ROOT};

/// Most parts of each kind used, so one input stays cheap.
const MAX_PARTS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    let mut crls: Vec<Vec<u8>> = Vec::new();
    let mut ocsp: Vec<&[u8]> = Vec::new();
    let mut knobs = 0u8;
    for (kind, body) in records(data) {
        match kind % 4 {
            0 if chain.len() < MAX_PARTS => match parse_certificates(body, "chain") {
                Ok(certs) => chain.extend(certs.into_iter().take(MAX_PARTS)),
                // Unparseable bytes still go to the verifier, as raw DER.
                Err(_) => chain.push(CertificateDer::from(body.to_vec())),
            },
            1 if crls.len() < MAX_PARTS => match parse_crls(body, "crl") {
                Ok(found) => crls.extend(found.into_iter().take(MAX_PARTS)),
                Err(_) => crls.push(body.to_vec()),
            },
            2 if ocsp.len() < MAX_PARTS => ocsp.push(body),
            3 => knobs = body.first().copied().unwrap_or(0),
            _ => {}
        }
    }
    if chain.is_empty() {
        return;
    }

    let mut trust = TrustStore::new();
    if trust.add(CertificateDer::from(ROOT)).is_err() {
        return;
    }
    let mut verifier = Verifier::new(trust);
    for crl in &crls {
        let _ = verifier.add_crl(crl);
    }
    for answer in &ocsp {
        let _ = verifier.add_ocsp_response(answer);
    }
    let policy = match knobs % 3 {
        0 => RevocationPolicy::Require,
        1 => RevocationPolicy::Prefer,
        _ => RevocationPolicy::Off,
    };
    let options = VerifyOptions::new(match (knobs >> 2) % 3 {
        0 => Usage::Any,
        1 => Usage::Client,
        _ => Usage::Server,
    })
    .with_policy(policy)
    .with_depth(if knobs & 0x20 == 0 {
        Depth::Chain
    } else {
        Depth::Leaf
    });
    let at = now();
    let verdict = verifier.verify_uncached(&chain, &options, at);
    let _ = verdict.to_json();
    let cached = verifier.verify(&chain, &options, at);
    assert_eq!(*cached, verdict, "cached and uncached verdicts differ");
    let again = verifier.verify(&chain, &options, at);
    assert_eq!(*again, verdict, "a cached verdict changed");
    if verdict.is_accepted() {
        let leaf = chain[0].as_ref();
        let client = same_tbs(leaf, CLIENT);
        let revoked = same_tbs(leaf, REVOKED_CLIENT);
        assert!(
            client || revoked,
            "a leaf other than the fixture clients was accepted: {}",
            verdict.to_json()
        );
        assert!(
            !(revoked && policy == RevocationPolicy::Require),
            "revoked client accepted under require: {}",
            verdict.to_json()
        );
    }
});
