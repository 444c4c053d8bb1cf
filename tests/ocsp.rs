//! OCSP interoperability through the library: responses produced by the real
//! `openssl ocsp` responder (an OpenSSL CA index file, `-reqin`/`-respout`,
//! no network) for the fixture PKI of `pki-fixtures`, handed to
//! `vigil_core::Verifier::add_ocsp_response`.
//!
//! The fixture PKI is generated at the real current time, because openssl
//! stamps thisUpdate with the real clock. The root CRL is always loaded, so
//! the intermediate is covered by a CRL and the leaf only by OCSP (no
//! intermediate CRL unless a test says so).
//!
//! The `openssl` binary is required: without it these tests fail, they do
//! not skip.

#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use pki_fixtures::{roles, Ca, Cert, CertSpec, KeyAlg, LeafUsage, Pki, PkiOptions};
use tempfile::TempDir;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
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
    static P256: OnceLock<Fixture> = OnceLock::new();
    static RSA: OnceLock<Fixture> = OnceLock::new();
    static ED25519: OnceLock<Fixture> = OnceLock::new();
    let cell = match alg {
        KeyAlg::EcdsaP256 => &P256,
        KeyAlg::Rsa2048 => &RSA,
        KeyAlg::Ed25519 => &ED25519,
    };
    cell.get_or_init(|| {
        let pki = pki_fixtures::generate(&PkiOptions {
            alg,
            ..PkiOptions::default()
        })
        .unwrap();
        let responder = pki
            .intermediate
            .issue_leaf(
                &CertSpec::leaf(RESPONDER, "ocsp.vigil.test", &pki.options)
                    .with_usage(LeafUsage::OcspSigning),
            )
            .unwrap();
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
            pki.intermediate
                .issue_leaf(
                    &CertSpec::leaf(EXPIRED_RESPONDER, "ocsp-expired.vigil.test", &pki.options)
                        .with_usage(LeafUsage::OcspSigning)
                        .with_validity(now - day * 30, now - day),
                )
                .unwrap(),
            pki.other_intermediate
                .issue_leaf(
                    &CertSpec::leaf(OTHER_RESPONDER, "ocsp-other.vigil.test", &pki.options)
                        .with_usage(LeafUsage::OcspSigning),
                )
                .unwrap(),
            pki.intermediate
                .issue_leaf(
                    &CertSpec::leaf(HIGH_SERIAL_CLIENT, "high.vigil.test", &pki.options)
                        .with_serial(&[0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]),
                )
                .unwrap(),
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
            Some(chain) => chain.into_iter().map(der).collect(),
            None => vec![der(self.cert(role)), der(&self.pki.intermediate.cert)],
        }
    }
}

/// The default (P-256) fixture.
fn fixture() -> &'static Fixture {
    fixture_for(KeyAlg::EcdsaP256)
}

fn rfc3339(t: OffsetDateTime) -> String {
    pki_fixtures::rfc3339(t).unwrap()
}

fn parse_rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

/// The `openssl` command, after checking once that it runs. Panics (so the
/// test fails, never skips) when it does not.
fn openssl() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => panic!(
            "`openssl version` failed ({}): {}. These OCSP interoperability tests need the \
             OpenSSL 3 command-line tool as the OCSP responder.",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run `openssl` ({e}). These OCSP interoperability tests need the OpenSSL 3 \
             command-line tool on PATH as the OCSP responder (e.g. `apt-get install openssl`); \
             they fail rather than skip without it."
        ),
    });
    "openssl"
}

/// Runs openssl with `args`, panicking with its output if it fails.
fn run_openssl(args: &[&std::ffi::OsStr]) {
    let out = Command::new(openssl()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {:?} failed ({}):\nstdout: {}\nstderr: {}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One line of an OpenSSL CA index (`index.txt`).
enum Entry {
    /// `V`: the responder answers good.
    Good(&'static Cert),
    /// `R` with keyCompromise at this time: the responder answers revoked.
    Revoked(&'static Cert, OffsetDateTime),
}

/// `YYMMDDHHMMSSZ`, the index file's time format.
fn index_time(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year repr:last_two][month][day][hour][minute][second]Z"
    ))
    .unwrap()
}

fn index_text(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| match e {
            Entry::Good(cert) => format!(
                "V\t{}\t\t{}\tunknown\t/CN={}\n",
                index_time(cert.not_after),
                cert.serial_hex().to_uppercase(),
                cert.name
            ),
            Entry::Revoked(cert, at) => format!(
                "R\t{}\t{},keyCompromise\t{}\tunknown\t/CN={}\n",
                index_time(cert.not_after),
                index_time(*at),
                cert.serial_hex().to_uppercase(),
                cert.name
            ),
        })
        .collect()
}

/// What to ask the openssl responder.
struct Ask {
    /// Roles of the certificates the request is about (one SingleRequest each).
    certs: Vec<&'static str>,
    /// Role of its issuer (`-issuer` of the request, `-CA` of the responder).
    issuer: &'static str,
    /// Role whose certificate and key sign the response.
    signer: &'static str,
    index: Vec<Entry>,
    /// SHA-256 CertID instead of SHA-1.
    sha256: bool,
    /// Put a nonce in the request (openssl echoes it in the response).
    nonce: bool,
    /// Extra responder options.
    responder_args: Vec<&'static str>,
}

impl Ask {
    /// A request about `cert` (issued by `intermediate`), answered by the
    /// intermediate itself from `index`.
    fn new(cert: &'static str, index: Vec<Entry>) -> Self {
        Self {
            certs: vec![cert],
            issuer: roles::INTERMEDIATE,
            signer: roles::INTERMEDIATE,
            index,
            sha256: false,
            nonce: false,
            responder_args: Vec::new(),
        }
    }

    /// Also asks about `cert` (same issuer) in the same request.
    fn and(mut self, cert: &'static str) -> Self {
        self.certs.push(cert);
        self
    }

    /// The issuer of the certificates asked about, which also signs.
    fn issuer(mut self, role: &'static str) -> Self {
        self.issuer = role;
        self.signer = role;
        self
    }

    fn nonce(mut self) -> Self {
        self.nonce = true;
        self
    }

    fn signer(mut self, role: &'static str) -> Self {
        self.signer = role;
        self
    }

    fn sha256(mut self) -> Self {
        self.sha256 = true;
        self
    }

    fn responder_arg(mut self, arg: &'static str) -> Self {
        self.responder_args.push(arg);
        self
    }
}

/// A temporary directory holding the fixture's files and openssl's work.
struct Workdir {
    dir: TempDir,
    next: Cell<usize>,
}

impl Workdir {
    fn new() -> Self {
        Self::with(fixture())
    }

    fn with(fx: &'static Fixture) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fx.pki.write_to(dir.path()).unwrap();
        let extra = [&fx.responder, &fx.impostor.cert]
            .into_iter()
            .chain(&fx.extra);
        for cert in extra {
            std::fs::write(dir.path().join(format!("{}.pem", cert.name)), &cert.pem).unwrap();
            std::fs::write(
                dir.path().join(format!("{}.key.pem", cert.name)),
                &cert.key_pem,
            )
            .unwrap();
        }
        Self {
            dir,
            next: Cell::new(0),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Asks openssl: writes the index, makes the request
    /// (`openssl ocsp -issuer -cert -reqout -no_nonce`), answers it
    /// (`openssl ocsp -index -rsigner -rkey -CA -reqin -respout -ndays 7`)
    /// and returns the DER response.
    fn respond(&self, ask: &Ask) -> Vec<u8> {
        let n = self.next.get();
        self.next.set(n + 1);
        let index = self.path(&format!("index-{n}.txt"));
        let request = self.path(&format!("request-{n}.der"));
        let response = self.path(&format!("response-{n}.der"));
        std::fs::write(&index, index_text(&ask.index)).unwrap();
        let pem = |role: &str| self.path(&format!("{role}.pem"));
        let key = |role: &str| self.path(&format!("{role}.key.pem"));

        let mut req: Vec<PathBuf> = vec!["ocsp".into(), "-issuer".into(), pem(ask.issuer)];
        if ask.sha256 {
            // The digest applies to the -cert options after it.
            req.push("-sha256".into());
        }
        for cert in &ask.certs {
            req.extend(["-cert".into(), pem(cert)]);
        }
        req.extend(["-reqout".into(), request.clone()]);
        if !ask.nonce {
            req.push("-no_nonce".into());
        }
        run_openssl(&os_args(&req));

        let mut resp: Vec<PathBuf> = vec![
            "ocsp".into(),
            "-index".into(),
            index,
            "-rsigner".into(),
            pem(ask.signer),
            "-rkey".into(),
            key(ask.signer),
            "-CA".into(),
            pem(ask.issuer),
            "-reqin".into(),
            request,
            "-respout".into(),
            response.clone(),
            "-ndays".into(),
            "7".into(),
        ];
        resp.extend(ask.responder_args.iter().map(PathBuf::from));
        run_openssl(&os_args(&resp));
        std::fs::read(&response).unwrap()
    }
}

fn os_args(args: &[PathBuf]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(|a| a.as_os_str()).collect()
}

fn der(cert: &Cert) -> CertificateDer<'static> {
    CertificateDer::from(cert.der.clone())
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
    assert!(trust.add(der(&fx.pki.root.cert)).unwrap());
    let mut v = Verifier::new(trust);
    v.add_ca_certificate(&der(&fx.pki.intermediate.cert))
        .unwrap();
    for name in crls {
        v.add_crl(&fx.pki.crl(name).unwrap().der).unwrap();
    }
    v
}

fn options(policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions {
        policy,
        depth: Depth::Chain,
        ..VerifyOptions::default()
    }
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

#[track_caller]
fn assert_verdict(v: &Verdict, decision: Decision, status: Status, reason: ReasonCode) {
    assert_eq!(
        (v.verdict, v.status, v.reason),
        (decision, status, reason),
        "unexpected verdict: {}",
        v.to_json()
    );
    assert!(!v.detail.is_empty());
}

/// The leaf's revocation result and the intermediate's (root CRL, good).
#[track_caller]
fn leaf_result<'v>(v: &'v Verdict, fx: &Fixture, role: &str) -> &'v RevocationResult {
    assert_eq!(v.revocation.len(), 2, "{}", v.to_json());
    let leaf = &v.revocation[0];
    assert_eq!(leaf.serial, verdict_serial(fx.cert(role)));
    let inter = &v.revocation[1];
    assert_eq!(inter.serial, fx.pki.intermediate.cert.serial_hex());
    assert_eq!(
        (inter.source, inter.status),
        (Source::Crl, CertStatus::Good),
        "{}",
        v.to_json()
    );
    leaf
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
    let this = parse_rfc3339(r.this_update.as_deref().expect("this_update"));
    let next = parse_rfc3339(r.next_update.as_deref().expect("next_update"));
    assert!(this >= fx.pki.options.now, "thisUpdate {this}");
    assert!(this <= OffsetDateTime::now_utc(), "thisUpdate {this}");
    assert_eq!(next - this, Duration::days(7));
}

/// An OCSP result for the leaf that is `unknown` because of `code`.
#[track_caller]
fn assert_leaf_unknown(v: &Verdict, fx: &Fixture, role: &str, code: ReasonCode) {
    let leaf = leaf_result(v, fx, role);
    assert_eq!(
        (leaf.source, leaf.status, leaf.reason.as_deref()),
        (Source::Ocsp, CertStatus::Unknown, Some(code.as_str())),
        "{}",
        v.to_json()
    );
    assert_eq!(leaf.revoked_at, None);
}

fn good(role: &str) -> Entry {
    Entry::Good(fixture().cert(role))
}

fn revoked(role: &str) -> Entry {
    let fx = fixture();
    Entry::Revoked(fx.cert(role), fx.revoked_at)
}

const REQUIRE: RevocationPolicy = RevocationPolicy::Require;
const PREFER: RevocationPolicy = RevocationPolicy::Prefer;

// 1. good, signed by the issuing intermediate.
#[test]
fn good_leaf_signed_by_issuer_is_accepted() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
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
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let v = verifier(fx, &[], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataMissing,
    );
    assert_eq!(
        (verdict.revocation[0].source, verdict.revocation[0].status),
        (Source::Ocsp, CertStatus::Good)
    );
    assert_eq!(
        (verdict.revocation[1].source, verdict.revocation[1].status),
        (Source::None, CertStatus::Unknown)
    );
}

// 2. revoked leaf.
#[test]
fn revoked_leaf_is_rejected_with_reason_and_time() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Revoked,
            ReasonCode::Revoked,
        );
        let leaf = leaf_result(&verdict, fx, roles::CLIENT);
        assert_eq!(
            (leaf.source, leaf.status, leaf.reason.as_deref()),
            (Source::Ocsp, CertStatus::Revoked, Some("keyCompromise"))
        );
        assert_eq!(leaf.revoked_at, Some(rfc3339(fx.revoked_at)));
        assert_openssl_times(fx, leaf);
    }
}

// 2b. a verified "revoked" stands even when the answer is past nextUpdate.
#[test]
fn stale_revoked_answer_still_revokes() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let later = SystemTime::now() + std::time::Duration::from_secs(8 * 86_400);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify_at(&v, fx, roles::CLIENT, policy, later);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Revoked,
            ReasonCode::Revoked,
        );
        assert_eq!(verdict.revocation[0].source, Source::Ocsp);
        assert_eq!(
            verdict.revocation[0].revoked_at,
            Some(rfc3339(fx.revoked_at))
        );
    }
}

// 3. serial unknown to the responder.
#[test]
fn unknown_serial_fails_closed_under_require() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::SERVER)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::OcspUnknown,
    );
    assert_leaf_unknown(&verdict, fx, roles::CLIENT, ReasonCode::OcspUnknown);
}

#[test]
fn unknown_serial_soft_fails_under_prefer() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::SERVER)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, PREFER);
    assert_verdict(
        &verdict,
        Decision::Accepted,
        Status::Unknown,
        ReasonCode::RevocationUnknownSoftFail,
    );
    assert_leaf_unknown(&verdict, fx, roles::CLIENT, ReasonCode::OcspUnknown);
}

// 4. delegated responder (id-kp-OCSPSigning, issued by the intermediate,
// included in the response by openssl).
#[test]
fn delegated_responder_is_accepted() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(RESPONDER));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    let leaf = leaf_result(&verdict, fx, roles::CLIENT);
    assert_eq!((leaf.source, leaf.status), (Source::Ocsp, CertStatus::Good));
    assert_openssl_times(fx, leaf);
}

#[test]
fn delegated_responder_revoked_answer_is_rejected() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![revoked(roles::CLIENT)]).signer(RESPONDER));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, PREFER);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
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
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(
        &Ask::new(roles::CLIENT, vec![good(roles::CLIENT)])
            .signer(RESPONDER)
            .responder_arg("-resp_no_certs"),
    );
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::OcspResponderNotAuthorized,
        );
        assert_leaf_unknown(
            &verdict,
            fx,
            roles::CLIENT,
            ReasonCode::OcspResponderNotAuthorized,
        );
    }
}

// 4c. responderID byKey (`-resp_key_id`) instead of byName.
#[test]
fn responder_id_by_key_is_accepted() {
    let fx = fixture();
    let w = Workdir::new();
    for signer in [roles::INTERMEDIATE, RESPONDER] {
        let resp = w.respond(
            &Ask::new(roles::CLIENT, vec![good(roles::CLIENT)])
                .signer(signer)
                .responder_arg("-resp_key_id"),
        );
        let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
        let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
        assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
        assert_eq!(verdict.revocation[0].source, Source::Ocsp, "{signer}");
    }
}

// 5. responder certificate without id-kp-OCSPSigning (the client leaf).
#[test]
fn responder_without_ocsp_signing_is_not_authorized() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(roles::SERVER));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::OcspResponderNotAuthorized,
        );
        assert_leaf_unknown(
            &verdict,
            fx,
            roles::CLIENT,
            ReasonCode::OcspResponderNotAuthorized,
        );
    }
}

#[test]
fn client_certificate_as_its_own_responder_is_not_authorized() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(roles::CLIENT));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::OcspResponderNotAuthorized,
        );
        assert_leaf_unknown(
            &verdict,
            fx,
            roles::CLIENT,
            ReasonCode::OcspResponderNotAuthorized,
        );
    }
}

// 6. responder from another hierarchy.
#[test]
fn responder_from_other_hierarchy_is_not_authorized() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(
        &Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(roles::OTHER_INTERMEDIATE),
    );
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::OcspResponderNotAuthorized,
        );
        assert_leaf_unknown(
            &verdict,
            fx,
            roles::CLIENT,
            ReasonCode::OcspResponderNotAuthorized,
        );
    }
}

// 7. stale: verified 8 days later with -ndays 7. The root CRL (nextUpdate
// now + 7d) is then stale too.
#[test]
fn stale_good_answer() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let later = SystemTime::now() + std::time::Duration::from_secs(8 * 86_400);

    let verdict = verify_at(&v, fx, roles::CLIENT, REQUIRE, later);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataStale,
    );
    let leaf = &verdict.revocation[0];
    assert_eq!(
        (leaf.source, leaf.status, leaf.reason.as_deref()),
        (
            Source::Ocsp,
            CertStatus::Unknown,
            Some("revocation_data_stale")
        )
    );
    assert_openssl_times(fx, leaf);
    assert!(
        verdict.detail.contains("client.vigil.test"),
        "{}",
        verdict.detail
    );

    let verdict = verify_at(&v, fx, roles::CLIENT, PREFER, later);
    assert_verdict(
        &verdict,
        Decision::Accepted,
        Status::Unknown,
        ReasonCode::RevocationUnknownSoftFail,
    );
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
    assert_eq!(
        verdict.revocation[0].reason.as_deref(),
        Some("revocation_data_stale")
    );
}

#[test]
fn stale_good_answer_at_leaf_depth() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let v = verifier(fx, &[], &[&resp]);
    let later = SystemTime::now() + std::time::Duration::from_secs(8 * 86_400);
    let chain = fx.chain(roles::CLIENT);
    let opts = VerifyOptions {
        depth: Depth::Leaf,
        ..options(REQUIRE)
    };
    let verdict = v.verify_uncached(&chain, &opts, later);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataStale,
    );
    assert_eq!(verdict.revocation.len(), 1);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
    // ... and at the real time, the same response is good.
    let verdict = v.verify_uncached(&chain, &opts, SystemTime::now());
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
}

// 8. SHA-256 CertID.
#[test]
fn sha256_cert_id_is_accepted() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).sha256());
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);

    let resp = w.respond(&Ask::new(roles::CLIENT, vec![revoked(roles::CLIENT)]).sha256());
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
}

// 8b. RSA and Ed25519 hierarchies (openssl signs with sha256WithRSAEncryption
// and Ed25519).
#[test]
fn good_and_revoked_for_rsa_and_ed25519() {
    for alg in [KeyAlg::Rsa2048, KeyAlg::Ed25519] {
        let fx = fixture_for(alg);
        let w = Workdir::with(fx);
        let client = fx.cert(roles::CLIENT);
        for signer in [roles::INTERMEDIATE, RESPONDER] {
            let resp =
                w.respond(&Ask::new(roles::CLIENT, vec![Entry::Good(client)]).signer(signer));
            let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
            let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
            assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
            assert_eq!(verdict.revocation[0].source, Source::Ocsp, "{alg:?}");

            let resp = w.respond(
                &Ask::new(roles::CLIENT, vec![Entry::Revoked(client, fx.revoked_at)])
                    .signer(signer),
            );
            let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
            let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
            assert_verdict(
                &verdict,
                Decision::Rejected,
                Status::Revoked,
                ReasonCode::Revoked,
            );
            assert_eq!(
                verdict.revocation[0].revoked_at,
                Some(rfc3339(fx.revoked_at))
            );
        }
    }
}

/// (tag, start of content, end of content) of the DER element at `pos`.
fn element(der: &[u8], pos: usize) -> (u8, usize, usize) {
    let first = der[pos + 1];
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        let len = der[pos + 2..pos + 2 + n]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        (len, 2 + n)
    };
    assert!(pos + header + len <= der.len(), "DER runs past its end");
    (der[pos], pos + header, pos + header + len)
}

/// Where the signature value (the BIT STRING's bits) of a DER
/// OCSPResponse is.
fn signature_range(der: &[u8]) -> std::ops::Range<usize> {
    let (_, response, _) = element(der, 0); // OCSPResponse
    let (_, _, status_end) = element(der, response); // responseStatus
    let (_, bytes, _) = element(der, status_end); // [0] responseBytes
    let (_, rb, _) = element(der, bytes); // ResponseBytes
    let (_, _, type_end) = element(der, rb); // responseType
    let (tag, octets, _) = element(der, type_end); // response
    assert_eq!(tag, 0x04);
    let (_, basic, _) = element(der, octets); // BasicOCSPResponse
    let (_, _, tbs_end) = element(der, basic); // tbsResponseData
    let (_, _, alg_end) = element(der, tbs_end); // signatureAlgorithm
    let (tag, start, end) = element(der, alg_end); // signature
    assert_eq!(tag, 0x03);
    assert_eq!(der[start], 0, "unused bits");
    start + 1..end
}

// 9. corrupted signature: one bit of the signature value flipped (its last
// octet, the end of ECDSA's `s`), so the DER stays valid.
#[test]
fn corrupted_signature_is_rejected_under_both_policies() {
    let fx = fixture();
    let w = Workdir::new();
    for signer in [roles::INTERMEDIATE, RESPONDER] {
        let mut resp =
            w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(signer));
        let sig = signature_range(&resp);
        resp[sig.end - 1] ^= 0x01;
        let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
        for policy in [REQUIRE, PREFER] {
            let verdict = verify(&v, fx, roles::CLIENT, policy);
            assert_verdict(
                &verdict,
                Decision::Rejected,
                Status::Invalid,
                ReasonCode::OcspSignatureInvalid,
            );
            assert_leaf_unknown(
                &verdict,
                fx,
                roles::CLIENT,
                ReasonCode::OcspSignatureInvalid,
            );
        }
    }
}

// 9b. a well-formed signature by the wrong key: signed by a CA with the
// intermediate's exact subject name (so responderID byName names the
// issuer) but another key.
#[test]
fn signature_by_another_key_under_the_issuers_name_is_invalid() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(IMPOSTOR));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::OcspSignatureInvalid,
        );
        assert_leaf_unknown(
            &verdict,
            fx,
            roles::CLIENT,
            ReasonCode::OcspSignatureInvalid,
        );
    }
}

// 9c. a bad answer is not outvoted by a good one for the same certificate.
#[test]
fn corrupted_response_next_to_a_good_one_is_still_rejected() {
    let fx = fixture();
    let w = Workdir::new();
    let good_resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let mut bad = good_resp.clone();
    let sig = signature_range(&bad);
    bad[sig.end - 1] ^= 0x01;
    let v = verifier(fx, &[roles::ROOT_CRL], &[&good_resp, &bad]);
    let verdict = verify(&v, fx, roles::CLIENT, PREFER);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::OcspSignatureInvalid,
    );
}

// 10. tryLater.
#[test]
fn try_later_is_not_successful() {
    let fx = fixture();
    let mut v = verifier_without_ocsp(fx, &[roles::ROOT_CRL]);
    assert_eq!(
        v.add_ocsp_response(&TRY_LATER),
        Err(OcspError::NotSuccessful { status: "tryLater" })
    );
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataMissing,
    );
    let leaf = leaf_result(&verdict, fx, roles::CLIENT);
    assert_eq!(
        (leaf.source, leaf.status, leaf.reason.as_deref()),
        (
            Source::None,
            CertStatus::Unknown,
            Some("revocation_data_missing")
        )
    );
}

// 11. a response for another certificate only.
#[test]
fn response_for_other_certificate_is_ignored() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::SERVER, vec![good(roles::SERVER)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataMissing,
    );
    let leaf = leaf_result(&verdict, fx, roles::CLIENT);
    assert_eq!(
        (leaf.source, leaf.status, leaf.reason.as_deref()),
        (
            Source::None,
            CertStatus::Unknown,
            Some("revocation_data_missing")
        )
    );
    // The server, which it is about, is good.
    let verdict = verify(&v, fx, roles::SERVER, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
}

// 11b. several responses: the one about the leaf is found among others.
#[test]
fn matching_response_among_several_is_used() {
    let fx = fixture();
    let w = Workdir::new();
    let other = w.respond(&Ask::new(roles::SERVER, vec![revoked(roles::SERVER)]));
    let mine = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).sha256());
    let v = verifier(fx, &[roles::ROOT_CRL], &[&other, &mine]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
}

// 12. both sources.
#[test]
fn crl_good_and_ocsp_revoked_is_revoked() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL, roles::INTERMEDIATE_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Revoked,
            ReasonCode::Revoked,
        );
        let leaf = leaf_result(&verdict, fx, roles::CLIENT);
        assert_eq!(
            (leaf.source, leaf.status, leaf.reason.as_deref()),
            (Source::Ocsp, CertStatus::Revoked, Some("keyCompromise"))
        );
        assert_eq!(leaf.revoked_at, Some(rfc3339(fx.revoked_at)));
    }
}

#[test]
fn crl_revoked_and_ocsp_good_is_revoked() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(
        roles::REVOKED_CLIENT,
        vec![good(roles::REVOKED_CLIENT)],
    ));
    let v = verifier(fx, &[roles::ROOT_CRL, roles::INTERMEDIATE_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::REVOKED_CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Revoked,
            ReasonCode::Revoked,
        );
        let leaf = leaf_result(&verdict, fx, roles::REVOKED_CLIENT);
        assert_eq!(
            (leaf.source, leaf.status, leaf.reason.as_deref()),
            (Source::Crl, CertStatus::Revoked, Some("keyCompromise"))
        );
        // intermediate.crl revokes it at the fixture's now - 2h.
        assert_eq!(
            leaf.revoked_at,
            Some(rfc3339(fx.pki.options.now - Duration::hours(2)))
        );
    }
}

#[test]
fn crl_good_and_ocsp_good_is_good() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL, roles::INTERMEDIATE_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    // OCSP is consulted first and decides.
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
}

// 13. malformed files.
#[test]
fn malformed_responses_are_rejected_at_load() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
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
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataMissing,
    );
}

#[test]
fn openssl_index_helper_writes_the_documented_format() {
    let fx = fixture();
    let client = fx.cert(roles::CLIENT);
    let text = index_text(&[Entry::Revoked(client, fx.revoked_at)]);
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
    let fx = fixture();
    let w = Workdir::new();
    let resp =
        w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(EXPIRED_RESPONDER));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::OcspResponderNotAuthorized,
        );
        assert_leaf_unknown(
            &verdict,
            fx,
            roles::CLIENT,
            ReasonCode::OcspResponderNotAuthorized,
        );
    }
}

#[test]
fn ocsp_signing_responder_of_another_ca_is_not_authorized() {
    let fx = fixture();
    let w = Workdir::new();
    let resp =
        w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(OTHER_RESPONDER));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    for policy in [REQUIRE, PREFER] {
        let verdict = verify(&v, fx, roles::CLIENT, policy);
        assert_verdict(
            &verdict,
            Decision::Rejected,
            Status::Invalid,
            ReasonCode::OcspResponderNotAuthorized,
        );
    }
}

#[test]
fn root_answering_for_a_leaf_of_the_intermediate_is_not_authorized() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(roles::ROOT));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, PREFER);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::OcspResponderNotAuthorized,
    );
}

#[test]
fn impostor_by_key_id_is_not_authorized() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(
        &Ask::new(roles::CLIENT, vec![good(roles::CLIENT)])
            .signer(IMPOSTOR)
            .responder_arg("-resp_key_id"),
    );
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, PREFER);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Invalid,
        ReasonCode::OcspResponderNotAuthorized,
    );
}

#[test]
fn issuer_response_without_certificates_is_accepted() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(
        &Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).responder_arg("-resp_no_certs"),
    );
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
}

#[test]
fn response_with_nonce_is_accepted() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).nonce());
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
}

#[test]
fn one_response_for_two_certificates() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(
        &Ask::new(
            roles::CLIENT,
            vec![good(roles::CLIENT), revoked(roles::SERVER)],
        )
        .and(roles::SERVER),
    );
    let mut v = verifier_without_ocsp(fx, &[roles::ROOT_CRL]);
    assert_eq!(v.add_ocsp_response(&resp), Ok(2));
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(verdict.revocation[0].source, Source::Ocsp);
    let verdict = verify(&v, fx, roles::SERVER, REQUIRE);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
    assert_eq!(
        verdict.revocation[0].reason.as_deref(),
        Some("keyCompromise")
    );
}

#[test]
fn serial_with_top_bit_set_is_matched() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(
        HIGH_SERIAL_CLIENT,
        vec![revoked(HIGH_SERIAL_CLIENT)],
    ));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let verdict = verify(&v, fx, HIGH_SERIAL_CLIENT, REQUIRE);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
    let leaf = leaf_result(&verdict, fx, HIGH_SERIAL_CLIENT);
    assert_eq!(leaf.serial, "008011223344556677");
    assert_eq!(leaf.source, Source::Ocsp);
}

#[test]
fn this_update_in_the_future_is_not_yet_valid() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    let earlier = SystemTime::from(fx.pki.options.now - Duration::hours(1));
    let verdict = verify_at(&v, fx, roles::CLIENT, REQUIRE, earlier);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataNotYetValid,
    );
    assert_leaf_unknown(
        &verdict,
        fx,
        roles::CLIENT,
        ReasonCode::RevocationDataNotYetValid,
    );
    let verdict = verify_at(&v, fx, roles::CLIENT, PREFER, earlier);
    assert_verdict(
        &verdict,
        Decision::Accepted,
        Status::Unknown,
        ReasonCode::RevocationUnknownSoftFail,
    );
}

/// The whole chain by OCSP, no CRL: the root answers for the intermediate.
#[test]
fn whole_chain_by_ocsp() {
    let fx = fixture();
    let w = Workdir::new();
    let leaf = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let inter = w.respond(
        &Ask::new(roles::INTERMEDIATE, vec![good(roles::INTERMEDIATE)]).issuer(roles::ROOT),
    );
    let v = verifier(fx, &[], &[&leaf, &inter]);
    let verdict = verify(&v, fx, roles::CLIENT, REQUIRE);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    for r in &verdict.revocation {
        assert_eq!((r.source, r.status), (Source::Ocsp, CertStatus::Good));
        assert_openssl_times(fx, r);
    }

    let inter = w.respond(
        &Ask::new(roles::INTERMEDIATE, vec![revoked(roles::INTERMEDIATE)]).issuer(roles::ROOT),
    );
    let v = verifier(fx, &[], &[&leaf, &inter]);
    let verdict = verify(&v, fx, roles::CLIENT, PREFER);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
    assert_eq!(
        (
            verdict.revocation[1].source,
            verdict.revocation[1].status,
            verdict.revocation[1].reason.as_deref()
        ),
        (Source::Ocsp, CertStatus::Revoked, Some("keyCompromise"))
    );
}

/// A cached accepted verdict holds only within the OCSP answer's window.
#[test]
fn cached_verdict_follows_the_ocsp_window() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    // No CRL: the leaf only, so the OCSP answer alone sets the window.
    let v = verifier(fx, &[], &[&resp]);
    let chain = fx.chain(roles::CLIENT);
    let opts = VerifyOptions {
        depth: Depth::Leaf,
        ..options(REQUIRE)
    };
    let now = SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    let first = v.verify(&chain, &opts, now);
    assert_verdict(&first, Decision::Accepted, Status::Good, ReasonCode::Ok);
    let later = v.verify(&chain, &opts, now + day * 8);
    assert_verdict(
        &later,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataStale,
    );
    let earlier = v.verify(&chain, &opts, now - day / 24);
    assert_verdict(
        &earlier,
        Decision::Rejected,
        Status::Unknown,
        ReasonCode::RevocationDataNotYetValid,
    );
    let again = v.verify(&chain, &opts, now + day * 6);
    assert_verdict(&again, Decision::Accepted, Status::Good, ReasonCode::Ok);
}

/// Loading a response after a verdict was cached changes the verdict.
#[test]
fn response_loaded_later_invalidates_a_cached_verdict() {
    let fx = fixture();
    let w = Workdir::new();
    let good_resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]));
    let revoked_resp = w.respond(&Ask::new(roles::CLIENT, vec![revoked(roles::CLIENT)]));
    let mut v = verifier(fx, &[roles::ROOT_CRL], &[&good_resp]);
    let chain = fx.chain(roles::CLIENT);
    let opts = options(REQUIRE);
    let now = SystemTime::now();
    assert!(v.verify(&chain, &opts, now).is_accepted());
    assert_eq!(v.add_ocsp_response(&revoked_resp), Ok(1));
    let verdict = v.verify(&chain, &opts, now);
    assert_verdict(
        &verdict,
        Decision::Rejected,
        Status::Revoked,
        ReasonCode::Revoked,
    );
}

// RFC 6960 §4.2.2.2.1: a delegated responder that the issuer's own CRL
// revokes is not trusted, whatever it signs; an undeterminable one is.
#[test]
fn revoked_delegated_responder_is_not_trusted() {
    let fx = fixture();
    let w = Workdir::new();
    let resp = w.respond(&Ask::new(roles::CLIENT, vec![good(roles::CLIENT)]).signer(RESPONDER));
    let crl_revoking = |revoke_responder: bool| {
        let mut spec = pki_fixtures::CrlSpec::new(&fx.pki.options);
        spec.number = 10;
        if revoke_responder {
            spec = spec.revoke(
                &fx.responder,
                fx.pki.options.now - Duration::hours(1),
                pki_fixtures::Reason::KeyCompromise,
            );
        }
        fx.pki.intermediate.crl(&spec).unwrap()
    };
    // Only OCSP for the leaf: the revoked responder's "good" is refused.
    let leaf_only = |v: &Verifier| {
        let verdict = verify(v, fx, roles::CLIENT, REQUIRE);
        (
            verdict.clone(),
            leaf_result(&verdict, fx, roles::CLIENT).source,
        )
    };
    let mut v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    v.add_crl(&crl_revoking(true).der).unwrap();
    let (verdict, source) = leaf_only(&v);
    // The intermediate's CRL still answers "good" for the leaf, so the
    // verdict stands on the CRL, never on the refused OCSP answer.
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(source, Source::Crl);

    // The same CRL without the responder on it: the OCSP answer is used.
    let mut v = verifier(fx, &[roles::ROOT_CRL], &[&resp]);
    v.add_crl(&crl_revoking(false).der).unwrap();
    let (verdict, source) = leaf_only(&v);
    assert_verdict(&verdict, Decision::Accepted, Status::Good, ReasonCode::Ok);
    assert_eq!(source, Source::Ocsp);
}
