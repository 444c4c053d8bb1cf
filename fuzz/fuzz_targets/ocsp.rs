//! Fuzz target: an OCSP response from untrusted bytes (RFC 6960 §4.2.1),
//! parsed, matched against the fixture clients' CertIDs and verified for
//! the fixture intermediate CA (RFC 6960 §4.2.2.2: issuer or delegated
//! responder), at `data/now`.
//!
//! Oracles beyond "no panic": only the intermediate's key (or a responder
//! it certified) can sign, and everything it signed says client is good and
//! revoked-client is revoked. So a response that verifies never says
//! anything else about them; and one Verifier fed the response and then the
//! fixture's good answer never calls client revoked.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::revocation::{OcspCertStatus, ParsedOcsp};
use vigil_core::{
    CertificateDer, RevocationPolicy, Status, TrustStore, Usage, Verifier, VerifyOptions,
};
use vigil_fuzz::{now, CLIENT, INTERMEDIATE, OCSP_GOOD, REVOKED_CLIENT, ROOT};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = ParsedOcsp::from_der(data) else {
        return;
    };
    let _ = (parsed.produced_at(), parsed.nonce(), parsed.signed_parts());
    for r in parsed.responses() {
        let _ = (r.status, r.this_update, r.next_update);
    }
    let client = parsed.status_for(CLIENT, INTERMEDIATE).map(|r| r.status);
    let revoked = parsed
        .status_for(REVOKED_CLIENT, INTERMEDIATE)
        .map(|r| r.status);
    let _ = parsed.status_for(INTERMEDIATE, ROOT);
    let _ = parsed.status_for(data, INTERMEDIATE);
    let _ = parsed.verify_for_issuer(ROOT, now());
    let _ = parsed.verify_for_issuer(data, now());
    if parsed.verify_for_issuer(INTERMEDIATE, now()).is_ok() {
        assert!(
            matches!(client, None | Some(OcspCertStatus::Good)),
            "a verified response forged client's status: {client:?}"
        );
        assert!(
            matches!(revoked, None | Some(OcspCertStatus::Revoked { .. })),
            "a verified response forged revoked-client's status: {revoked:?}"
        );
    }

    // The same bytes through the verifier, beside the fixture's good answer.
    let mut trust = TrustStore::new();
    if trust.add(CertificateDer::from(ROOT)).is_err() {
        return;
    }
    let mut verifier = Verifier::new(trust);
    let _ = verifier.add_ca_certificate(&CertificateDer::from(INTERMEDIATE));
    let _ = verifier.add_ocsp_response(data);
    let _ = verifier.add_ocsp_response(OCSP_GOOD);
    let options = VerifyOptions::new(Usage::Any).with_policy(RevocationPolicy::Prefer);
    let chain = [
        CertificateDer::from(CLIENT),
        CertificateDer::from(INTERMEDIATE),
    ];
    let verdict = verifier.verify_uncached(&chain, &options, now());
    let _ = verdict.to_json();
    assert_ne!(
        verdict.status,
        Status::Revoked,
        "client reported revoked: {}",
        verdict.to_json()
    );
});
