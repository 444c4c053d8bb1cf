//! Unit tests of CRL parsing and verification.

use super::*;

#[test]
fn dotted_oids() {
    assert_eq!(dotted(oid::CRL_NUMBER), "2.5.29.20");
    assert_eq!(dotted(oid::AUTHORITY_INFO_ACCESS), "1.3.6.1.5.5.7.1.1");
}

/// What to do with the cRLNumber extension when re-issuing a CRL.
#[derive(Clone, Copy)]
enum Number {
    Keep,
    Drop,
    Critical,
}

/// The fixture intermediate's CRL, re-issued (re-signed with the
/// intermediate's P-256 key) with its cRLNumber kept, dropped or marked
/// critical, optionally with a deltaCRLIndicator added or without any
/// extension at all (a v1 CRL). Returns (CRL DER, signer certificate DER).
fn reissued(number: Number, delta: bool, v1: bool) -> (Vec<u8>, Vec<u8>) {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).unwrap();
    let ca = pki.ca("intermediate").unwrap();
    let original = &pki.crl("intermediate.crl").unwrap().der;
    let mut outer = Reader::new(der::single(original, tag::SEQUENCE).unwrap());
    let tbs = outer.read(tag::SEQUENCE).unwrap();
    let alg = outer.read_element(tag::SEQUENCE).unwrap();
    let mut r = Reader::new(tbs);
    let version = r.read_element(tag::INTEGER).unwrap();
    let mut content = if v1 { Vec::new() } else { version.to_vec() };
    while r.peek_tag().is_some() {
        let (t, value, whole) = r.read_any().unwrap();
        if t != tag::CONTEXT_0 {
            content.extend_from_slice(whole);
            continue;
        }
        if v1 {
            continue;
        }
        let mut list = Vec::new();
        for_each_extension(
            der::single(value, tag::SEQUENCE).unwrap(),
            |id, critical, v| {
                let mut ext = der::encode(tag::OID, id);
                let critical = match (id == oid::CRL_NUMBER, number) {
                    (true, Number::Drop) => return Ok(()),
                    (true, Number::Critical) => true,
                    _ => critical,
                };
                if critical {
                    ext.extend(der::encode(tag::BOOLEAN, &[0xff]));
                }
                ext.extend(der::encode(tag::OCTET_STRING, v));
                list.extend(der::encode(tag::SEQUENCE, &ext));
                Ok(())
            },
        )
        .unwrap();
        if delta {
            // deltaCRLIndicator (RFC 5280 §5.2.4), critical, BaseCRLNumber 1.
            let mut ext = der::encode(tag::OID, oid::DELTA_CRL_INDICATOR);
            ext.extend(der::encode(tag::BOOLEAN, &[0xff]));
            ext.extend(der::encode(
                tag::OCTET_STRING,
                &der::encode(tag::INTEGER, &[1]),
            ));
            list.extend(der::encode(tag::SEQUENCE, &ext));
        }
        content.extend(der::encode(
            tag::CONTEXT_0,
            &der::encode(tag::SEQUENCE, &list),
        ));
    }
    let tbs = der::encode(tag::SEQUENCE, &content);
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ca.cert.key_pkcs8_der,
        &rng,
    )
    .unwrap();
    let signature = key.sign(&rng, &tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend_from_slice(signature.as_ref());
    let mut body = tbs;
    body.extend_from_slice(alg);
    body.extend(der::encode(tag::BIT_STRING, &bits));
    (der::encode(tag::SEQUENCE, &body), ca.cert.der.clone())
}

/// A CRL long enough to be indexed while its signature is checked on
/// another thread: the index is kept only when the signature verifies.
#[test]
fn a_large_crl_is_used_only_when_its_signature_verifies() {
    let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).unwrap();
    let spec = pki_fixtures::CrlSpec::synthetic(&pki.options, 40_000);
    let crl = pki.intermediate.crl(&spec).unwrap().der;
    let parsed = ParsedCrl::from_der(&crl).unwrap();
    assert!(parsed.revoked.map_or(0, <[u8]>::len) >= PARALLEL_CHECK_BYTES);
    let signer = CrlSigner::from_cert_der(&pki.intermediate.cert.der).unwrap();
    let verified = VerifiedCrl::from_der(&crl, &signer).unwrap();
    let mut listed = vec![0x5a; 12];
    listed.extend_from_slice(&39_999u32.to_be_bytes());
    assert_eq!(verified.len(), 40_000);
    assert!(verified.lookup(&listed).is_some());

    // The last octet of the signature changed: refused, not indexed.
    let mut bad = crl.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(matches!(
        VerifiedCrl::from_der(&bad, &signer),
        Err(CrlError::BadSignature | CrlError::Malformed { .. })
    ));
    // A CA of the same name with another key (a forgery).
    let forged = pki
        .intermediate
        .forged_crl(&spec, pki_fixtures::KeyAlg::EcdsaP256)
        .unwrap()
        .der;
    assert_eq!(
        VerifiedCrl::from_der(&forged, &signer).err(),
        Some(CrlError::BadSignature)
    );
}

#[test]
fn a_crl_with_a_non_critical_crl_number_is_accepted() {
    let (crl, signer) = reissued(Number::Keep, false, false);
    let signer = CrlSigner::from_cert_der(&signer).unwrap();
    let verified = VerifiedCrl::from_der(&crl, &signer).unwrap();
    assert!(verified.number().is_some());
}

#[test]
fn a_crl_without_crl_number_is_refused() {
    // RFC 5280 §5.2.3: conforming CRL issuers MUST include cRLNumber.
    let (crl, signer) = reissued(Number::Drop, false, false);
    assert_eq!(
        ParsedCrl::from_der(&crl).err(),
        Some(CrlError::MissingCrlNumber)
    );
    let signer = CrlSigner::from_cert_der(&signer).unwrap();
    assert_eq!(
        VerifiedCrl::from_der(&crl, &signer).err(),
        Some(CrlError::MissingCrlNumber)
    );
}

#[test]
fn a_crl_with_a_critical_crl_number_is_refused() {
    // RFC 5280 §5.2.3: "This extension MUST NOT be marked critical."
    let (crl, _) = reissued(Number::Critical, false, false);
    assert_eq!(
        ParsedCrl::from_der(&crl).err(),
        Some(CrlError::CriticalCrlNumber)
    );
}

#[test]
fn a_v1_crl_has_no_crl_number_and_is_refused() {
    let (crl, _) = reissued(Number::Keep, false, true);
    assert_eq!(
        ParsedCrl::from_der(&crl).err(),
        Some(CrlError::MissingCrlNumber)
    );
}

#[test]
fn a_delta_crl_needs_its_own_crl_number() {
    // RFC 5280 §5.2.4: a delta CRL carries cRLNumber as well.
    let (crl, _) = reissued(Number::Drop, true, false);
    assert_eq!(
        ParsedCrl::from_der(&crl).err(),
        Some(CrlError::MissingCrlNumber)
    );
    let (crl, signer) = reissued(Number::Keep, true, false);
    let signer = CrlSigner::from_cert_der(&signer).unwrap();
    let verified = VerifiedCrl::from_der(&crl, &signer).unwrap();
    assert_eq!(verified.delta_base(), Some(&[0x01][..]));
}

#[test]
fn garbage_is_a_clear_error() {
    for bad in [
        &b""[..],
        b"\x30",
        b"\x30\x00",
        b"hello world",
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
    ] {
        assert!(
            matches!(ParsedCrl::from_der(bad), Err(CrlError::Malformed { .. })),
            "{bad:?}"
        );
    }
}
