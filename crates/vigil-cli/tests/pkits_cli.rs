//! NIST PKITS (2011) sections 4.1-4.7 and 4.14-4.15 through the `vigil`
//! binary, as the issue asks: `vigil verify --revocation require --at
//! 2020-01-01T00:00:00Z`. Valid cases must exit 0, or exit 1 with an
//! `unsupported_*` reason; invalid cases must exit 1.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use pki_fixtures::{pkits_cases, pkits_dir, PKITS_ANCHOR, PKITS_TIME};

#[test]
fn pkits_through_the_binary() {
    let dir = pkits_dir();
    let cases = pkits_cases(&dir).unwrap();
    assert_eq!(cases.len(), 121);
    let mut failures = Vec::new();
    let (mut as_expected, mut unsupported) = (0, 0);
    for case in &cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.current_dir(&dir).args([
            "verify",
            "--revocation",
            "require",
            "--at",
            PKITS_TIME,
            "--format",
            "json",
            "--anchor",
            &format!("certs/{PKITS_ANCHOR}"),
        ]);
        for c in &case.certs {
            cmd.args(["--intermediate", &format!("certs/{c}")]);
        }
        for crl in &case.crls {
            cmd.args(["--crl", &format!("crls/{crl}")]);
        }
        cmd.arg(format!("certs/{}", case.ee));
        let out = cmd.output().unwrap();
        let json: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "{}: no JSON ({e}); exit {:?}; stderr {}",
                    case.id,
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
                continue;
            }
        };
        let reason = json["reason"].as_str().unwrap_or_default().to_owned();
        let accepted = json["verdict"] == "accepted";
        assert_eq!(
            out.status.code(),
            Some(if accepted { 0 } else { 1 }),
            "{}",
            case.id
        );
        match (case.expected_valid, accepted) {
            (true, true) | (false, false) => as_expected += 1,
            (true, false) if reason.starts_with("unsupported_") => unsupported += 1,
            (true, false) => {
                failures.push(format!("{} {}: rejected with {reason}", case.id, case.name))
            }
            (false, true) => failures.push(format!("{} {}: ACCEPTED", case.id, case.name)),
        }
    }
    eprintln!("PKITS via vigil verify: {as_expected} as expected, {unsupported} unsupported (fail closed)");
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(as_expected >= 106, "regression: {as_expected} as expected");
}
