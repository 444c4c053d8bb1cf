//! OCSP interoperability through the library: responses produced by the real
//! `openssl ocsp` responder (an OpenSSL CA index file, `-reqin`/`-respout`,
//! no network; see `pki_fixtures::openssl`) for the fixture PKI of
//! `pki-fixtures`, handed to `vigil_core::Verifier::add_ocsp_response`.
//!
//! The fixture PKI is generated at the real current time, because openssl
//! stamps thisUpdate with the real clock. The root CRL is always loaded, so
//! the intermediate is covered by a CRL and the leaf only by OCSP (no
//! intermediate CRL unless a test says so).
//!
//! The `openssl` binary is required: without it these tests fail, they do
//! not skip.

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::SystemTime;

use pki_fixtures::openssl::{corrupt_response_signature, CertIdHash, IndexEntry, OcspQuery};
use pki_fixtures::{roles, Ca, Cert, CertSpec, KeyAlg, LeafUsage, Pki, PkiOptions, Reason};
use time::{Duration, OffsetDateTime};
use vigil_core::revocation::OcspError;
use vigil_core::{
    CertStatus, CertificateDer, Decision, Depth, ReasonCode, RevocationPolicy, RevocationResult,
    Source, Status, TrustStore, Verdict, Verifier, VerifyOptions,
};

/// Role (file stem) of the delegated responder: a leaf of `intermediate`
/// with only id-kp-OCSPSigning.
const RESPONDER: &str = "ocsp-responder";
/// Role of a self-signed CA with the intermediate's exact subject name but
/// another key: it signs responses whose responderID names the issuer.
const IMPOSTOR: &str = "impostor";

/// Role of a delegated responder (id-kp-OCSPSigning) issued by
/// `intermediate` whose validity ended a day before the fixture's `now`.
const EXPIRED_RESPONDER: &str = "expired-ocsp-responder";
/// Role of a responder with id-kp-OCSPSigning issued by `other-intermediate`.
const OTHER_RESPONDER: &str = "other-ocsp-responder";
/// Role of a client leaf of `intermediate` whose serial has its top bit
/// set (its DER INTEGER carries a leading 0x00).
const HIGH_SERIAL_CLIENT: &str = "high-serial-client";

/// `tryLater` (RFC 6960 §4.2.1): an OCSPResponse with responseStatus 3 and
/// no responseBytes.
const TRY_LATER: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x03];

/// The fixture PKI of one key algorithm plus the certificates these tests add.
struct Fixture {
    pki: Pki,
    /// Delegated OCSP responder issued by `intermediate`.
    responder: Cert,
    /// Same subject name as `intermediate`, unrelated key.
    impostor: Ca,
    /// [`EXPIRED_RESPONDER`], [`OTHER_RESPONDER`], [`HIGH_SERIAL_CLIENT`].
    extra: Vec<Cert>,
    /// When the index says the revoked certificates were revoked.
    revoked_at: OffsetDateTime,
}

fn fixture_for(alg: KeyAlg) -> &'static Fixture {
    static FIXTURES: [OnceLock<Fixture>; 3] = [const { OnceLock::new() }; 3];
    let slot = KeyAlg::ALL.iter().position(|a| *a == alg).unwrap();
    FIXTURES[slot].get_or_init(|| {
        let pki = pki_fixtures::generate(&PkiOptions {
            alg,
            ..PkiOptions::default()
        })
        .unwrap();
        let leaf = |ca: &Ca, spec: CertSpec| ca.issue_leaf(&spec).unwrap();
        let spec = |role, cn| CertSpec::leaf(role, cn, &pki.options);
        let ocsp_spec = |role, cn| spec(role, cn).with_usage(LeafUsage::OcspSigning);
        let responder = leaf(&pki.intermediate, ocsp_spec(RESPONDER, "ocsp.vigil.test"));
        let impostor = Ca::new_root(
            IMPOSTOR,
            "Vigil Test Intermediate CA",
            KeyAlg::EcdsaP256,
            &pki.options,
        )
        .unwrap();
        let now = pki.options.now;
        let day = Duration::days(1);
        let extra = vec![
            leaf(
                &pki.intermediate,
                ocsp_spec(EXPIRED_RESPONDER, "ocsp-expired.vigil.test")
                    .with_validity(now - day * 30, now - day),
            ),
            leaf(
                &pki.other_intermediate,
                ocsp_spec(OTHER_RESPONDER, "ocsp-other.vigil.test"),
            ),
            leaf(
                &pki.intermediate,
                spec(HIGH_SERIAL_CLIENT, "high.vigil.test")
                    .with_serial(&[0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]),
            ),
        ];
        let revoked_at = now - Duration::hours(3);
        Fixture {
            pki,
            responder,
            impostor,
            extra,
            revoked_at,
        }
    })
}

impl Fixture {
    /// A fixture certificate or one of those added here.
    fn cert(&self, role: &str) -> &Cert {
        self.pki
            .cert(role)
            .or_else(|| {
                [&self.responder, &self.impostor.cert]
                    .into_iter()
                    .chain(&self.extra)
                    .find(|c| c.name == role)
            })
            .unwrap_or_else(|| panic!("no role {role}"))
    }

    /// `role` and its intermediates, leaf first (no root).
    fn chain(&self, role: &str) -> Vec<CertificateDer<'static>> {
        match self.pki.chain(role) {
            Some(chain) => chain.into_iter().map(Cert::certificate_der).collect(),
            None => vec![
                self.cert(role).certificate_der(),
                self.pki.intermediate.cert.certificate_der(),
            ],
        }
    }

    /// An index line: `role` is good.
    fn good(&self, role: &str) -> IndexEntry {
        IndexEntry::good(self.cert(role))
    }

    /// An index line: `role` was revoked (keyCompromise) at `revoked_at`.
    fn revoked(&self, role: &str) -> IndexEntry {
        IndexEntry::revoked(
            self.cert(role),
            self.revoked_at,
            Some(Reason::KeyCompromise),
        )
    }

    /// A request about `role` (issued by `intermediate`), answered by the
    /// intermediate itself from `index`.
    fn ask(&self, role: &str, index: Vec<IndexEntry>) -> OcspQuery {
        OcspQuery::from_issuer(&self.pki.intermediate.cert)
            .about(&self.cert(role).pem)
            .entries(index)
    }
}

/// The default (P-256) fixture.
fn fixture() -> &'static Fixture {
    fixture_for(KeyAlg::EcdsaP256)
}

/// A certificate of the default fixture (e.g. a response signer).
fn cert(role: &str) -> &'static Cert {
    fixture().cert(role)
}

fn good(role: &str) -> IndexEntry {
    fixture().good(role)
}

fn revoked(role: &str) -> IndexEntry {
    fixture().revoked(role)
}

fn ask(role: &str, index: Vec<IndexEntry>) -> OcspQuery {
    fixture().ask(role, index)
}

/// The usual request: about the client, which the index says is good.
fn ask_good_client() -> OcspQuery {
    ask(roles::CLIENT, vec![good(roles::CLIENT)])
}

/// openssl's DER answer to `query`.
fn respond(query: OcspQuery) -> Vec<u8> {
    query.respond().unwrap_or_else(|e| panic!("{e}"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    pki_fixtures::rfc3339(t).unwrap()
}

/// Eight days from now: past `-ndays 7` (and the root CRL's nextUpdate).
fn eight_days_later() -> SystemTime {
    SystemTime::now() + std::time::Duration::from_secs(8 * 86_400)
}

/// A verifier trusting the fixture root, knowing `intermediate`, loaded
/// with the CRLs `crls` and the OCSP responses `responses` (each must load
/// and answer for exactly one certificate).
fn verifier(fx: &Fixture, crls: &[&str], responses: &[&[u8]]) -> Verifier {
    let mut v = verifier_without_ocsp(fx, crls);
    for response in responses {
        assert_eq!(v.add_ocsp_response(response), Ok(1));
    }
    v
}

fn verifier_without_ocsp(fx: &Fixture, crls: &[&str]) -> Verifier {
    let mut trust = TrustStore::new();
    assert!(trust.add(fx.pki.root.cert.certificate_der()).unwrap());
    let mut v = Verifier::new(trust);
    v.add_ca_certificate(&fx.pki.intermediate.cert.certificate_der())
        .unwrap();
    for name in crls {
        v.add_crl(&fx.pki.crl(name).unwrap().der).unwrap();
    }
    v
}

fn options(policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions::default()
        .with_policy(policy)
        .with_depth(Depth::Chain)
}

/// Verifies `role`'s chain at `at` through `verify_uncached` and twice
/// through `verify` (cache fill, cache hit); all three must agree.
fn verify_at(
    v: &Verifier,
    fx: &Fixture,
    role: &str,
    policy: RevocationPolicy,
    at: SystemTime,
) -> Verdict {
    let chain = fx.chain(role);
    let opts = options(policy);
    let uncached = v.verify_uncached(&chain, &opts, at);
    assert_eq!(*v.verify(&chain, &opts, at), uncached, "cache fill differs");
    assert_eq!(*v.verify(&chain, &opts, at), uncached, "cache hit differs");
    uncached
}

/// Verifies `role`'s chain now (after openssl stamped its responses).
fn verify(v: &Verifier, fx: &Fixture, role: &str, policy: RevocationPolicy) -> Verdict {
    verify_at(v, fx, role, policy, SystemTime::now())
}

/// The client of the default fixture, verified now under `policy` with the
/// root CRL and `responses`.
fn verify_client(responses: &[&[u8]], policy: RevocationPolicy) -> Verdict {
    let fx = fixture();
    verify(
        &verifier(fx, &[roles::ROOT_CRL], responses),
        fx,
        roles::CLIENT,
        policy,
    )
}

/// The verdict, status and reason a verdict must have.
type Outcome = (Decision, Status, ReasonCode);

const GOOD: Outcome = (Decision::Accepted, Status::Good, ReasonCode::Ok);
const REVOKED: Outcome = (Decision::Rejected, Status::Revoked, ReasonCode::Revoked);
const MISSING: Outcome = (
    Decision::Rejected,
    Status::Unknown,
    ReasonCode::RevocationDataMissing,
);
const STALE: Outcome = (
    Decision::Rejected,
    Status::Unknown,
    ReasonCode::RevocationDataStale,
);
const NOT_YET_VALID: Outcome = (
    Decision::Rejected,
    Status::Unknown,
    ReasonCode::RevocationDataNotYetValid,
);
const SOFT_FAIL: Outcome = (
    Decision::Accepted,
    Status::Unknown,
    ReasonCode::RevocationUnknownSoftFail,
);

/// Rejected as invalid because of `code`.
fn invalid(code: ReasonCode) -> Outcome {
    (Decision::Rejected, Status::Invalid, code)
}

#[track_caller]
fn assert_verdict(v: &Verdict, (decision, status, reason): Outcome) {
    assert_eq!(
        (v.verdict, v.status, v.reason),
        (decision, status, reason),
        "unexpected verdict: {}",
        v.to_json()
    );
    assert!(!v.detail.is_empty());
}

/// Accepted as good, the leaf's status from OCSP.
#[track_caller]
fn assert_good_by_ocsp(verdict: &Verdict, context: &str) {
    assert_verdict(verdict, GOOD);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp, "{context}");
}

/// The leaf's revocation result and the intermediate's (root CRL, good).
#[track_caller]
fn leaf_result<'v>(v: &'v Verdict, fx: &Fixture, role: &str) -> &'v RevocationResult {
    assert_eq!(v.revocation.len(), 2, "{}", v.to_json());
    let leaf = &v.revocation[0];
    assert_eq!(
        vigil_core::text::hex(&leaf.serial),
        verdict_serial(fx.cert(role))
    );
    let inter = &v.revocation[1];
    assert_eq!(
        vigil_core::text::hex(&inter.serial),
        fx.pki.intermediate.cert.serial_hex()
    );
    assert_eq!(
        (inter.source, inter.status),
        (Source::Crl, CertStatus::Good),
        "{}",
        v.to_json()
    );
    leaf
}

/// source, status and reason of one revocation result.
fn summary(r: &RevocationResult) -> (Source, CertStatus, Option<&str>) {
    (r.source, r.status, r.reason.as_deref())
}

/// How a verdict spells a serial: lowercase hex of the DER INTEGER content
/// (a leading 0x00 kept when the top bit is set).
fn verdict_serial(cert: &Cert) -> String {
    let hex = cert.serial_hex();
    if cert.serial[0] & 0x80 != 0 {
        format!("00{hex}")
    } else {
        hex
    }
}

/// An OCSP answer's thisUpdate (openssl's clock, not before the fixture's
/// `now`) and nextUpdate (`-ndays 7` later).
#[track_caller]
fn assert_openssl_times(fx: &Fixture, r: &RevocationResult) {
    let at = |secs: Option<i64>| {
        OffsetDateTime::from_unix_timestamp(secs.expect("a time")).expect("in range")
    };
    let (this, next) = (at(r.this_update), at(r.next_update));
    assert!(this >= fx.pki.options.now, "thisUpdate {this}");
    assert!(this <= OffsetDateTime::now_utc(), "thisUpdate {this}");
    assert_eq!(next - this, Duration::days(7));
}

/// An OCSP result for the leaf that is `unknown` because of `code`.
#[track_caller]
fn assert_leaf_unknown(v: &Verdict, fx: &Fixture, role: &str, code: ReasonCode) {
    let leaf = leaf_result(v, fx, role);
    assert_eq!(
        summary(leaf),
        (Source::Ocsp, CertStatus::Unknown, Some(code.as_str())),
        "{}",
        v.to_json()
    );
    assert_eq!(leaf.revoked_at.map(vigil_core::text::rfc3339), None);
}

/// Rejected as revoked, the leaf's result from `source` saying
/// keyCompromise; returns that result.
#[track_caller]
fn assert_leaf_revoked<'v>(
    v: &'v Verdict,
    fx: &Fixture,
    role: &str,
    source: Source,
) -> &'v RevocationResult {
    assert_verdict(v, REVOKED);
    let leaf = leaf_result(v, fx, role);
    assert_eq!(
        summary(leaf),
        (source, CertStatus::Revoked, Some("keyCompromise"))
    );
    leaf
}

/// `resp` (with the root CRL) makes the client invalid because of `code`
/// under both policies, the leaf `unknown` because of it.
#[track_caller]
fn assert_refused_under_both_policies(resp: &[u8], code: ReasonCode) {
    let fx = fixture();
    let v = verifier(fx, &[roles::ROOT_CRL], &[resp]);
    for policy in BOTH {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(&verdict, invalid(code));
        assert_leaf_unknown(&verdict, fx, roles::CLIENT, code);
    }
}

const REQUIRE: RevocationPolicy = RevocationPolicy::Require;
const PREFER: RevocationPolicy = RevocationPolicy::Prefer;
const BOTH: [RevocationPolicy; 2] = [REQUIRE, PREFER];

// 1. good, signed by the issuing intermediate.
#[test]
fn good_leaf_signed_by_issuer_is_accepted() {
    let fx = fixture();
    let resp = respond(ask_good_client());
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in BOTH {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(&verdict, GOOD);
        let leaf = leaf_result(&verdict, fx, roles::CLIENT);
        assert_eq!(
            (leaf.source, leaf.status, &leaf.reason, &leaf.revoked_at),
            (Source::Ocsp, CertStatus::Good, &None, &None)
        );
        assert_openssl_times(fx, leaf);
    }
}

// 1b. the same without the root CRL: the intermediate is then uncovered.
#[test]
fn good_leaf_without_root_crl_leaves_intermediate_missing() {
    let fx = fixture();
    let resp = respond(ask_good_client());
    let verdict = verify(&verifier(fx, &[], &[&resp]), fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, MISSING);
    let (leaf, inter) = (&verdict.revocation[0], &verdict.revocation[1]);
    assert_eq!((leaf.source, leaf.status), (Source::Ocsp, CertStatus::Good));
    assert_eq!(
        (inter.source, inter.status),
        (Source::None, CertStatus::Unknown)
    );
}

// 2. revoked leaf.
#[test]
fn revoked_leaf_is_rejected_with_reason_and_time() {
    let fx = fixture();
    let resp = respond(ask(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in BOTH {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        let leaf = assert_leaf_revoked(&verdict, fx, roles::CLIENT, Source::Ocsp);
        assert_eq!(
            leaf.revoked_at.map(vigil_core::text::rfc3339),
            Some(rfc3339(fx.revoked_at))
        );
        assert_openssl_times(fx, leaf);
    }
}

// 2b. a verified "revoked" stands even when the answer is past nextUpdate.
#[test]
fn stale_revoked_answer_still_revokes() {
    let fx = fixture();
    let resp = respond(ask(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let later = eight_days_later();
    for policy in BOTH {
        let verdict = verify_at(&v, fx, roles::CLIENT, policy, later);
        assert_verdict(&verdict, REVOKED);
        let leaf = &verdict.revocation[0];
        assert_eq!(leaf.source, Source::Ocsp);
        assert_eq!(
            leaf.revoked_at.map(vigil_core::text::rfc3339),
            Some(rfc3339(fx.revoked_at))
        );
    }
}

// 3. serial unknown to the responder.
#[track_caller]
fn unknown_serial(policy: RevocationPolicy, expected: Outcome) {
    let fx = fixture();
    let resp = respond(ask(roles::CLIENT, vec![good(roles::SERVER)]));
    let verdict = verify_client(&[&resp], policy);
    assert_verdict(&verdict, expected);
    assert_leaf_unknown(&verdict, fx, roles::CLIENT, ReasonCode::OcspUnknown);
}

#[test]
fn unknown_serial_fails_closed_under_require() {
    let expected = (Decision::Rejected, Status::Unknown, ReasonCode::OcspUnknown);
    unknown_serial(REQUIRE, expected);
}

#[test]
fn unknown_serial_soft_fails_under_prefer() {
    unknown_serial(PREFER, SOFT_FAIL);
}

// 4. delegated responder (id-kp-OCSPSigning, issued by the intermediate,
// included in the response by openssl).
#[test]
fn delegated_responder_is_accepted() {
    let fx = fixture();
    let resp = respond(ask_good_client().signed_by(cert(RESPONDER)));
    let verdict = verify_client(&[&resp], REQUIRE);
    assert_verdict(&verdict, GOOD);
    let leaf = leaf_result(&verdict, fx, roles::CLIENT);
    assert_eq!((leaf.source, leaf.status), (Source::Ocsp, CertStatus::Good));
    assert_openssl_times(fx, leaf);
}

#[test]
fn delegated_responder_revoked_answer_is_rejected() {
    let fx = fixture();
    let query = ask(roles::CLIENT, vec![revoked(roles::CLIENT)]).signed_by(cert(RESPONDER));
    let verdict = verify_client(&[&respond(query)], PREFER);
    assert_verdict(&verdict, REVOKED);
    let leaf = leaf_result(&verdict, fx, roles::CLIENT);
    assert_eq!(
        (leaf.source, leaf.reason.as_deref()),
        (Source::Ocsp, Some("keyCompromise"))
    );
}

// 4b. a delegated responder whose certificate is left out of the response
// (`-resp_no_certs`) cannot be authorized.
#[test]
fn delegated_responder_without_its_certificate_is_not_authorized() {
    let query = ask_good_client()
        .signed_by(cert(RESPONDER))
        .responder_arg("-resp_no_certs");
    assert_refused_under_both_policies(&respond(query), ReasonCode::OcspResponderNotAuthorized);
}

// 4c. responderID byKey (`-resp_key_id`) instead of byName.
#[test]
fn responder_id_by_key_is_accepted() {
    for signer in [roles::INTERMEDIATE, RESPONDER] {
        let query = ask_good_client()
            .signed_by(cert(signer))
            .responder_arg("-resp_key_id");
        assert_good_by_ocsp(&verify_client(&[&respond(query)], REQUIRE), signer);
    }
}

// 5. responder certificate without id-kp-OCSPSigning (the client leaf).
#[test]
fn responder_without_ocsp_signing_is_not_authorized() {
    let resp = respond(ask_good_client().signed_by(cert(roles::SERVER)));
    assert_refused_under_both_policies(&resp, ReasonCode::OcspResponderNotAuthorized);
}

#[test]
fn client_certificate_as_its_own_responder_is_not_authorized() {
    let resp = respond(ask_good_client().signed_by(cert(roles::CLIENT)));
    assert_refused_under_both_policies(&resp, ReasonCode::OcspResponderNotAuthorized);
}

// 6. responder from another hierarchy.
#[test]
fn responder_from_other_hierarchy_is_not_authorized() {
    let resp = respond(ask_good_client().signed_by(cert(roles::OTHER_INTERMEDIATE)));
    assert_refused_under_both_policies(&resp, ReasonCode::OcspResponderNotAuthorized);
}

// 7. stale: verified 8 days later with -ndays 7. The root CRL (nextUpdate
// now + 7d) is then stale too.
#[test]
fn stale_good_answer() {
    let fx = fixture();
    let resp = respond(ask_good_client());
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let later = eight_days_later();

    let verdict = verify_at(&v, fx, roles::CLIENT, REQUIRE, later);
    assert_verdict(&verdict, STALE);
    let leaf = &verdict.revocation[0];
    let stale = Some("revocation_data_stale");
    assert_eq!(summary(leaf), (Source::Ocsp, CertStatus::Unknown, stale));
    assert_openssl_times(fx, leaf);
    assert!(
        verdict.detail.contains("client.vigil.test"),
        "{}",
        verdict.detail
    );

    let verdict = verify_at(&v, fx, roles::CLIENT, PREFER, later);
    assert_verdict(&verdict, SOFT_FAIL);
    let leaf = &verdict.revocation[0];
    assert_eq!(leaf.source, Source::Ocsp);
    assert_eq!(leaf.reason.as_deref(), stale);
}

/// A good answer for the client as the only revocation data, the client's
/// chain, and options checking the leaf only under require.
fn leaf_only_by_ocsp() -> (Verifier, Vec<CertificateDer<'static>>, VerifyOptions) {
    let fx = fixture();
    let resp = respond(ask_good_client());
    let opts = options(REQUIRE).with_depth(Depth::Leaf);
    (verifier(fx, &[], &[&resp]), fx.chain(roles::CLIENT), opts)
}

#[test]
fn stale_good_answer_at_leaf_depth() {
    let (v, chain, opts) = leaf_only_by_ocsp();
    let verdict = v.verify_uncached(&chain, &opts, eight_days_later());
    assert_verdict(&verdict, STALE);
    assert_eq!(verdict.revocation.len(), 1);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
    // ... and at the real time, the same response is good.
    let verdict = v.verify_uncached(&chain, &opts, SystemTime::now());
    assert_verdict(&verdict, GOOD);
}

// 8. SHA-256 CertID.
#[test]
fn sha256_cert_id_is_accepted() {
    let resp = respond(ask_good_client().hash(CertIdHash::Sha256));
    assert_good_by_ocsp(&verify_client(&[&resp], REQUIRE), "sha256");

    let query = ask(roles::CLIENT, vec![revoked(roles::CLIENT)]).hash(CertIdHash::Sha256);
    assert_verdict(&verify_client(&[&respond(query)], REQUIRE), REVOKED);
}

// 8b. RSA and Ed25519 hierarchies (openssl signs with sha256WithRSAEncryption
// and Ed25519).
#[test]
fn good_and_revoked_for_rsa_and_ed25519() {
    for alg in [KeyAlg::Rsa2048, KeyAlg::Ed25519] {
        let fx = fixture_for(alg);
        let context = format!("{alg:?}");
        for signer in [roles::INTERMEDIATE, RESPONDER] {
            let answer = |entry: IndexEntry| {
                let query = fx
                    .ask(roles::CLIENT, vec![entry])
                    .signed_by(fx.cert(signer));
                let v = verifier(fx, &[roles::ROOT_CRL], &[&respond(query)]);
                verify(&v, fx, roles::CLIENT, REQUIRE)
            };
            assert_good_by_ocsp(&answer(fx.good(roles::CLIENT)), &context);

            let verdict = answer(fx.revoked(roles::CLIENT));
            assert_verdict(&verdict, REVOKED);
            assert_eq!(
                verdict.revocation[0]
                    .revoked_at
                    .map(vigil_core::text::rfc3339),
                Some(rfc3339(fx.revoked_at))
            );
        }
    }
}

// 9. corrupted signature: one bit of the signature value flipped (its last
// octet, the end of ECDSA's `s`), so the DER stays valid.
#[test]
fn corrupted_signature_is_rejected_under_both_policies() {
    for signer in [roles::INTERMEDIATE, RESPONDER] {
        let resp = respond(ask_good_client().signed_by(cert(signer)));
        let bad = corrupt_response_signature(&resp).unwrap();
        assert_refused_under_both_policies(&bad, ReasonCode::OcspSignatureInvalid);
    }
}

// 9b. a well-formed signature by the wrong key: signed by a CA with the
// intermediate's exact subject name (so responderID byName names the
// issuer) but another key.
#[test]
fn signature_by_another_key_under_the_issuers_name_is_invalid() {
    let resp = respond(ask_good_client().signed_by(cert(IMPOSTOR)));
    assert_refused_under_both_policies(&resp, ReasonCode::OcspSignatureInvalid);
}

// 9c. an answer that fails verification is nobody's word: beside a
// verified good answer for the same certificate it is set aside (and
// reported), in either order and under either policy (issue 11: a forged
// answer must not outrank good data).
#[test]
fn corrupted_response_next_to_a_good_one_is_set_aside_and_reported() {
    let fx = fixture();
    let good_resp = respond(ask_good_client());
    let bad = corrupt_response_signature(&good_resp).unwrap();
    let impostor = respond(ask_good_client().signed_by(cert(IMPOSTOR)));
    for forged in [&bad[..], &impostor[..]] {
        for policy in [REQUIRE, PREFER] {
            for order in [[&good_resp[..], forged], [forged, &good_resp[..]]] {
                let verdict = verify_client(&order, policy);
                assert_verdict(&verdict, GOOD);
                let leaf = leaf_result(&verdict, fx, roles::CLIENT);
                assert!(
                    leaf.warning
                        .as_deref()
                        .is_some_and(|w| w.contains("set aside")),
                    "the forged answer is reported: {}",
                    verdict.to_json()
                );
            }
        }
    }
    // Alone, it still decides nothing good.
    let verdict = verify_client(&[&bad], PREFER);
    assert_verdict(&verdict, invalid(ReasonCode::OcspSignatureInvalid));
}

/// No usable answer for the client: missing under require, its own result
/// from no source.
#[track_caller]
fn assert_client_missing(v: &Verifier) {
    let fx = fixture();
    let verdict = verify(v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, MISSING);
    assert_eq!(
        summary(leaf_result(&verdict, fx, roles::CLIENT)),
        (
            Source::None,
            CertStatus::Unknown,
            Some("revocation_data_missing")
        )
    );
}

// 10. tryLater.
#[test]
fn try_later_is_not_successful() {
    let mut v = verifier_without_ocsp(fixture(), &[roles::ROOT_CRL]);
    assert_eq!(
        v.add_ocsp_response(&TRY_LATER),
        Err(OcspError::NotSuccessful { status: "tryLater" })
    );
    assert_client_missing(&v);
}

// 11. a response for another certificate only.
#[test]
fn response_for_other_certificate_is_ignored() {
    let fx = fixture();
    let resp = respond(ask(roles::SERVER, vec![good(roles::SERVER)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    assert_client_missing(&v);
    // The server, which it is about, is good.
    assert_verdict(&verify(&v, fx, roles::SERVER, REQUIRE), GOOD);
}

// 11b. several responses: the one about the leaf is found among others.
#[test]
fn matching_response_among_several_is_used() {
    let other = respond(ask(roles::SERVER, vec![revoked(roles::SERVER)]));
    let mine = respond(ask_good_client().hash(CertIdHash::Sha256));
    assert_good_by_ocsp(&verify_client(&[&other, &mine], REQUIRE), "mine");
}

// 12. both sources.
const BOTH_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_CRL];

#[test]
fn crl_good_and_ocsp_revoked_is_revoked() {
    let fx = fixture();
    let resp = respond(ask(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let v = verifier(fx, BOTH_CRLS, &[&resp]);
    for policy in BOTH {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        let leaf = assert_leaf_revoked(&verdict, fx, roles::CLIENT, Source::Ocsp);
        assert_eq!(
            leaf.revoked_at.map(vigil_core::text::rfc3339),
            Some(rfc3339(fx.revoked_at))
        );
    }
}

#[test]
fn crl_revoked_and_ocsp_good_is_revoked() {
    let fx = fixture();
    let resp = respond(ask(
        roles::REVOKED_CLIENT,
        vec![good(roles::REVOKED_CLIENT)],
    ));
    let v = verifier(fx, BOTH_CRLS, &[&resp]);
    for policy in BOTH {
        let verdict = verify(&v, fx, roles::REVOKED_CLIENT, policy);
        let leaf = assert_leaf_revoked(&verdict, fx, roles::REVOKED_CLIENT, Source::Crl);
        // intermediate.crl revokes it at the fixture's now - 2h.
        assert_eq!(
            leaf.revoked_at.map(vigil_core::text::rfc3339),
            Some(rfc3339(fx.pki.options.now - Duration::hours(2)))
        );
    }
}

#[test]
fn crl_good_and_ocsp_good_is_good() {
    let fx = fixture();
    let resp = respond(ask_good_client());
    let v = verifier(fx, BOTH_CRLS, &[&resp]);
    // OCSP is consulted first and decides.
    assert_good_by_ocsp(&verify(&v, fx, roles::CLIENT, REQUIRE), "both");
}

// 13. malformed files.
#[test]
fn malformed_responses_are_rejected_at_load() {
    let fx = fixture();
    let resp = respond(ask_good_client());
    let mut v = verifier_without_ocsp(fx, &[roles::ROOT_CRL]);
    let truncated = &resp[..resp.len() / 2];
    let mut trailing = resp.clone();
    trailing.push(0);
    let garbage: &[u8] = b"this is not an OCSP response\n";
    for bad in [garbage, truncated, &trailing, &resp[..resp.len() - 1], &[]] {
        let got = v.add_ocsp_response(bad);
        assert!(
            matches!(got, Err(OcspError::Malformed { .. })),
            "{} bytes: {got:?}",
            bad.len()
        );
    }
    // Nothing was loaded.
    assert_verdict(&verify(&v, fx, roles::CLIENT, REQUIRE), MISSING);
}

#[test]
fn openssl_index_helper_writes_the_documented_format() {
    let fx = fixture();
    let client = fx.cert(roles::CLIENT);
    let text = pki_fixtures::openssl::index_text(&[fx.revoked(roles::CLIENT)]).unwrap();
    let fields: Vec<&str> = text.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 6);
    assert_eq!(fields[0], "R");
    assert_eq!(fields[1].len(), 13);
    assert!(fields[2].ends_with("Z,keyCompromise"));
    assert_eq!(fields[3], client.serial_hex().to_uppercase());
    assert_eq!(fields[4], "unknown");
}

// Further interoperability cases.

#[test]
fn expired_delegated_responder_is_not_authorized() {
    let resp = respond(ask_good_client().signed_by(cert(EXPIRED_RESPONDER)));
    assert_refused_under_both_policies(&resp, ReasonCode::OcspResponderNotAuthorized);
}

#[test]
fn ocsp_signing_responder_of_another_ca_is_not_authorized() {
    let fx = fixture();
    let resp = respond(ask_good_client().signed_by(cert(OTHER_RESPONDER)));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in BOTH {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(&verdict, invalid(ReasonCode::OcspResponderNotAuthorized));
    }
}

#[test]
fn root_answering_for_a_leaf_of_the_intermediate_is_not_authorized() {
    let resp = respond(ask_good_client().signed_by(cert(roles::ROOT)));
    let verdict = verify_client(&[&resp], PREFER);
    assert_verdict(&verdict, invalid(ReasonCode::OcspResponderNotAuthorized));
}

#[test]
fn impostor_by_key_id_is_not_authorized() {
    let query = ask_good_client()
        .signed_by(cert(IMPOSTOR))
        .responder_arg("-resp_key_id");
    let verdict = verify_client(&[&respond(query)], PREFER);
    assert_verdict(&verdict, invalid(ReasonCode::OcspResponderNotAuthorized));
}

#[test]
fn issuer_response_without_certificates_is_accepted() {
    let resp = respond(ask_good_client().responder_arg("-resp_no_certs"));
    assert_good_by_ocsp(&verify_client(&[&resp], REQUIRE), "-resp_no_certs");
}

#[test]
fn response_with_nonce_is_accepted() {
    let resp = respond(ask_good_client().with_nonce());
    assert_good_by_ocsp(&verify_client(&[&resp], REQUIRE), "nonce");
}

#[test]
fn one_response_for_two_certificates() {
    let fx = fixture();
    let query = ask(
        roles::CLIENT,
        vec![good(roles::CLIENT), revoked(roles::SERVER)],
    )
    .about(&cert(roles::SERVER).pem);
    let mut v = verifier_without_ocsp(fx, &[roles::ROOT_CRL]);
    assert_eq!(v.add_ocsp_response(&respond(query)), Ok(2));
    assert_good_by_ocsp(&verify(&v, fx, roles::CLIENT, REQUIRE), "client");
    let verdict = verify(&v, fx, roles::SERVER, REQUIRE);
    assert_verdict(&verdict, REVOKED);
    assert_eq!(
        verdict.revocation[0].reason.as_deref(),
        Some("keyCompromise")
    );
}

#[test]
fn serial_with_top_bit_set_is_matched() {
    let fx = fixture();
    let resp = respond(ask(HIGH_SERIAL_CLIENT, vec![revoked(HIGH_SERIAL_CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, HIGH_SERIAL_CLIENT, REQUIRE);
    assert_verdict(&verdict, REVOKED);
    let leaf = leaf_result(&verdict, fx, HIGH_SERIAL_CLIENT);
    assert_eq!(vigil_core::text::hex(&leaf.serial), "008011223344556677");
    assert_eq!(leaf.source, Source::Ocsp);
}

#[test]
fn this_update_in_the_future_is_not_yet_valid() {
    let fx = fixture();
    let resp = respond(ask_good_client());
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let earlier = SystemTime::from(fx.pki.options.now - Duration::hours(1));
    let verdict = verify_at(&v, fx, roles::CLIENT, REQUIRE, earlier);
    assert_verdict(&verdict, NOT_YET_VALID);
    assert_leaf_unknown(
        &verdict,
        fx,
        roles::CLIENT,
        ReasonCode::RevocationDataNotYetValid,
    );
    let verdict = verify_at(&v, fx, roles::CLIENT, PREFER, earlier);
    assert_verdict(&verdict, SOFT_FAIL);
}

/// The whole chain by OCSP, no CRL: the root answers for the intermediate.
#[test]
fn whole_chain_by_ocsp() {
    let fx = fixture();
    let leaf = respond(ask_good_client());
    let root = &fx.pki.root.cert;
    let intermediate = |entry| {
        respond(
            OcspQuery::from_issuer(root)
                .about(&fx.pki.intermediate.cert.pem)
                .entry(entry),
        )
    };
    let inter = intermediate(good(roles::INTERMEDIATE));
    let v = verifier(fx, &[], &[&leaf, &inter]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, GOOD);
    for r in &verdict.revocation {
        assert_eq!((r.source, r.status), (Source::Ocsp, CertStatus::Good));
        assert_openssl_times(fx, r);
    }

    let inter = intermediate(revoked(roles::INTERMEDIATE));
    let v = verifier(fx, &[], &[&leaf, &inter]);
    let verdict = verify(&v, fx, roles::CLIENT, PREFER);
    assert_verdict(&verdict, REVOKED);
    assert_eq!(
        summary(&verdict.revocation[1]),
        (Source::Ocsp, CertStatus::Revoked, Some("keyCompromise"))
    );
}

/// A cached accepted verdict holds only within the OCSP answer's window.
#[test]
fn cached_verdict_follows_the_ocsp_window() {
    // No CRL: the leaf only, so the OCSP answer alone sets the window.
    let (v, chain, opts) = leaf_only_by_ocsp();
    let now = SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    for (at, expected) in [
        (now, GOOD),
        (now + day * 8, STALE),
        (now - day / 24, NOT_YET_VALID),
        (now + day * 6, GOOD),
    ] {
        assert_verdict(&v.verify(&chain, &opts, at), expected);
    }
}

/// Loading a response after a verdict was cached changes the verdict.
#[test]
fn response_loaded_later_invalidates_a_cached_verdict() {
    let fx = fixture();
    let good_resp = respond(ask_good_client());
    let revoked_resp = respond(ask(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let mut v = verifier(fx, &[roles::ROOT_CRL], &[&good_resp]);
    let chain = fx.chain(roles::CLIENT);
    let opts = options(REQUIRE);
    let now = SystemTime::now();
    assert!(v.verify(&chain, &opts, now).is_accepted());
    assert_eq!(v.add_ocsp_response(&revoked_resp), Ok(1));
    assert_verdict(&v.verify(&chain, &opts, now), REVOKED);
}

// RFC 6960 §4.2.2.2.1: a delegated responder that the issuer's own CRL
// revokes is not trusted, whatever it signs; an undeterminable one is.
#[test]
fn revoked_delegated_responder_is_not_trusted() {
    let fx = fixture();
    let resp = respond(ask_good_client().signed_by(cert(RESPONDER)));
    // The verdict for the leaf (root CRL, the response, and an intermediate
    // CRL revoking the responder or not) and where the leaf's status came from.
    let leaf_only = |revoke_responder: bool| {
        let mut spec = pki_fixtures::CrlSpec::new(&fx.pki.options);
        spec.number = 10;
        if revoke_responder {
            spec = spec.revoke(
                &fx.responder,
                fx.pki.options.now - Duration::hours(1),
                Reason::KeyCompromise,
            );
        }
        let mut v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
        v.add_crl(&fx.pki.intermediate.crl(&spec).unwrap().der)
            .unwrap();
        let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
        let source = leaf_result(&verdict, fx, roles::CLIENT).source;
        (verdict, source)
    };
    // Only OCSP for the leaf: the revoked responder's "good" is refused.
    // The intermediate's CRL still answers "good" for the leaf, so the
    // verdict stands on the CRL, never on the refused OCSP answer.
    let (verdict, source) = leaf_only(true);
    assert_verdict(&verdict, GOOD);
    assert_eq!(source, Source::Crl);

    // The same CRL without the responder on it: the OCSP answer is used.
    let (verdict, source) = leaf_only(false);
    assert_verdict(&verdict, GOOD);
    assert_eq!(source, Source::Ocsp);
}
