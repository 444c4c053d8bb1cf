//! Fuzz target: the input layer. Untrusted bytes (PEM bundle or DER) read
//! as certificates and as CRLs, and whatever comes out fed onwards: to the
//! CRL parser, a CRL signer and a trust store.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::input::{parse_certificates, parse_crls};
use vigil_core::revocation::{CrlSigner, ParsedCrl};
use vigil_core::TrustStore;

fuzz_target!(|data: &[u8]| {
    if let Ok(certs) = parse_certificates(data, "fuzz") {
        assert!(!certs.is_empty(), "parse_certificates returned Ok(empty)");
        let mut trust = TrustStore::new();
        for cert in certs {
            if let Ok(signer) = CrlSigner::from_cert_der(cert.as_ref()) {
                let _ = (signer.subject(), signer.key_id());
            }
            let _ = trust.add(cert);
        }
        let _ = (trust.len(), trust.is_empty());
    }
    if let Ok(crls) = parse_crls(data, "fuzz") {
        assert!(!crls.is_empty(), "parse_crls returned Ok(empty)");
        for crl in &crls {
            if let Ok(parsed) = ParsedCrl::from_der(crl) {
                let _ = (parsed.issuer(), parsed.this_update(), parsed.next_update());
            }
        }
    }
    let _ = TrustStore::new().add_bytes(data, "fuzz");
});
