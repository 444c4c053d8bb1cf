//! The `vigil verify` cases through the library: `vigil_core::Verifier` over
//! the fixture PKI of `pki-fixtures`, generated in code at a fixed instant.
//! Every case is checked on the uncached path and on the cached path (a
//! first `verify` that may fill the cache and a second that may hit it), and
//! all three must give the same verdict.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::SystemTime;

use pki_fixtures::{roles, KeyAlg, Pki, PkiOptions};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use vigil_core::{
    CertStatus, CertificateDer, CrlLoad, Decision, Depth, ReasonCode, RevocationPolicy, Source,
    Status, TrustStore, Usage, Verdict, Verifier, VerifyOptions,
};

/// The fixture PKI's `now`; every verification happens at this instant
/// unless a test moves time on purpose.
const NOW: OffsetDateTime = datetime!(2026-01-15 12:00:00 UTC);

/// The fixture PKI for `alg`, generated once per process.
fn pki_for(alg: KeyAlg) -> &'static Pki {
    static P256: OnceLock<Pki> = OnceLock::new();
    static RSA: OnceLock<Pki> = OnceLock::new();
    static ED25519: OnceLock<Pki> = OnceLock::new();
    let cell = match alg {
        KeyAlg::EcdsaP256 => &P256,
        KeyAlg::Rsa2048 => &RSA,
        KeyAlg::Ed25519 => &ED25519,
    };
    cell.get_or_init(|| {
        let pki = pki_fixtures::generate(&PkiOptions {
            alg,
            now: NOW,
            ..PkiOptions::default()
        })
        .unwrap();
        assert_eq!(pki.options.now, NOW);
        pki
    })
}

/// The default (P-256) fixture PKI.
fn pki() -> &'static Pki {
    pki_for(KeyAlg::EcdsaP256)
}

fn at(t: OffsetDateTime) -> SystemTime {
    SystemTime::from(t)
}

fn der(pki: &Pki, role: &str) -> CertificateDer<'static> {
    CertificateDer::from(
        pki.cert(role)
            .unwrap_or_else(|| panic!("no role {role}"))
            .der
            .clone(),
    )
}

fn chain(pki: &Pki, roles: &[&str]) -> Vec<CertificateDer<'static>> {
    roles.iter().map(|r| der(pki, r)).collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    pki_fixtures::rfc3339(t).unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A verifier trusting `anchors`, knowing the CA certificates `cas` and
/// loaded with the CRLs `crls` (by fixture role), in that order.
fn verifier(pki: &Pki, anchors: &[&str], cas: &[&str], crls: &[&str]) -> Verifier {
    let mut trust = TrustStore::new();
    for role in anchors {
        assert!(
            trust.add(der(pki, role)).unwrap(),
            "anchor {role} added twice"
        );
    }
    let mut v = Verifier::new(trust);
    for role in cas {
        v.add_ca_certificate(&der(pki, role)).unwrap();
    }
    for name in crls {
        let crl = pki.crl(name).unwrap_or_else(|| panic!("no CRL {name}"));
        v.add_crl(&crl.der).unwrap();
    }
    v
}

/// Verifies through `verify_uncached` and twice through `verify`, checks
/// all three agree, and returns the verdict.
fn verify_all_paths(
    v: &Verifier,
    chain: &[CertificateDer<'_>],
    options: &VerifyOptions,
    when: SystemTime,
) -> Verdict {
    let uncached = v.verify_uncached(chain, options, when);
    let first = v.verify(chain, options, when);
    let second = v.verify(chain, options, when);
    assert_eq!(
        *first, uncached,
        "verify (cache fill) differs from verify_uncached"
    );
    assert_eq!(
        *second, uncached,
        "verify (cache hit) differs from verify_uncached"
    );
    uncached
}

/// The usual set-up: the main root as the only anchor, every presented
/// certificate after the leaf known as a CA certificate (as `vigil verify`
/// does), these CRLs, verified at [`NOW`].
fn run(pki: &Pki, presented: &[&str], crls: &[&str], options: &VerifyOptions) -> Verdict {
    let v = verifier(pki, &[roles::ROOT], &presented[1..], crls);
    verify_all_paths(&v, &chain(pki, presented), options, at(NOW))
}

fn opts(usage: Usage, policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions {
        usage,
        policy,
        ..VerifyOptions::default()
    }
}

fn client(policy: RevocationPolicy) -> VerifyOptions {
    opts(Usage::Client, policy)
}

const CLIENT_CHAIN: &[&str] = &[roles::CLIENT, roles::INTERMEDIATE];
const MAIN_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_CRL];

#[track_caller]
fn assert_outcome(v: &Verdict, verdict: Decision, status: Status, reason: ReasonCode) {
    assert_eq!(
        (v.verdict, v.status, v.reason),
        (verdict, status, reason),
        "unexpected verdict: {}",
        v.to_json()
    );
}

#[track_caller]
fn assert_chain_roles(pki: &Pki, v: &Verdict, roles: &[&str]) {
    let serials: Vec<&str> = v.chain.iter().map(|c| c.serial.as_str()).collect();
    let expected: Vec<String> = roles
        .iter()
        .map(|r| pki.cert(r).unwrap().serial_hex())
        .collect();
    assert_eq!(serials, expected, "chain: {}", v.to_json());
}

#[test]
fn good_client_chain_is_accepted_with_full_report() {
    let pki = pki();
    let v = run(
        pki,
        CLIENT_CHAIN,
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(&v, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert!(v.is_accepted());

    // The path: leaf, intermediate, root, each fully described.
    assert_eq!(v.chain.len(), 3, "{}", v.to_json());
    let expected = [
        (
            &pki.client,
            "CN=client.vigil.test",
            "CN=Vigil Test Intermediate CA",
        ),
        (
            &pki.intermediate.cert,
            "CN=Vigil Test Intermediate CA",
            "CN=Vigil Test Root CA",
        ),
        (
            &pki.root.cert,
            "CN=Vigil Test Root CA",
            "CN=Vigil Test Root CA",
        ),
    ];
    for (summary, (cert, subject_cn, issuer_cn)) in v.chain.iter().zip(expected) {
        assert!(
            summary.subject.contains(subject_cn),
            "subject {}",
            summary.subject
        );
        assert!(
            summary.subject.contains("O=Vigil Test PKI"),
            "subject {}",
            summary.subject
        );
        assert!(
            summary.issuer.contains(issuer_cn),
            "issuer {}",
            summary.issuer
        );
        assert_eq!(summary.serial, cert.serial_hex());
        assert_eq!(summary.sha256, sha256_hex(&cert.der));
        assert_eq!(summary.not_before, rfc3339(cert.not_before));
        assert_eq!(summary.not_after, rfc3339(cert.not_after));
    }
    assert_eq!(v.chain[0].issuer, v.chain[1].subject);
    assert_eq!(v.chain[1].issuer, v.chain[2].subject);

    // Revocation: the leaf from intermediate.crl, the intermediate from root.crl.
    assert_eq!(v.revocation.len(), 2, "{}", v.to_json());
    for (r, (cert, crl)) in v.revocation.iter().zip([
        (&pki.client, &pki.intermediate_crl),
        (&pki.intermediate.cert, &pki.root_crl),
    ]) {
        assert_eq!(r.serial, cert.serial_hex());
        assert_eq!(r.source, Source::Crl);
        assert_eq!(r.status, CertStatus::Good);
        assert_eq!(
            r.this_update.as_deref(),
            Some(rfc3339(crl.this_update).as_str())
        );
        assert_eq!(
            r.next_update.as_deref(),
            Some(rfc3339(crl.next_update).as_str())
        );
        assert_eq!(r.reason, None);
        assert_eq!(r.revoked_at, None);
    }

    // valid_until: the earliest certificate notAfter or CRL nextUpdate.
    let earliest = [
        pki.client.not_after,
        pki.intermediate.cert.not_after,
        pki.root.cert.not_after,
        pki.intermediate_crl.next_update,
        pki.root_crl.next_update,
    ]
    .into_iter()
    .min()
    .unwrap();
    assert_eq!(earliest, NOW + Duration::days(7));
    assert_eq!(v.valid_until.as_deref(), Some(rfc3339(earliest).as_str()));
}

#[test]
fn verdict_json_has_exactly_the_contract_keys() {
    let pki = pki();
    let accepted = run(
        pki,
        CLIENT_CHAIN,
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    let unknown_issuer = run(
        pki,
        &[roles::OTHER_CLIENT, roles::OTHER_INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    let contract: BTreeSet<&str> = [
        "verdict",
        "status",
        "reason",
        "detail",
        "chain",
        "revocation",
        "valid_until",
    ]
    .into();
    for v in [&accepted, &unknown_issuer] {
        let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
        let keys: BTreeSet<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, contract);
    }
    let json: serde_json::Value = serde_json::from_str(&accepted.to_json()).unwrap();
    assert_eq!(json["verdict"], "accepted");
    assert_eq!(json["status"], "good");
    assert_eq!(json["reason"], "ok");
    assert_eq!(json["revocation"][0]["source"], "crl");
    assert_eq!(json["revocation"][0]["status"], "good");
    let cert_keys: BTreeSet<&str> = json["chain"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        cert_keys,
        [
            "subject",
            "issuer",
            "serial",
            "sha256",
            "not_before",
            "not_after"
        ]
        .into()
    );
    let json: serde_json::Value = serde_json::from_str(&unknown_issuer.to_json()).unwrap();
    assert_eq!(json["verdict"], "rejected");
    assert_eq!(json["reason"], "unknown_issuer");
}

#[test]
fn server_chain_with_matching_dns_name_is_accepted() {
    let pki = pki();
    let options = VerifyOptions {
        name: Some("server.vigil.test".into()),
        ..opts(Usage::Server, RevocationPolicy::Require)
    };
    let v = run(
        pki,
        &[roles::SERVER, roles::INTERMEDIATE],
        MAIN_CRLS,
        &options,
    );
    assert_outcome(&v, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_chain_roles(pki, &v, &[roles::SERVER, roles::INTERMEDIATE, roles::ROOT]);
}

#[test]
fn server_chain_with_matching_ip_address_is_accepted() {
    let pki = pki();
    let options = VerifyOptions {
        name: Some("127.0.0.1".into()),
        ..opts(Usage::Server, RevocationPolicy::Require)
    };
    let v = run(
        pki,
        &[roles::SERVER, roles::INTERMEDIATE],
        MAIN_CRLS,
        &options,
    );
    assert_outcome(&v, Decision::Accepted, Status::Good, ReasonCode::Ok);
}

#[test]
fn server_chain_with_other_name_is_name_mismatch() {
    let pki = pki();
    let options = VerifyOptions {
        name: Some("other.example".into()),
        ..opts(Usage::Server, RevocationPolicy::Require)
    };
    let v = run(
        pki,
        &[roles::SERVER, roles::INTERMEDIATE],
        MAIN_CRLS,
        &options,
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::NameMismatch,
    );
    assert!(v.detail.contains("other.example"), "detail: {}", v.detail);
}

#[test]
fn leaf_revoked_by_crl_is_rejected() {
    let pki = pki();
    let v = run(
        pki,
        &[roles::REVOKED_CLIENT, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(&v, Decision::Rejected, Status::Revoked, ReasonCode::Revoked);
    let leaf = &v.revocation[0];
    assert_eq!(leaf.serial, pki.revoked_client.serial_hex());
    assert_eq!(leaf.source, Source::Crl);
    assert_eq!(leaf.status, CertStatus::Revoked);
    assert_eq!(leaf.reason.as_deref(), Some("keyCompromise"));
    assert_eq!(
        leaf.revoked_at.as_deref(),
        Some(rfc3339(NOW - Duration::hours(2)).as_str())
    );
    assert!(
        v.detail.contains(&pki.revoked_client.serial_hex()),
        "detail: {}",
        v.detail
    );
}

#[test]
fn revoked_leaf_is_rejected_under_prefer_too() {
    let pki = pki();
    let v = run(
        pki,
        &[roles::REVOKED_CLIENT, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Prefer),
    );
    assert_outcome(&v, Decision::Rejected, Status::Revoked, ReasonCode::Revoked);
}

const REVOKED_INTERMEDIATE_CHAIN: &[&str] = &[
    roles::LEAF_OF_REVOKED_INTERMEDIATE,
    roles::REVOKED_INTERMEDIATE,
];
const REVOKED_INTERMEDIATE_CRLS: &[&str] = &[roles::ROOT_CRL, roles::REVOKED_INTERMEDIATE_CRL];

#[test]
fn intermediate_revoked_by_root_crl_is_rejected_at_chain_depth() {
    let pki = pki();
    let options = VerifyOptions {
        depth: Depth::Chain,
        ..client(RevocationPolicy::Require)
    };
    let v = run(
        pki,
        REVOKED_INTERMEDIATE_CHAIN,
        REVOKED_INTERMEDIATE_CRLS,
        &options,
    );
    assert_outcome(&v, Decision::Rejected, Status::Revoked, ReasonCode::Revoked);
    assert_eq!(v.revocation.len(), 2, "{}", v.to_json());
    assert_eq!(v.revocation[0].status, CertStatus::Good);
    let ca = &v.revocation[1];
    assert_eq!(ca.serial, pki.revoked_intermediate.cert.serial_hex());
    assert_eq!(ca.status, CertStatus::Revoked);
    assert_eq!(ca.reason.as_deref(), Some("cACompromise"));
}

#[test]
fn intermediate_revoked_by_root_crl_is_accepted_at_leaf_depth() {
    let pki = pki();
    let options = VerifyOptions {
        depth: Depth::Leaf,
        ..client(RevocationPolicy::Require)
    };
    let v = run(
        pki,
        REVOKED_INTERMEDIATE_CHAIN,
        REVOKED_INTERMEDIATE_CRLS,
        &options,
    );
    assert_outcome(&v, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(v.revocation.len(), 1, "{}", v.to_json());
    assert_eq!(
        v.revocation[0].serial,
        pki.leaf_of_revoked_intermediate.serial_hex()
    );
    assert_eq!(v.revocation[0].status, CertStatus::Good);
    assert_eq!(v.chain.len(), 3);
}

#[test]
fn expired_leaf_is_rejected() {
    let pki = pki();
    let v = run(
        pki,
        &[roles::EXPIRED_CLIENT, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(&v, Decision::Rejected, Status::Invalid, ReasonCode::Expired);
    assert!(
        v.detail.contains("expired-client.vigil.test"),
        "detail: {}",
        v.detail
    );
}

#[test]
fn not_yet_valid_leaf_is_rejected() {
    let pki = pki();
    let v = run(
        pki,
        &[roles::NOT_YET_VALID_CLIENT, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::NotYetValid,
    );
    assert!(
        v.detail.contains("not-yet-valid-client.vigil.test"),
        "detail: {}",
        v.detail
    );
}

#[test]
fn expired_intermediate_is_rejected_and_named() {
    let pki = pki();
    let v = run(
        pki,
        &[
            roles::LEAF_OF_EXPIRED_INTERMEDIATE,
            roles::EXPIRED_INTERMEDIATE,
        ],
        &[roles::ROOT_CRL, roles::EXPIRED_INTERMEDIATE_CRL],
        &client(RevocationPolicy::Require),
    );
    assert_outcome(&v, Decision::Rejected, Status::Invalid, ReasonCode::Expired);
    assert!(
        v.detail.contains("Vigil Test Expired Intermediate CA"),
        "detail does not name the intermediate: {}",
        v.detail
    );
}

#[test]
fn server_certificate_used_as_client_is_wrong_usage() {
    let pki = pki();
    let v = run(
        pki,
        &[roles::SERVER, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::WrongUsage,
    );
}

#[test]
fn chain_to_other_root_is_unknown_issuer() {
    let pki = pki();
    let v = run(
        pki,
        &[roles::OTHER_CLIENT, roles::OTHER_INTERMEDIATE],
        &[
            roles::ROOT_CRL,
            roles::INTERMEDIATE_CRL,
            roles::OTHER_INTERMEDIATE_CRL,
        ],
        &client(RevocationPolicy::Require),
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::UnknownIssuer,
    );
    assert!(v.chain.is_empty());
    assert!(v.revocation.is_empty());
    assert_eq!(v.valid_until, None);
}

#[test]
fn leaf_with_bad_signature_is_rejected() {
    let pki = pki();
    let v = run(
        pki,
        &[roles::BAD_SIGNATURE_CLIENT, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::BadSignature,
    );
}

const WRONG_KEY_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_WRONG_KEY_CRL];

#[test]
fn crl_signed_by_wrong_key_is_refused_at_load() {
    let pki = pki();
    let mut v = verifier(pki, &[roles::ROOT], &[roles::INTERMEDIATE], &[]);
    let load = v.add_crl(&pki.intermediate_wrong_key_crl.der).unwrap();
    assert!(matches!(load, CrlLoad::Rejected(_)), "loaded: {load:?}");
    let load = v.add_crl(&pki.intermediate_crl.der).unwrap();
    assert_eq!(load, CrlLoad::Verified { entries: 1 });
}

#[test]
fn crl_signed_by_wrong_key_is_rejected_under_require() {
    let pki = pki();
    let v = run(
        pki,
        CLIENT_CHAIN,
        WRONG_KEY_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::CrlSignatureInvalid,
    );
    assert_ne!(v.revocation[0].status, CertStatus::Good);
}

#[test]
fn crl_signed_by_wrong_key_is_rejected_under_prefer() {
    let pki = pki();
    let v = run(
        pki,
        CLIENT_CHAIN,
        WRONG_KEY_CRLS,
        &client(RevocationPolicy::Prefer),
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::CrlSignatureInvalid,
    );
}

#[test]
fn crl_signed_by_wrong_key_is_rejected_when_its_issuer_is_only_in_the_chain() {
    // The forged CRL cannot be checked at load (its issuer is unknown then);
    // it must still be refused once the chain brings the issuer, under
    // either policy, also after the issuer is registered later.
    let pki = pki();
    let mut v = verifier(pki, &[roles::ROOT], &[], WRONG_KEY_CRLS);
    let presented = chain(pki, CLIENT_CHAIN);
    for policy in [RevocationPolicy::Require, RevocationPolicy::Prefer] {
        let got = verify_all_paths(&v, &presented, &client(policy), at(NOW));
        assert_outcome(
            &got,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::CrlSignatureInvalid,
        );
    }
    v.add_ca_certificate(&der(pki, roles::INTERMEDIATE))
        .unwrap();
    for policy in [RevocationPolicy::Require, RevocationPolicy::Prefer] {
        let got = verify_all_paths(&v, &presented, &client(policy), at(NOW));
        assert_outcome(
            &got,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::CrlSignatureInvalid,
        );
    }
}

#[test]
fn revoked_intermediate_outranks_missing_leaf_crl() {
    // Only the root's CRL: the leaf's status is unknown, but the revoked
    // intermediate decides, under require and prefer alike.
    let pki = pki();
    for policy in [RevocationPolicy::Require, RevocationPolicy::Prefer] {
        let v = run(
            pki,
            REVOKED_INTERMEDIATE_CHAIN,
            &[roles::ROOT_CRL],
            &client(policy),
        );
        assert_outcome(&v, Decision::Rejected, Status::Revoked, ReasonCode::Revoked);
        assert_eq!(v.revocation[0].status, CertStatus::Unknown);
        assert_eq!(v.revocation[1].status, CertStatus::Revoked);
    }
}

#[test]
fn fresh_crl_wins_over_a_stale_one() {
    let pki = pki();
    let v = run(
        pki,
        CLIENT_CHAIN,
        &[
            roles::ROOT_CRL,
            roles::INTERMEDIATE_STALE_CRL,
            roles::INTERMEDIATE_CRL,
        ],
        &client(RevocationPolicy::Require),
    );
    assert_outcome(&v, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(
        v.revocation[0].this_update.as_deref(),
        Some(rfc3339(pki.intermediate_crl.this_update).as_str())
    );
}

const STALE_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_STALE_CRL];

#[test]
fn stale_crl_is_rejected_under_require() {
    let pki = pki();
    let v = run(
        pki,
        CLIENT_CHAIN,
        STALE_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataStale,
    );
    let leaf = &v.revocation[0];
    assert_eq!(leaf.status, CertStatus::Unknown);
    assert_eq!(leaf.reason.as_deref(), Some("revocation_data_stale"));
    assert_eq!(v.revocation[1].status, CertStatus::Good);
}

#[test]
fn stale_crl_is_soft_failed_under_prefer() {
    let pki = pki();
    let v = run(
        pki,
        CLIENT_CHAIN,
        STALE_CRLS,
        &client(RevocationPolicy::Prefer),
    );
    assert_outcome(
        &v,
        Decision::Accepted,
        Status::Unknown,
        ReasonCode::RevocationUnknownSoftFail,
    );
    assert_eq!(v.revocation[0].status, CertStatus::Unknown);
    assert_eq!(
        v.revocation[0].reason.as_deref(),
        Some("revocation_data_stale")
    );
}

#[test]
fn no_crl_is_missing_under_require() {
    let pki = pki();
    let v = run(pki, CLIENT_CHAIN, &[], &client(RevocationPolicy::Require));
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataMissing,
    );
    assert_eq!(v.revocation.len(), 2);
    for r in &v.revocation {
        assert_eq!(r.source, Source::None);
        assert_eq!(r.status, CertStatus::Unknown);
        assert_eq!(r.reason.as_deref(), Some("revocation_data_missing"));
    }
}

#[test]
fn no_crl_is_soft_failed_under_prefer() {
    let pki = pki();
    let v = run(pki, CLIENT_CHAIN, &[], &client(RevocationPolicy::Prefer));
    assert_outcome(
        &v,
        Decision::Accepted,
        Status::Unknown,
        ReasonCode::RevocationUnknownSoftFail,
    );
}

#[test]
fn no_crl_is_not_checked_under_off() {
    let pki = pki();
    let v = run(pki, CLIENT_CHAIN, &[], &client(RevocationPolicy::Off));
    assert_outcome(
        &v,
        Decision::Accepted,
        Status::Unknown,
        ReasonCode::RevocationNotChecked,
    );
    assert!(v.revocation.is_empty());
    assert_eq!(v.chain.len(), 3);
    assert_eq!(
        v.valid_until.as_deref(),
        Some(rfc3339(pki.client.not_after).as_str())
    );
}

#[test]
fn off_does_not_notice_a_revoked_leaf() {
    // `off` means no checking at all: documented, explicit opt-out.
    let pki = pki();
    let v = run(
        pki,
        &[roles::REVOKED_CLIENT, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Off),
    );
    assert_outcome(
        &v,
        Decision::Accepted,
        Status::Unknown,
        ReasonCode::RevocationNotChecked,
    );
}

#[test]
fn crl_of_another_issuer_only_is_missing_under_require() {
    let pki = pki();
    let v = run(
        pki,
        CLIENT_CHAIN,
        &[roles::OTHER_INTERMEDIATE_CRL],
        &client(RevocationPolicy::Require),
    );
    assert_outcome(
        &v,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataMissing,
    );
}

#[test]
fn chain_out_of_order_is_accepted() {
    let pki = pki();
    let v = run(
        pki,
        &[roles::CLIENT, roles::ROOT, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(&v, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_chain_roles(pki, &v, &[roles::CLIENT, roles::INTERMEDIATE, roles::ROOT]);
}

#[test]
fn chain_with_unrelated_extra_certificates_is_accepted() {
    let pki = pki();
    let v = run(
        pki,
        &[
            roles::CLIENT,
            roles::OTHER_ROOT,
            roles::ROOT,
            roles::OTHER_INTERMEDIATE,
            roles::INTERMEDIATE,
        ],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(&v, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_chain_roles(pki, &v, &[roles::CLIENT, roles::INTERMEDIATE, roles::ROOT]);
    assert_eq!(v.revocation.len(), 2);
}

#[test]
fn crls_loaded_before_their_issuer_certificate_are_used() {
    // The CRL arrives first (pending), then the CA certificate that signs it.
    let pki = pki();
    let mut v = verifier(pki, &[roles::ROOT], &[], MAIN_CRLS);
    v.add_ca_certificate(&der(pki, roles::INTERMEDIATE))
        .unwrap();
    let good = verify_all_paths(
        &v,
        &chain(pki, CLIENT_CHAIN),
        &client(RevocationPolicy::Require),
        at(NOW),
    );
    assert_outcome(&good, Decision::Accepted, Status::Good, ReasonCode::Ok);
    let revoked = verify_all_paths(
        &v,
        &chain(pki, &[roles::REVOKED_CLIENT, roles::INTERMEDIATE]),
        &client(RevocationPolicy::Require),
        at(NOW),
    );
    assert_outcome(
        &revoked,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
}

#[test]
fn crl_whose_issuer_is_only_in_the_presented_chain_is_used() {
    // The intermediate is never registered with the verifier; it only
    // arrives in the chain, so its CRL stays pending until then.
    let pki = pki();
    let v = verifier(pki, &[roles::ROOT], &[], MAIN_CRLS);
    let revoked = verify_all_paths(
        &v,
        &chain(pki, &[roles::REVOKED_CLIENT, roles::INTERMEDIATE]),
        &client(RevocationPolicy::Require),
        at(NOW),
    );
    assert_outcome(
        &revoked,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
    let good = verify_all_paths(
        &v,
        &chain(pki, CLIENT_CHAIN),
        &client(RevocationPolicy::Require),
        at(NOW),
    );
    assert_outcome(&good, Decision::Accepted, Status::Good, ReasonCode::Ok);
}

#[test]
fn repeated_accepted_verification_is_served_from_cache() {
    // Accepted verdicts are cached: a repeat with unchanged data, inside the
    // verdict's window, returns the very same verdict.
    let pki = pki();
    let v = verifier(pki, &[roles::ROOT], &[roles::INTERMEDIATE], MAIN_CRLS);
    let presented = chain(pki, CLIENT_CHAIN);
    let options = client(RevocationPolicy::Require);
    let first = v.verify(&presented, &options, at(NOW));
    assert_outcome(&first, Decision::Accepted, Status::Good, ReasonCode::Ok);
    let later = at(NOW + Duration::hours(1));
    let again = v.verify(&presented, &options, later);
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "second verification was not a cache hit"
    );
    assert_eq!(*again, v.verify_uncached(&presented, &options, later));
    // Other options are another cache entry.
    let server = v.verify(
        &presented,
        &opts(Usage::Server, RevocationPolicy::Require),
        later,
    );
    assert_outcome(
        &server,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::WrongUsage,
    );
}

#[test]
fn cached_verdict_does_not_outlive_valid_until() {
    let pki = pki();
    let v = verifier(pki, &[roles::ROOT], &[roles::INTERMEDIATE], MAIN_CRLS);
    let presented = chain(pki, CLIENT_CHAIN);
    let options = client(RevocationPolicy::Require);
    let now = v.verify(&presented, &options, at(NOW));
    assert_outcome(&now, Decision::Accepted, Status::Good, ReasonCode::Ok);
    // Eight days on, both CRLs are past nextUpdate: the cached "good" must
    // not be served.
    let later = at(NOW + Duration::days(8));
    let cached = v.verify(&presented, &options, later);
    assert_eq!(*cached, v.verify_uncached(&presented, &options, later));
    assert_outcome(
        &cached,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataStale,
    );
}

#[test]
fn cached_verdict_is_dropped_when_a_revoking_crl_arrives() {
    let pki = pki();
    let mut v = verifier(
        pki,
        &[roles::ROOT],
        &[roles::INTERMEDIATE],
        &[roles::ROOT_CRL],
    );
    let presented = chain(pki, &[roles::REVOKED_CLIENT, roles::INTERMEDIATE]);
    let options = client(RevocationPolicy::Prefer);
    let before = v.verify(&presented, &options, at(NOW));
    assert_outcome(
        &before,
        Decision::Accepted,
        Status::Unknown,
        ReasonCode::RevocationUnknownSoftFail,
    );
    v.add_crl(&pki.intermediate_crl.der).unwrap();
    let after = v.verify(&presented, &options, at(NOW));
    assert_outcome(
        &after,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
}

fn good_and_revoked_for(alg: KeyAlg) {
    let pki = pki_for(alg);
    assert_eq!(pki.client.alg, alg);
    let good = run(
        pki,
        CLIENT_CHAIN,
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(&good, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(good.chain.len(), 3);
    assert_eq!(good.revocation.len(), 2);
    let revoked = run(
        pki,
        &[roles::REVOKED_CLIENT, roles::INTERMEDIATE],
        MAIN_CRLS,
        &client(RevocationPolicy::Require),
    );
    assert_outcome(
        &revoked,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
    assert_eq!(
        revoked.revocation[0].reason.as_deref(),
        Some("keyCompromise")
    );
    let wrong_key = run(
        pki,
        CLIENT_CHAIN,
        WRONG_KEY_CRLS,
        &client(RevocationPolicy::Prefer),
    );
    assert_outcome(
        &wrong_key,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::CrlSignatureInvalid,
    );
}

#[test]
fn ecdsa_p256_good_accepted_and_revoked_rejected() {
    good_and_revoked_for(KeyAlg::EcdsaP256);
}

#[test]
fn rsa2048_good_accepted_and_revoked_rejected() {
    good_and_revoked_for(KeyAlg::Rsa2048);
}

#[test]
fn ed25519_good_accepted_and_revoked_rejected() {
    good_and_revoked_for(KeyAlg::Ed25519);
}
