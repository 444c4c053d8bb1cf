//! Fuzz target: a CRL from untrusted bytes, parsed (RFC 5280 §5.1), then
//! verified with a fixed signer (the fixture intermediate CA in
//! `data/intermediate.der`, §6.3.3 (f), (g)), looked up, and loaded into a
//! Verifier beside the fixture CRL to judge the fixture chain.
//!
//! Oracles beyond "no panic": nobody but the intermediate's key can sign,
//! so any input that verifies says what `data/intermediate.crl` (the seed)
//! says; and whatever the input, the verifier never calls the good client
//! revoked nor the revoked client good.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_core::revocation::{CrlSigner, ParsedCrl, VerifiedCrl};
use vigil_core::{
    CertificateDer, RevocationPolicy, Status, TrustStore, Usage, Verifier, VerifyOptions,
};
use vigil_fuzz::{
    now, serial, CLIENT, INTERMEDIATE, INTERMEDIATE_CRL, REVOKED_CLIENT, ROOT, ROOT_CRL,
};

struct Fixture {
    signer: CrlSigner,
    reference: VerifiedCrl,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let signer = CrlSigner::from_cert_der(INTERMEDIATE)
            .expect("fuzz/data/intermediate.der is not a certificate");
        let reference = VerifiedCrl::from_der(INTERMEDIATE_CRL, &signer)
            .expect("fuzz/data/intermediate.crl does not verify with intermediate.der");
        Fixture { signer, reference }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    judge(data);
    let Ok(parsed) = ParsedCrl::from_der(data) else {
        return;
    };
    let _ = (parsed.issuer(), parsed.this_update(), parsed.next_update());
    let _ = (parsed.authority_key_id(), parsed.number());
    let _ = parsed.check_signature(&fixture.signer);
    let Ok(crl) = parsed.verify(&fixture.signer) else {
        return;
    };
    // Everything a verified CRL exposes must be usable.
    let _ = (crl.issuer(), crl.number(), crl.scope(), crl.delta_base());
    let _ = (
        crl.unsupported(),
        crl.has_freshest_crl(),
        crl.retained_bytes(),
        crl.is_indirect(),
    );
    let _ = crl.lookup(&[]);
    let _ = crl.lookup(&[0x01]);
    let _ = crl.lookup(data.get(..20).unwrap_or(data));
    let _ = format!("{crl:?}");

    let reference = &fixture.reference;
    assert_eq!(
        crl.this_update(),
        reference.this_update(),
        "forged thisUpdate"
    );
    assert_eq!(
        crl.next_update(),
        reference.next_update(),
        "forged nextUpdate"
    );
    assert_eq!(crl.len(), reference.len(), "forged entry count");
    assert_eq!(crl.number(), reference.number(), "forged cRLNumber");
    for cert in [CLIENT, REVOKED_CLIENT] {
        let s = serial(cert);
        assert_eq!(crl.lookup(&s), reference.lookup(&s), "forged entry");
    }
});

/// The input beside the fixture CRLs in a verifier, judging both clients.
fn judge(data: &[u8]) {
    let mut trust = TrustStore::new();
    if trust.add(CertificateDer::from(ROOT)).is_err() {
        return;
    }
    let mut verifier = Verifier::new(trust);
    let _ = verifier.add_ca_certificate(&CertificateDer::from(INTERMEDIATE));
    let _ = verifier.add_crl(data);
    let _ = verifier.add_crl(ROOT_CRL);
    let _ = verifier.add_crl(INTERMEDIATE_CRL);
    let _ = verifier.add_crl(data);
    let options = VerifyOptions::new(Usage::Any).with_policy(RevocationPolicy::Require);
    for (leaf, revoked) in [(CLIENT, false), (REVOKED_CLIENT, true)] {
        let chain = [
            CertificateDer::from(leaf),
            CertificateDer::from(INTERMEDIATE),
        ];
        let verdict = verifier.verify_uncached(&chain, &options, now());
        if revoked {
            assert!(
                !verdict.is_accepted(),
                "revoked client accepted: {}",
                verdict.to_json()
            );
        } else {
            assert_ne!(
                verdict.status,
                Status::Revoked,
                "client revoked: {}",
                verdict.to_json()
            );
        }
    }
}
