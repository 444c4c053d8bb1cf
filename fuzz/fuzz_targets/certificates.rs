//! Fuzz target: the input layer (`vigil_core::input`, what `vigil verify
//! --anchor/--intermediate/--crl` and the stores read). Untrusted bytes (PEM
//! bundle or DER) read as certificates and as CRLs, and whatever comes out
//! fed onwards: to the CRL parser, a CRL signer, a trust store, the
//! CDP/AIA extraction that decides what gets fetched, and the issuer test.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::input::{parse_certificates, parse_crls};
use vigil_core::revocation::{revocation_sources, CrlSigner, ParsedCrl};
use vigil_core::TrustStore;
use vigil_fuzz::{INTERMEDIATE, ROOT};

fuzz_target!(|data: &[u8]| {
    if let Ok(certs) = parse_certificates(data, "fuzz") {
        assert!(!certs.is_empty(), "parse_certificates returned Ok(empty)");
        let mut trust = TrustStore::new();
        for cert in certs {
            if let Ok(signer) = CrlSigner::from_cert_der(cert.as_ref()) {
                let _ = (signer.subject(), signer.key_id());
            }
            if let Ok(sources) = revocation_sources(cert.as_ref()) {
                let _ = format!("{sources:?}");
            }
            // Only the root's key signed the intermediate; nothing else
            // with the fixture's names may pass as issued by them.
            if vigil_core::is_issued_by(cert.as_ref(), ROOT) {
                assert!(
                    vigil_fuzz::same_tbs(cert.as_ref(), INTERMEDIATE)
                        || vigil_fuzz::same_tbs(cert.as_ref(), ROOT),
                    "a certificate the root did not sign passed as issued by it"
                );
            }
            let _ = vigil_core::is_issued_by(INTERMEDIATE, cert.as_ref());
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
