//! Fuzz target: a CRL from untrusted bytes, parsed and then verified with a
//! fixed signer (the fixture intermediate CA in `data/intermediate.der`).
//!
//! Oracle beyond "no panic": nobody but the intermediate's key can sign, so
//! any input that verifies must say exactly what the fixture CRL
//! (`data/intermediate.crl`, the seed) says.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_core::revocation::{CrlSigner, ParsedCrl, VerifiedCrl};

/// The signer: the fixture intermediate CA certificate (DER).
static INTERMEDIATE: &[u8] = include_bytes!("../data/intermediate.der");
/// The CRL it signed (DER): the seed, and the reference for the oracle.
static INTERMEDIATE_CRL: &[u8] = include_bytes!("../data/intermediate.crl");

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
    let Ok(parsed) = ParsedCrl::from_der(data) else {
        return;
    };
    let _ = (parsed.issuer(), parsed.this_update(), parsed.next_update());
    let _ = parsed.authority_key_id();
    let Ok(crl) = parsed.verify(&fixture.signer) else {
        return;
    };
    // Everything a verified CRL exposes must be usable.
    let _ = (crl.issuer(), crl.number(), crl.scope(), crl.delta_base());
    let _ = (
        crl.unsupported(),
        crl.has_freshest_crl(),
        crl.retained_bytes(),
    );
    let _ = crl.lookup(&[]);
    let _ = crl.lookup(&[0x01]);
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
});
