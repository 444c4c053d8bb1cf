//! Edge inputs (empty, one byte, indefinite and huge lengths, deep
//! nesting, broken PEM, whitespace) and every truncation.

use vigil_core::input::{parse_certificates, parse_crls};
use vigil_core::revocation::{CrlSigner, ParsedCrl};
use vigil_core::{CertificateDer, Decision, TrustStore};

use pki_fixtures::der::tlv;

use crate::fixture::{fx, over_intermediate, require, verifier};
use crate::harness::{verify_both, Case};

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
