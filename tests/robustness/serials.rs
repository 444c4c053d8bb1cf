//! Serial numbers: a leaf re-signed with the revoked serial, non-minimal
//! and unusual serial encodings, in certificates and in CRL entries.

use vigil_core::revocation::VerifiedCrl;
use vigil_core::{CertificateDer, CrlLoad, ReasonCode};

use pki_fixtures::der::{tlv, Reader};

use crate::fixture::{fx, intermediate_key, over_intermediate, require, verifier, Fx};
use crate::harness::{elements, hex, resign, split_signed};

/// The leaf's tbsCertificate content with its serial number INTEGER
/// replaced by `serial_content`.
fn with_serial(tbs_content: &[u8], serial_content: &[u8]) -> Vec<u8> {
    // version [0] EXPLICIT, then serialNumber INTEGER.
    let mut fields = Reader::new(tbs_content);
    let (tag, _, version) = fields.read_any().unwrap();
    assert_eq!(tag, 0xa0);
    let (tag, _, serial) = fields.read_any().unwrap();
    assert_eq!(tag, 0x02);
    let after_version = version.len();
    let mut out = tbs_content[..after_version].to_vec();
    out.extend(tlv(0x02, serial_content));
    out.extend_from_slice(&tbs_content[after_version + serial.len()..]);
    out
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
