//! The `vigil verify` cases through the library: `vigil_core::Verifier` over
//! the fixture PKI of `pki-fixtures`, generated in code at a fixed instant.
//! Every case is checked on the uncached path and on the cached path (a
//! first `verify` that may fill the cache and a second that may hit it), and
//! all three must give the same verdict.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
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
    let opts = PkiOptions {
        alg,
        now: NOW,
        ..PkiOptions::default()
    };
    let pki = pki_fixtures::generate_shared(&opts).unwrap();
    assert_eq!(pki.options.now, NOW);
    pki
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

/// Unix seconds, as verdicts hold times.
fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
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

/// The root as the only anchor, the intermediate known, the main CRLs.
fn main_verifier() -> Verifier {
    verifier(pki(), &[roles::ROOT], &[roles::INTERMEDIATE], MAIN_CRLS)
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

/// [`verify_all_paths`] for the client usage under require at [`NOW`], the
/// chain given by fixture roles.
fn verify_client_at_now(v: &Verifier, presented: &[&str]) -> Verdict {
    let options = client(RevocationPolicy::Require);
    verify_all_paths(v, &chain(pki(), presented), &options, at(NOW))
}

/// The usual set-up: the main root as the only anchor, every presented
/// certificate after the leaf known as a CA certificate (as `vigil verify`
/// does), these CRLs, verified at [`NOW`].
fn run(pki: &Pki, presented: &[&str], crls: &[&str], options: &VerifyOptions) -> Verdict {
    let v = verifier(pki, &[roles::ROOT], &presented[1..], crls);
    verify_all_paths(&v, &chain(pki, presented), options, at(NOW))
}

/// [`run`] on the default fixture for the client usage under `policy`.
fn run_client(presented: &[&str], crls: &[&str], policy: RevocationPolicy) -> Verdict {
    run(pki(), presented, crls, &client(policy))
}

fn opts(usage: Usage, policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions::new(usage).with_policy(policy)
}

fn client(policy: RevocationPolicy) -> VerifyOptions {
    opts(Usage::Client, policy)
}

const REQUIRE: RevocationPolicy = RevocationPolicy::Require;
const PREFER: RevocationPolicy = RevocationPolicy::Prefer;

const CLIENT_CHAIN: &[&str] = &[roles::CLIENT, roles::INTERMEDIATE];
const REVOKED_CHAIN: &[&str] = &[roles::REVOKED_CLIENT, roles::INTERMEDIATE];
const SERVER_CHAIN: &[&str] = &[roles::SERVER, roles::INTERMEDIATE];
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
fn assert_accepted(v: &Verdict, status: Status, reason: ReasonCode) {
    assert_outcome(v, Decision::Accepted, status, reason);
}

#[track_caller]
fn assert_rejected(v: &Verdict, status: Status, reason: ReasonCode) {
    assert_outcome(v, Decision::Rejected, status, reason);
}

/// Rejected as invalid because of `reason`, the detail mentioning `named`.
#[track_caller]
fn assert_invalid_naming(v: &Verdict, reason: ReasonCode, named: &str) {
    assert_rejected(v, Status::Invalid, reason);
    assert!(v.detail.contains(named), "detail: {}", v.detail);
}

#[track_caller]
fn assert_chain_roles(pki: &Pki, v: &Verdict, roles: &[&str]) {
    let serials: Vec<String> = v
        .chain
        .iter()
        .map(|c| vigil_core::text::hex(&c.serial))
        .collect();
    let expected: Vec<String> = roles
        .iter()
        .map(|r| pki.cert(r).unwrap().serial_hex())
        .collect();
    assert_eq!(serials, expected, "chain: {}", v.to_json());
}

/// The keys of a JSON object.
fn keys(json: &serde_json::Value) -> BTreeSet<&str> {
    json.as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn good_client_chain_is_accepted_with_full_report() {
    let pki = pki();
    let v = run_client(CLIENT_CHAIN, MAIN_CRLS, REQUIRE);
    assert_accepted(&v, Status::Good, ReasonCode::Ok);
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
        for (field, part) in [
            (&summary.subject, subject_cn),
            (&summary.subject, "O=Vigil Test PKI"),
            (&summary.issuer, issuer_cn),
        ] {
            assert!(field.contains(part), "{part} not in {field}");
        }
        assert_eq!(vigil_core::text::hex(&summary.serial), cert.serial_hex());
        assert_eq!(
            vigil_core::text::hex(&summary.sha256),
            sha256_hex(&cert.der)
        );
        assert_eq!(summary.not_before, secs(cert.not_before));
        assert_eq!(summary.not_after, secs(cert.not_after));
    }
    assert_eq!(v.chain[0].issuer, v.chain[1].subject);
    assert_eq!(v.chain[1].issuer, v.chain[2].subject);

    // Revocation: the leaf from intermediate.crl, the intermediate from root.crl.
    assert_eq!(v.revocation.len(), 2, "{}", v.to_json());
    for (r, (cert, crl)) in v.revocation.iter().zip([
        (&pki.client, &pki.intermediate_crl),
        (&pki.intermediate.cert, &pki.root_crl),
    ]) {
        assert_eq!(vigil_core::text::hex(&r.serial), cert.serial_hex());
        assert_eq!((r.source, r.status), (Source::Crl, CertStatus::Good));
        assert_eq!(r.this_update, Some(secs(crl.this_update)));
        assert_eq!(r.next_update, Some(secs(crl.next_update)));
        assert_eq!((&r.reason, &r.revoked_at), (&None, &None));
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
    assert_eq!(v.valid_until, Some(secs(earliest)));
}

#[test]
fn verdict_json_has_exactly_the_contract_keys() {
    let accepted = run_client(CLIENT_CHAIN, MAIN_CRLS, REQUIRE);
    let other_chain = [roles::OTHER_CLIENT, roles::OTHER_INTERMEDIATE];
    let unknown_issuer = run_client(&other_chain, MAIN_CRLS, REQUIRE);
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
    let json = |v: &Verdict| -> serde_json::Value { serde_json::from_str(&v.to_json()).unwrap() };
    for v in [&accepted, &unknown_issuer] {
        assert_eq!(keys(&json(v)), contract);
    }
    let json_accepted = json(&accepted);
    assert_eq!(json_accepted["verdict"], "accepted");
    assert_eq!(json_accepted["status"], "good");
    assert_eq!(json_accepted["reason"], "ok");
    assert_eq!(json_accepted["revocation"][0]["source"], "crl");
    assert_eq!(json_accepted["revocation"][0]["status"], "good");
    assert_eq!(
        keys(&json_accepted["chain"][0]),
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
    let json_rejected = json(&unknown_issuer);
    assert_eq!(json_rejected["verdict"], "rejected");
    assert_eq!(json_rejected["reason"], "unknown_issuer");
}

/// The server chain for the server usage under require, the name to check
/// being `name`.
fn server_named(name: &str) -> Verdict {
    let options = opts(Usage::Server, REQUIRE).with_name(name.to_owned());
    run(pki(), SERVER_CHAIN, MAIN_CRLS, &options)
}

#[test]
fn server_chain_with_matching_dns_name_is_accepted() {
    let v = server_named("server.vigil.test");
    assert_accepted(&v, Status::Good, ReasonCode::Ok);
    assert_chain_roles(
        pki(),
        &v,
        &[roles::SERVER, roles::INTERMEDIATE, roles::ROOT],
    );
}

#[test]
fn server_chain_with_matching_ip_address_is_accepted() {
    assert_accepted(&server_named("127.0.0.1"), Status::Good, ReasonCode::Ok);
}

#[test]
fn server_chain_with_other_name_is_name_mismatch() {
    let v = server_named("other.example");
    assert_invalid_naming(&v, ReasonCode::NameMismatch, "other.example");
}

#[test]
fn leaf_revoked_by_crl_is_rejected() {
    let pki = pki();
    let v = run_client(REVOKED_CHAIN, MAIN_CRLS, REQUIRE);
    assert_rejected(&v, Status::Revoked, ReasonCode::Revoked);
    let leaf = &v.revocation[0];
    assert_eq!(
        vigil_core::text::hex(&leaf.serial),
        pki.revoked_client.serial_hex()
    );
    assert_eq!(
        (leaf.source, leaf.status),
        (Source::Crl, CertStatus::Revoked)
    );
    assert_eq!(leaf.reason.as_deref(), Some("keyCompromise"));
    assert_eq!(leaf.revoked_at, Some(secs(NOW - Duration::hours(2))));
    assert!(
        v.detail.contains(&pki.revoked_client.serial_hex()),
        "detail: {}",
        v.detail
    );
}

#[test]
fn revoked_leaf_is_rejected_under_prefer_too() {
    let v = run_client(REVOKED_CHAIN, MAIN_CRLS, PREFER);
    assert_rejected(&v, Status::Revoked, ReasonCode::Revoked);
}

const REVOKED_INTERMEDIATE_CHAIN: &[&str] = &[
    roles::LEAF_OF_REVOKED_INTERMEDIATE,
    roles::REVOKED_INTERMEDIATE,
];
const REVOKED_INTERMEDIATE_CRLS: &[&str] = &[roles::ROOT_CRL, roles::REVOKED_INTERMEDIATE_CRL];

/// The chain through the revoked intermediate, revocation checked to `depth`.
fn revoked_intermediate_at(depth: Depth) -> Verdict {
    let options = client(REQUIRE).with_depth(depth);
    run(
        pki(),
        REVOKED_INTERMEDIATE_CHAIN,
        REVOKED_INTERMEDIATE_CRLS,
        &options,
    )
}

#[test]
fn intermediate_revoked_by_root_crl_is_rejected_at_chain_depth() {
    let v = revoked_intermediate_at(Depth::Chain);
    assert_rejected(&v, Status::Revoked, ReasonCode::Revoked);
    assert_eq!(v.revocation.len(), 2, "{}", v.to_json());
    assert_eq!(v.revocation[0].status, CertStatus::Good);
    let ca = &v.revocation[1];
    assert_eq!(
        vigil_core::text::hex(&ca.serial),
        pki().revoked_intermediate.cert.serial_hex()
    );
    assert_eq!(ca.status, CertStatus::Revoked);
    assert_eq!(ca.reason.as_deref(), Some("cACompromise"));
}

#[test]
fn intermediate_revoked_by_root_crl_is_accepted_at_leaf_depth() {
    let v = revoked_intermediate_at(Depth::Leaf);
    assert_accepted(&v, Status::Good, ReasonCode::Ok);
    assert_eq!(v.revocation.len(), 1, "{}", v.to_json());
    let leaf = &v.revocation[0];
    assert_eq!(
        vigil_core::text::hex(&leaf.serial),
        pki().leaf_of_revoked_intermediate.serial_hex()
    );
    assert_eq!(leaf.status, CertStatus::Good);
    assert_eq!(v.chain.len(), 3);
}

#[test]
fn expired_leaf_is_rejected() {
    let v = run_client(
        &[roles::EXPIRED_CLIENT, roles::INTERMEDIATE],
        MAIN_CRLS,
        REQUIRE,
    );
    assert_invalid_naming(&v, ReasonCode::Expired, "expired-client.vigil.test");
}

#[test]
fn not_yet_valid_leaf_is_rejected() {
    let presented = [roles::NOT_YET_VALID_CLIENT, roles::INTERMEDIATE];
    let v = run_client(&presented, MAIN_CRLS, REQUIRE);
    assert_invalid_naming(
        &v,
        ReasonCode::NotYetValid,
        "not-yet-valid-client.vigil.test",
    );
}

#[test]
fn expired_intermediate_is_rejected_and_named() {
    let v = run_client(
        &[
            roles::LEAF_OF_EXPIRED_INTERMEDIATE,
            roles::EXPIRED_INTERMEDIATE,
        ],
        &[roles::ROOT_CRL, roles::EXPIRED_INTERMEDIATE_CRL],
        REQUIRE,
    );
    assert_invalid_naming(
        &v,
        ReasonCode::Expired,
        "Vigil Test Expired Intermediate CA",
    );
}

#[test]
fn server_certificate_used_as_client_is_wrong_usage() {
    let v = run_client(SERVER_CHAIN, MAIN_CRLS, REQUIRE);
    assert_rejected(&v, Status::Invalid, ReasonCode::WrongUsage);
}

#[test]
fn chain_to_other_root_is_unknown_issuer() {
    let v = run_client(
        &[roles::OTHER_CLIENT, roles::OTHER_INTERMEDIATE],
        &[
            roles::ROOT_CRL,
            roles::INTERMEDIATE_CRL,
            roles::OTHER_INTERMEDIATE_CRL,
        ],
        REQUIRE,
    );
    assert_rejected(&v, Status::Invalid, ReasonCode::UnknownIssuer);
    assert!(v.chain.is_empty());
    assert!(v.revocation.is_empty());
    assert_eq!(v.valid_until, None);
}

#[test]
fn leaf_with_bad_signature_is_rejected() {
    let presented = [roles::BAD_SIGNATURE_CLIENT, roles::INTERMEDIATE];
    let v = run_client(&presented, MAIN_CRLS, REQUIRE);
    assert_rejected(&v, Status::Invalid, ReasonCode::BadSignature);
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
    let v = run_client(CLIENT_CHAIN, WRONG_KEY_CRLS, REQUIRE);
    assert_rejected(&v, Status::Invalid, ReasonCode::CrlSignatureInvalid);
    assert_ne!(v.revocation[0].status, CertStatus::Good);
}

#[test]
fn crl_signed_by_wrong_key_is_rejected_under_prefer() {
    let v = run_client(CLIENT_CHAIN, WRONG_KEY_CRLS, PREFER);
    assert_rejected(&v, Status::Invalid, ReasonCode::CrlSignatureInvalid);
}

#[test]
fn crl_signed_by_wrong_key_is_rejected_when_its_issuer_is_only_in_the_chain() {
    // The forged CRL cannot be checked at load (its issuer is unknown then);
    // it must still be refused once the chain brings the issuer, under
    // either policy, also after the issuer is registered later.
    let pki = pki();
    let mut v = verifier(pki, &[roles::ROOT], &[], WRONG_KEY_CRLS);
    let presented = chain(pki, CLIENT_CHAIN);
    for issuer_registered in [false, true] {
        if issuer_registered {
            v.add_ca_certificate(&der(pki, roles::INTERMEDIATE))
                .unwrap();
        }
        for policy in [REQUIRE, PREFER] {
            let got = verify_all_paths(&v, &presented, &client(policy), at(NOW));
            assert_rejected(&got, Status::Invalid, ReasonCode::CrlSignatureInvalid);
        }
    }
}

#[test]
fn revoked_intermediate_outranks_missing_leaf_crl() {
    // Only the root's CRL: the leaf's status is unknown, but the revoked
    // intermediate decides, under require and prefer alike.
    for policy in [REQUIRE, PREFER] {
        let v = run_client(REVOKED_INTERMEDIATE_CHAIN, &[roles::ROOT_CRL], policy);
        assert_rejected(&v, Status::Revoked, ReasonCode::Revoked);
        assert_eq!(v.revocation[0].status, CertStatus::Unknown);
        assert_eq!(v.revocation[1].status, CertStatus::Revoked);
    }
}

#[test]
fn fresh_crl_wins_over_a_stale_one() {
    let v = run_client(
        CLIENT_CHAIN,
        &[
            roles::ROOT_CRL,
            roles::INTERMEDIATE_STALE_CRL,
            roles::INTERMEDIATE_CRL,
        ],
        REQUIRE,
    );
    assert_accepted(&v, Status::Good, ReasonCode::Ok);
    assert_eq!(
        v.revocation[0].this_update,
        Some(secs(pki().intermediate_crl.this_update))
    );
}

const STALE_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_STALE_CRL];

#[test]
fn stale_crl_is_rejected_under_require() {
    let v = run_client(CLIENT_CHAIN, STALE_CRLS, REQUIRE);
    assert_rejected(&v, Status::Unknown, ReasonCode::RevocationDataStale);
    let leaf = &v.revocation[0];
    assert_eq!(leaf.status, CertStatus::Unknown);
    assert_eq!(leaf.reason.as_deref(), Some("revocation_data_stale"));
    assert_eq!(v.revocation[1].status, CertStatus::Good);
}

#[test]
fn stale_crl_is_soft_failed_under_prefer() {
    let v = run_client(CLIENT_CHAIN, STALE_CRLS, PREFER);
    assert_accepted(&v, Status::Unknown, ReasonCode::RevocationUnknownSoftFail);
    let leaf = &v.revocation[0];
    assert_eq!(leaf.status, CertStatus::Unknown);
    assert_eq!(leaf.reason.as_deref(), Some("revocation_data_stale"));
}

#[test]
fn no_crl_is_missing_under_require() {
    let v = run_client(CLIENT_CHAIN, &[], REQUIRE);
    assert_rejected(&v, Status::Unknown, ReasonCode::RevocationDataMissing);
    assert_eq!(v.revocation.len(), 2);
    for r in &v.revocation {
        assert_eq!(
            (r.source, r.status, r.reason.as_deref()),
            (
                Source::None,
                CertStatus::Unknown,
                Some("revocation_data_missing")
            )
        );
    }
}

#[test]
fn no_crl_is_soft_failed_under_prefer() {
    let v = run_client(CLIENT_CHAIN, &[], PREFER);
    assert_accepted(&v, Status::Unknown, ReasonCode::RevocationUnknownSoftFail);
}

#[test]
fn no_crl_is_not_checked_under_off() {
    let v = run_client(CLIENT_CHAIN, &[], RevocationPolicy::Off);
    assert_accepted(&v, Status::Unknown, ReasonCode::RevocationNotChecked);
    assert!(v.revocation.is_empty());
    assert_eq!(v.chain.len(), 3);
    assert_eq!(v.valid_until, Some(secs(pki().client.not_after)));
}

#[test]
fn off_does_not_notice_a_revoked_leaf() {
    // `off` means no checking at all: documented, explicit opt-out.
    let v = run_client(REVOKED_CHAIN, MAIN_CRLS, RevocationPolicy::Off);
    assert_accepted(&v, Status::Unknown, ReasonCode::RevocationNotChecked);
}

#[test]
fn crl_of_another_issuer_only_is_missing_under_require() {
    let v = run_client(CLIENT_CHAIN, &[roles::OTHER_INTERMEDIATE_CRL], REQUIRE);
    assert_rejected(&v, Status::Unknown, ReasonCode::RevocationDataMissing);
}

/// The path every accepted client chain must take.
const CLIENT_PATH: &[&str] = &[roles::CLIENT, roles::INTERMEDIATE, roles::ROOT];

#[test]
fn chain_out_of_order_is_accepted() {
    let presented = [roles::CLIENT, roles::ROOT, roles::INTERMEDIATE];
    let v = run_client(&presented, MAIN_CRLS, REQUIRE);
    assert_accepted(&v, Status::Good, ReasonCode::Ok);
    assert_chain_roles(pki(), &v, CLIENT_PATH);
}

#[test]
fn chain_with_unrelated_extra_certificates_is_accepted() {
    let v = run_client(
        &[
            roles::CLIENT,
            roles::OTHER_ROOT,
            roles::ROOT,
            roles::OTHER_INTERMEDIATE,
            roles::INTERMEDIATE,
        ],
        MAIN_CRLS,
        REQUIRE,
    );
    assert_accepted(&v, Status::Good, ReasonCode::Ok);
    assert_chain_roles(pki(), &v, CLIENT_PATH);
    assert_eq!(v.revocation.len(), 2);
}

#[test]
fn crls_loaded_before_their_issuer_certificate_are_used() {
    // The CRL arrives first (pending), then the CA certificate that signs it.
    let pki = pki();
    let mut v = verifier(pki, &[roles::ROOT], &[], MAIN_CRLS);
    v.add_ca_certificate(&der(pki, roles::INTERMEDIATE))
        .unwrap();
    let good = verify_client_at_now(&v, CLIENT_CHAIN);
    assert_accepted(&good, Status::Good, ReasonCode::Ok);
    let revoked = verify_client_at_now(&v, REVOKED_CHAIN);
    assert_rejected(&revoked, Status::Revoked, ReasonCode::Revoked);
}

#[test]
fn crl_whose_issuer_is_only_in_the_presented_chain_is_used() {
    // The intermediate is never registered with the verifier; it only
    // arrives in the chain, so its CRL stays pending until then.
    let v = verifier(pki(), &[roles::ROOT], &[], MAIN_CRLS);
    let revoked = verify_client_at_now(&v, REVOKED_CHAIN);
    assert_rejected(&revoked, Status::Revoked, ReasonCode::Revoked);
    let good = verify_client_at_now(&v, CLIENT_CHAIN);
    assert_accepted(&good, Status::Good, ReasonCode::Ok);
}

#[test]
fn repeated_accepted_verification_is_served_from_cache() {
    // Accepted verdicts are cached: a repeat with unchanged data, inside the
    // verdict's window, returns the very same verdict.
    let v = main_verifier();
    let presented = chain(pki(), CLIENT_CHAIN);
    let options = client(REQUIRE);
    let first = v.verify(&presented, &options, at(NOW));
    assert_accepted(&first, Status::Good, ReasonCode::Ok);
    let later = at(NOW + Duration::hours(1));
    let again = v.verify(&presented, &options, later);
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "second verification was not a cache hit"
    );
    assert_eq!(*again, v.verify_uncached(&presented, &options, later));
    // Other options are another cache entry.
    let server = v.verify(&presented, &opts(Usage::Server, REQUIRE), later);
    assert_rejected(&server, Status::Invalid, ReasonCode::WrongUsage);
}

#[test]
fn cached_verdict_does_not_outlive_valid_until() {
    let v = main_verifier();
    let presented = chain(pki(), CLIENT_CHAIN);
    let options = client(REQUIRE);
    let now = v.verify(&presented, &options, at(NOW));
    assert_accepted(&now, Status::Good, ReasonCode::Ok);
    // Eight days on, both CRLs are past nextUpdate: the cached "good" must
    // not be served.
    let later = at(NOW + Duration::days(8));
    let cached = v.verify(&presented, &options, later);
    assert_eq!(*cached, v.verify_uncached(&presented, &options, later));
    assert_rejected(&cached, Status::Unknown, ReasonCode::RevocationDataStale);
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
    let presented = chain(pki, REVOKED_CHAIN);
    let options = client(PREFER);
    let before = v.verify(&presented, &options, at(NOW));
    assert_accepted(
        &before,
        Status::Unknown,
        ReasonCode::RevocationUnknownSoftFail,
    );
    v.add_crl(&pki.intermediate_crl.der).unwrap();
    let after = v.verify(&presented, &options, at(NOW));
    assert_rejected(&after, Status::Revoked, ReasonCode::Revoked);
}

fn good_and_revoked_for(alg: KeyAlg) {
    let pki = pki_for(alg);
    assert_eq!(pki.client.alg, alg);
    let good = run(pki, CLIENT_CHAIN, MAIN_CRLS, &client(REQUIRE));
    assert_accepted(&good, Status::Good, ReasonCode::Ok);
    assert_eq!((good.chain.len(), good.revocation.len()), (3, 2));
    let revoked = run(pki, REVOKED_CHAIN, MAIN_CRLS, &client(REQUIRE));
    assert_rejected(&revoked, Status::Revoked, ReasonCode::Revoked);
    assert_eq!(
        revoked.revocation[0].reason.as_deref(),
        Some("keyCompromise")
    );
    let wrong_key = run(pki, CLIENT_CHAIN, WRONG_KEY_CRLS, &client(PREFER));
    assert_rejected(&wrong_key, Status::Invalid, ReasonCode::CrlSignatureInvalid);
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
