//! NIST PKITS (2011) sections 4.1-4.7 and 4.14-4.15 through the library:
//! every case gives PKITS's expected result, or fails closed with an
//! explicit `unsupported_*` reason. Nothing PKITS rejects is ever accepted.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::SystemTime;

use pki_fixtures::{pkits_cases, pkits_dir, PkitsCase, PKITS_ANCHOR, PKITS_TIME};
use vigil_core::{CertificateDer, RevocationPolicy, TrustStore, Verifier, VerifyOptions};

/// Valid-by-PKITS cases that Vigil rejects because it does not implement the
/// feature they exercise, with the reason it gives. Pinned, so that support
/// gained or lost shows up here.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("4.1.4", "unsupported_signature_algorithm"),
    ("4.1.5", "unsupported_signature_algorithm"),
    ("4.2.3", "unsupported_certificate_encoding"),
    ("4.3.3", "unsupported_name_matching"),
    ("4.3.4", "unsupported_name_matching"),
    ("4.3.5", "unsupported_name_matching"),
    ("4.3.6", "unsupported_certificate_encoding"),
    ("4.3.10", "unsupported_name_matching"),
    ("4.3.11", "unsupported_name_matching"),
    ("4.6.8", "unsupported_ca_end_entity"),
    ("4.6.14", "unsupported_ca_end_entity"),
    ("4.6.15", "unsupported_self_issued_intermediate"),
    ("4.6.17", "unsupported_self_issued_intermediate"),
    ("4.14.13", "unsupported_ca_end_entity"),
    ("4.14.30", "unsupported_crl_signer"),
];

fn run(case: &PkitsCase) -> (bool, String) {
    let dir = pkits_dir();
    let read = |sub: &str, f: &str| std::fs::read(dir.join(sub).join(f)).unwrap();
    let mut trust = TrustStore::new();
    trust
        .add(CertificateDer::from(read("certs", PKITS_ANCHOR)))
        .unwrap();
    let mut verifier = Verifier::new(trust);
    let mut chain = vec![CertificateDer::from(read("certs", &case.ee))];
    for c in &case.certs {
        let der = CertificateDer::from(read("certs", c));
        verifier.add_ca_certificate(&der).unwrap();
        chain.push(der);
    }
    for crl in &case.crls {
        verifier.add_crl(&read("crls", crl)).unwrap();
    }
    let at: SystemTime =
        time::OffsetDateTime::parse(PKITS_TIME, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .into();
    let options = VerifyOptions::default().with_policy(RevocationPolicy::Require);
    let verdict = verifier.verify(&chain, &options, at);
    (verdict.is_accepted(), verdict.reason.to_string())
}

#[test]
fn pkits_sections_give_expected_results_or_fail_closed() {
    let cases = pkits_cases(&pkits_dir()).unwrap();
    assert_eq!(cases.len(), 121, "sections 4.1-4.7 and 4.14-4.15");
    let unsupported: BTreeMap<&str, &str> = UNSUPPORTED.iter().copied().collect();
    let mut per_section: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut problems = Vec::new();
    for case in &cases {
        let (accepted, reason) = run(case);
        let counts = per_section.entry(case.section().to_owned()).or_default();
        counts.0 += 1;
        if accepted == case.expected_valid {
            counts.1 += 1;
            if unsupported.contains_key(case.id.as_str()) {
                problems.push(format!(
                    "{} {} now passes: drop it from UNSUPPORTED",
                    case.id, case.name
                ));
            }
            continue;
        }
        if accepted {
            problems.push(format!(
                "{} {}: ACCEPTED a path PKITS rejects",
                case.id, case.name
            ));
            continue;
        }
        counts.2 += 1;
        match unsupported.get(case.id.as_str()) {
            Some(expected) if *expected == reason => {}
            _ => problems.push(format!(
                "{} {}: rejected with {reason}, not a pinned unsupported_* reason",
                case.id, case.name
            )),
        }
        assert!(reason.starts_with("unsupported_"), "{}: {reason}", case.id);
    }
    for (section, (total, pass, unsupported)) in &per_section {
        eprintln!(
            "PKITS {section}: {pass}/{total} as expected, {unsupported} unsupported (fail closed)"
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
