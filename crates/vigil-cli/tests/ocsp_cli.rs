//! `vigil verify --ocsp-response` end to end: the real binary over the
//! fixture PKI of `pki-fixtures` written to a temporary directory, with DER
//! OCSP responses produced by the real `openssl ocsp` responder (an OpenSSL
//! CA index file, `-reqin`/`-respout`, no network).
//!
//! The fixture PKI is generated at the real current time, because openssl
//! stamps thisUpdate with the real clock. `root.crl` is always given, so the
//! intermediate is covered by a CRL and the leaf only by OCSP (no
//! `intermediate.crl` unless a test says so).
//!
//! The `openssl` binary is required: without it these tests fail, they do
//! not skip.

#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pki_fixtures::openssl::{corrupt_response_signature, CertIdHash, IndexEntry, OcspQuery};
use pki_fixtures::{roles, Ca, Cert, CertSpec, KeyAlg, LeafUsage, Pki, PkiDir, PkiOptions, Reason};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

mod cli_support;

use cli_support::{assert_usage_error, Run};

/// Role (file stem) of the delegated responder: a leaf of `intermediate`
/// with only id-kp-OCSPSigning.
const RESPONDER: &str = "ocsp-responder";
/// Role of a self-signed CA with the intermediate's exact subject name but
/// another key: it signs responses whose responderID names the issuer.
const IMPOSTOR: &str = "impostor";

/// `tryLater` (RFC 6960 §4.2.1): responseStatus 3, no responseBytes.
const TRY_LATER: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x03];

/// The fixture PKI plus the certificates these tests add.
struct Fixture {
    pki: Pki,
    responder: Cert,
    impostor: Ca,
    /// When the index says the revoked certificates were revoked.
    revoked_at: OffsetDateTime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
        let responder = CertSpec::leaf(RESPONDER, "ocsp.vigil.test", &pki.options)
            .with_usage(LeafUsage::OcspSigning);
        let responder = pki.intermediate.issue_leaf(&responder).unwrap();
        let impostor = Ca::new_root(
            IMPOSTOR,
            "Vigil Test Intermediate CA",
            KeyAlg::EcdsaP256,
            &pki.options,
        )
        .unwrap();
        let revoked_at = pki.options.now - Duration::hours(3);
        Fixture {
            pki,
            responder,
            impostor,
            revoked_at,
        }
    })
}

/// A certificate of the fixture or one of those added here.
fn cert(role: &str) -> &'static Cert {
    let fx = fixture();
    fx.pki
        .cert(role)
        .or_else(|| {
            [&fx.responder, &fx.impostor.cert]
                .into_iter()
                .find(|c| c.name == role)
        })
        .unwrap_or_else(|| panic!("no role {role}"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    pki_fixtures::rfc3339(t).unwrap()
}

/// The current time, whole seconds, RFC 3339: `--at` for fresh answers.
fn now_text() -> String {
    let now = OffsetDateTime::now_utc();
    rfc3339(now - Duration::nanoseconds(i64::from(now.nanosecond())))
}

/// `--at` eight days from now: past `-ndays 7`.
fn eight_days_later_text() -> String {
    rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::days(8))
}

/// An index line: `role` is good.
fn good(role: &str) -> IndexEntry {
    IndexEntry::good(cert(role))
}

/// An index line: `role` was revoked (keyCompromise) at `revoked_at`.
fn revoked(role: &str) -> IndexEntry {
    IndexEntry::revoked(
        cert(role),
        fixture().revoked_at,
        Some(Reason::KeyCompromise),
    )
}

/// A request about `role` (issued by `intermediate`), answered by the
/// intermediate from `index`.
fn ask(role: &str, index: Vec<IndexEntry>) -> OcspQuery {
    OcspQuery::from_issuer(&fixture().pki.intermediate.cert)
        .about(&cert(role).pem)
        .entries(index)
}

/// The usual request: about the client, which the index says is good.
fn ask_good_client() -> OcspQuery {
    ask(roles::CLIENT, vec![good(roles::CLIENT)])
}

/// A temporary directory with the fixture's files (`Pki::write_to`) and
/// the DER responses of openssl.
struct Workdir {
    files: PkiDir,
    next: Cell<usize>,
}

impl Workdir {
    fn new() -> Self {
        Self {
            files: PkiDir::new(&fixture().pki).unwrap(),
            next: Cell::new(0),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.files.file(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        self.files.write(name, bytes).unwrap()
    }

    /// Asks openssl (see `pki_fixtures::openssl`) and returns the path of
    /// the DER response.
    fn respond(&self, query: OcspQuery) -> PathBuf {
        let der = query.respond().unwrap_or_else(|e| panic!("{e}"));
        let n = self.next.get();
        self.next.set(n + 1);
        self.write(&format!("response-{n}.der"), &der)
    }

    /// `vigil verify <role>.chain.pem --offline --anchor root.pem --crl
    /// root.crl`: only the given responses count.
    fn verify(&self, role: &str) -> Run {
        Run::new()
            .arg("verify")
            .arg("--offline")
            .arg(self.path(&format!("{role}.chain.pem")))
            .arg("--anchor")
            .arg(self.path("root.pem"))
            .arg("--crl")
            .arg(self.path(roles::ROOT_CRL))
    }

    /// [`Workdir::verify`] with these responses, `--at` now.
    fn verify_now(&self, role: &str, responses: &[&Path]) -> Run {
        responses
            .iter()
            .fold(self.verify(role), |run, r| run.ocsp(r))
            .at(&now_text())
    }
}

impl Run {
    fn ocsp(self, response: &Path) -> Self {
        self.arg("--ocsp-response").arg(response)
    }

    fn crl(self, w: &Workdir, name: &str) -> Self {
        self.arg("--crl").arg(w.path(name))
    }

    fn at(self, at: &str) -> Self {
        self.arg("--at").arg(at)
    }

    fn policy(self, policy: &str) -> Self {
        self.arg("--revocation").arg(policy)
    }

    /// Runs with `--format json`: the exit status, the verdict and stderr.
    fn json(self) -> (i32, Value, String) {
        let (out, verdict) = self.json_output();
        (out.code.unwrap(), verdict, out.stderr)
    }
}

#[track_caller]
fn assert_verdict(
    got: &(i32, Value, String),
    code: i32,
    verdict: &str,
    status: &str,
    reason: &str,
) {
    let (c, v, stderr) = got;
    assert_eq!(
        (
            *c,
            v["verdict"].as_str(),
            v["status"].as_str(),
            v["reason"].as_str()
        ),
        (code, Some(verdict), Some(status), Some(reason)),
        "unexpected verdict: {v}\nstderr: {stderr}"
    );
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
}

#[track_caller]
fn accepted(got: &(i32, Value, String), status: &str, reason: &str) {
    assert_verdict(got, 0, "accepted", status, reason);
}

#[track_caller]
fn rejected(got: &(i32, Value, String), status: &str, reason: &str) {
    assert_verdict(got, 1, "rejected", status, reason);
}

/// The leaf's revocation result, after checking the intermediate's is a
/// good answer from `root.crl`.
#[track_caller]
fn leaf_result<'v>(got: &'v (i32, Value, String), role: &str) -> &'v Value {
    let fx = fixture();
    let v = &got.1;
    let list = v["revocation"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(
        list[0]["serial"].as_str(),
        Some(cert(role).serial_hex().as_str())
    );
    assert_eq!(
        (
            list[1]["serial"].as_str(),
            list[1]["source"].as_str(),
            list[1]["status"].as_str()
        ),
        (
            Some(fx.pki.intermediate.cert.serial_hex().as_str()),
            Some("crl"),
            Some("good")
        ),
        "{v}"
    );
    &list[0]
}

/// source, status and reason of one revocation result.
fn summary(r: &Value) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        r["source"].as_str(),
        r["status"].as_str(),
        r["reason"].as_str(),
    )
}

/// thisUpdate from openssl's clock and nextUpdate `-ndays 7` later.
#[track_caller]
fn assert_openssl_times(r: &Value) {
    let parse = |key: &str| {
        OffsetDateTime::parse(
            r[key].as_str().unwrap_or_else(|| panic!("no {key} in {r}")),
            &Rfc3339,
        )
        .unwrap()
    };
    let (this, next) = (parse("this_update"), parse("next_update"));
    assert!(this >= fixture().pki.options.now, "{r}");
    assert_eq!(next - this, Duration::days(7), "{r}");
}

/// `(source, status, reason)` of a leaf answered by OCSP.
type Summary = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

const OCSP_GOOD: Summary = (Some("ocsp"), Some("good"), None);
const NO_ANSWER: Summary = (
    Some("none"),
    Some("unknown"),
    Some("revocation_data_missing"),
);

// 1. good, signed by the issuing intermediate.
#[test]
fn good_leaf_signed_by_issuer_is_accepted() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client());
    let got = w.verify_now(roles::CLIENT, &[&resp]).json();
    accepted(&got, "good", "ok");
    let leaf = leaf_result(&got, roles::CLIENT);
    assert_eq!(summary(leaf), OCSP_GOOD);
    assert_eq!(leaf["revoked_at"], Value::Null);
    assert_openssl_times(leaf);
    assert!(got.2.is_empty(), "stderr: {}", got.2);
}

#[test]
fn good_leaf_text_output_names_ocsp() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client());
    let out = w.verify(roles::CLIENT).ocsp(&resp).output();
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with("ACCEPTED: good (ok)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("client.vigil.test") && l.contains("good via ocsp, next update")),
        "{}",
        out.stdout
    );
}

/// The leaf's result says it was revoked (keyCompromise), by `source`, at
/// `revoked_at`.
#[track_caller]
fn assert_leaf_revoked(leaf: &Value, source: &str, revoked_at: OffsetDateTime) {
    assert_eq!(
        summary(leaf),
        (Some(source), Some("revoked"), Some("keyCompromise"))
    );
    assert_eq!(
        leaf["revoked_at"].as_str(),
        Some(rfc3339(revoked_at).as_str())
    );
}

// 2. revoked leaf.
#[test]
fn revoked_leaf_is_rejected_with_reason_and_time() {
    let w = Workdir::new();
    let resp = w.respond(ask(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    for policy in ["require", "prefer"] {
        let got = w.verify_now(roles::CLIENT, &[&resp]).policy(policy).json();
        rejected(&got, "revoked", "revoked");
        let leaf = leaf_result(&got, roles::CLIENT);
        assert_leaf_revoked(leaf, "ocsp", fixture().revoked_at);
        assert_openssl_times(leaf);
    }
}

// 3. serial unknown to the responder.
#[test]
fn unknown_serial_require_and_prefer() {
    let w = Workdir::new();
    let resp = w.respond(ask(roles::CLIENT, vec![good(roles::SERVER)]));
    let run = |policy| w.verify_now(roles::CLIENT, &[&resp]).policy(policy).json();
    let unknown = (Some("ocsp"), Some("unknown"), Some("ocsp_unknown"));
    let got = run("require");
    rejected(&got, "unknown", "ocsp_unknown");
    assert_eq!(summary(leaf_result(&got, roles::CLIENT)), unknown);
    let got = run("prefer");
    accepted(&got, "unknown", "revocation_unknown_soft_fail");
    assert_eq!(summary(leaf_result(&got, roles::CLIENT)), unknown);
}

// 4. delegated responder.
#[test]
fn delegated_responder_is_accepted() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client().signed_by(cert(RESPONDER)));
    let got = w.verify_now(roles::CLIENT, &[&resp]).json();
    accepted(&got, "good", "ok");
    let leaf = leaf_result(&got, roles::CLIENT);
    assert_eq!(summary(leaf), OCSP_GOOD);
    assert_openssl_times(leaf);
}

/// A response for a good client leaf is refused as `reason` under both
/// policies.
#[track_caller]
fn refused_under_both_policies(w: &Workdir, resp: &Path, status: &str, reason: &str) {
    for policy in ["require", "prefer"] {
        let got = w.verify_now(roles::CLIENT, &[resp]).policy(policy).json();
        rejected(&got, status, reason);
        assert_eq!(
            summary(leaf_result(&got, roles::CLIENT)),
            (Some("ocsp"), Some("unknown"), Some(reason)),
            "{policy}"
        );
    }
}

// 5. responder certificate without id-kp-OCSPSigning.
#[test]
fn responder_without_ocsp_signing_is_not_authorized() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client().signed_by(cert(roles::CLIENT)));
    refused_under_both_policies(&w, &resp, "invalid", "ocsp_responder_not_authorized");
}

// 6. responder from another hierarchy.
#[test]
fn responder_from_other_hierarchy_is_not_authorized() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client().signed_by(cert(roles::OTHER_INTERMEDIATE)));
    refused_under_both_policies(&w, &resp, "invalid", "ocsp_responder_not_authorized");
}

// 7. stale.
#[test]
fn stale_answer_require_and_prefer() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client());
    let later = eight_days_later_text();
    let stale = (Some("ocsp"), Some("unknown"), Some("revocation_data_stale"));
    let run = |policy| {
        w.verify(roles::CLIENT)
            .ocsp(&resp)
            .at(&later)
            .policy(policy)
            .json()
    };

    let got = run("require");
    rejected(&got, "unknown", "revocation_data_stale");
    let leaf = &got.1["revocation"][0];
    assert_eq!(summary(leaf), stale);
    assert_openssl_times(leaf);

    let got = run("prefer");
    accepted(&got, "unknown", "revocation_unknown_soft_fail");
    assert_eq!(summary(&got.1["revocation"][0]), stale);
}

// 8. SHA-256 CertID.
#[test]
fn sha256_cert_id_is_accepted() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client().hash(CertIdHash::Sha256));
    let got = w.verify_now(roles::CLIENT, &[&resp]).json();
    accepted(&got, "good", "ok");
    assert_eq!(summary(leaf_result(&got, roles::CLIENT)), OCSP_GOOD);
}

// 9. corrupted signature: the last octet of the signature value flipped,
// so the DER still parses.
#[test]
fn corrupted_signature_is_rejected_under_both_policies() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client());
    let der = corrupt_response_signature(&std::fs::read(&resp).unwrap()).unwrap();
    let bad = w.write("corrupted.der", &der);
    refused_under_both_policies(&w, &bad, "invalid", "ocsp_signature_invalid");
}

// 9b. a valid signature by the wrong key under the issuer's name.
#[test]
fn signature_by_another_key_under_the_issuers_name_is_invalid() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client().signed_by(cert(IMPOSTOR)));
    refused_under_both_policies(&w, &resp, "invalid", "ocsp_signature_invalid");
}

// 9c. issue 11, as reproduced: `--ocsp-response good.der --ocsp-response
// forged.der` (the forged answer signed by an unauthorised responder for the
// same CertID), in either order, under require and prefer: the verified
// answer decides, the forged one is reported on the leaf's entry.
#[test]
fn a_forged_answer_beside_a_good_one_is_set_aside_in_either_order() {
    let w = Workdir::new();
    let good = w.respond(ask_good_client());
    for forger in [roles::CLIENT, IMPOSTOR, roles::OTHER_INTERMEDIATE] {
        let forged = w.respond(ask_good_client().signed_by(cert(forger)));
        for policy in ["require", "prefer"] {
            for order in [[&good, &forged], [&forged, &good]] {
                let got = w
                    .verify_now(roles::CLIENT, &[order[0], order[1]])
                    .policy(policy)
                    .json();
                accepted(&got, "good", "ok");
                let leaf = leaf_result(&got, roles::CLIENT);
                assert!(
                    leaf["warning"]
                        .as_str()
                        .is_some_and(|w| w.contains("set aside")),
                    "{forger} {policy}: {leaf}"
                );
            }
        }
    }
}

// 10. tryLater.
#[test]
fn try_later_warns_and_is_ignored() {
    let w = Workdir::new();
    let later = w.write("try-later.der", &TRY_LATER);
    let got = w.verify_now(roles::CLIENT, &[&later]).json();
    rejected(&got, "unknown", "revocation_data_missing");
    assert_eq!(summary(leaf_result(&got, roles::CLIENT)), NO_ANSWER);
    let stderr = &got.2;
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("tryLater"), "{stderr}");
    assert!(stderr.contains(&*later.to_string_lossy()), "{stderr}");

    // Next to a good response, it does not get in the way.
    let resp = w.respond(ask_good_client());
    let got = w.verify_now(roles::CLIENT, &[&later, &resp]).json();
    accepted(&got, "good", "ok");
    assert!(got.2.contains("tryLater"), "{}", got.2);
}

// 11. a response for another certificate only.
#[test]
fn response_for_other_certificate_is_ignored() {
    let w = Workdir::new();
    let resp = w.respond(ask(roles::SERVER, vec![good(roles::SERVER)]));
    let got = w.verify_now(roles::CLIENT, &[&resp]).json();
    rejected(&got, "unknown", "revocation_data_missing");
    assert_eq!(summary(leaf_result(&got, roles::CLIENT)), NO_ANSWER);
    assert!(got.2.is_empty(), "stderr: {}", got.2);
}

// 11b. --ocsp-response is repeatable.
#[test]
fn repeated_flag_uses_the_matching_response() {
    let w = Workdir::new();
    let other = w.respond(ask(roles::SERVER, vec![revoked(roles::SERVER)]));
    let mine = w.respond(ask_good_client());
    let got = w.verify_now(roles::CLIENT, &[&other, &mine]).json();
    accepted(&got, "good", "ok");
    assert_eq!(summary(leaf_result(&got, roles::CLIENT)), OCSP_GOOD);
}

// 12. both sources.
#[test]
fn crl_good_and_ocsp_revoked_is_revoked() {
    let w = Workdir::new();
    let resp = w.respond(ask(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let got = w
        .verify(roles::CLIENT)
        .crl(&w, roles::INTERMEDIATE_CRL)
        .ocsp(&resp)
        .at(&now_text())
        .json();
    rejected(&got, "revoked", "revoked");
    let leaf = leaf_result(&got, roles::CLIENT);
    assert_leaf_revoked(leaf, "ocsp", fixture().revoked_at);
}

#[test]
fn crl_revoked_and_ocsp_good_is_revoked() {
    let w = Workdir::new();
    let resp = w.respond(ask(
        roles::REVOKED_CLIENT,
        vec![good(roles::REVOKED_CLIENT)],
    ));
    for policy in ["require", "prefer"] {
        let got = w
            .verify(roles::REVOKED_CLIENT)
            .crl(&w, roles::INTERMEDIATE_CRL)
            .ocsp(&resp)
            .at(&now_text())
            .policy(policy)
            .json();
        rejected(&got, "revoked", "revoked");
        let leaf = leaf_result(&got, roles::REVOKED_CLIENT);
        let revoked_at = fixture().pki.options.now - Duration::hours(2);
        assert_leaf_revoked(leaf, "crl", revoked_at);
    }
}

// 13. malformed files.
#[test]
fn malformed_response_files_exit_2_naming_the_file() {
    let w = Workdir::new();
    let resp = w.respond(ask_good_client());
    let der = std::fs::read(&resp).unwrap();
    let cases = [
        ("garbage.der", b"this is not an OCSP response\n".to_vec()),
        ("truncated.der", der[..der.len() / 2].to_vec()),
        ("empty.der", Vec::new()),
    ];
    for (name, bytes) in cases {
        let bad = w.write(name, &bytes);
        let out = w
            .verify_now(roles::CLIENT, &[&resp, &bad])
            .arg("--format")
            .arg("json")
            .output();
        assert_usage_error(&out, &[&bad.to_string_lossy(), "OCSP"]);
    }
}

#[test]
fn missing_response_file_exits_2_naming_the_file() {
    let w = Workdir::new();
    let missing = w.path("no-such-response.der");
    let out = w.verify_now(roles::CLIENT, &[&missing]).output();
    assert_usage_error(&out, &["no-such-response.der"]);
}
