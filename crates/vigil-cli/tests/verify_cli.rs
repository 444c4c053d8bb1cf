//! `vigil verify` end to end: the real binary run over the fixture PKI that
//! `pki_fixtures::Pki::write_to` writes into a temporary directory. Checks
//! the exit status (0 accepted, 1 rejected, 2 usage or bad input), the
//! `--format json` verdict and, for some cases, the text output.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use pki_fixtures::{roles, CrlNumberFault, CrlSpec, KeyAlg, Pki, PkiDir, PkiOptions};
use serde_json::Value;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

mod cli_support;

use cli_support::{assert_usage_error, Run};

/// The fixture PKI's `now`; every run passes it as `--at`.
const NOW: OffsetDateTime = datetime!(2026-01-15 12:00:00 UTC);
const NOW_TEXT: &str = "2026-01-15T12:00:00Z";

const CONTRACT_KEYS: [&str; 7] = [
    "verdict",
    "status",
    "reason",
    "detail",
    "chain",
    "revocation",
    "valid_until",
];

/// The fixture PKI for `alg`, generated once per process.
fn pki_for(alg: KeyAlg) -> &'static Pki {
    let opts = PkiOptions {
        alg,
        now: NOW,
        ..PkiOptions::default()
    };
    pki_fixtures::generate_shared(&opts).unwrap()
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

/// A fixture PKI written to its own temporary directory.
struct Fixture {
    dir: PkiDir,
    pki: &'static Pki,
}

impl Fixture {
    fn new() -> Self {
        Self::with_alg(KeyAlg::EcdsaP256)
    }

    fn with_alg(alg: KeyAlg) -> Self {
        let pki = pki_for(alg);
        let dir = PkiDir::new(pki).unwrap();
        Self { dir, pki }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.file(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        self.dir.write(name, bytes).unwrap()
    }

    /// Concatenated PEM of these certificate roles, as a new file.
    fn bundle(&self, name: &str, roles: &[&str]) -> PathBuf {
        let pem: String = roles
            .iter()
            .map(|r| self.pki.cert(r).unwrap().pem.as_str())
            .collect();
        self.write(name, pem.as_bytes())
    }

    /// `vigil verify <leaf> --at NOW --offline`, no anchor. These cases are
    /// about the given files only (the fixture URLs point at no server).
    fn verify_without_anchor(&self, leaf: &str) -> Run {
        Run::new()
            .arg("verify")
            .arg(self.path(leaf))
            .args(["--at", NOW_TEXT, "--offline"])
    }

    /// `vigil verify <leaf> --at NOW --anchor root.pem`.
    fn verify(&self, leaf: &str) -> Run {
        self.verify_without_anchor(leaf)
            .file("--anchor", self, "root.pem")
    }
}

impl Run {
    /// Replaces the value of `--at`.
    fn at(mut self, value: &str) -> Self {
        let i = self.args.iter().position(|a| a == "--at").unwrap();
        self.args[i + 1] = value.into();
        self
    }

    /// `flag <fixture dir>/name`.
    fn file(self, flag: &str, fx: &Fixture, name: &str) -> Self {
        self.arg(flag).arg(fx.path(name))
    }

    fn crls(self, fx: &Fixture, names: &[&str]) -> Self {
        names.iter().fold(self, |run, n| run.file("--crl", fx, n))
    }

    /// Runs with `--format json`; returns the exit status and the verdict,
    /// after checking stdout is exactly one JSON object with the contract's
    /// top-level keys.
    fn json(self) -> (i32, Value) {
        let (out, verdict) = self.json_output();
        let code = out.code.unwrap();
        let keys: BTreeSet<&str> = verdict
            .as_object()
            .unwrap_or_else(|| panic!("not a JSON object: {verdict}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, CONTRACT_KEYS.into(), "top-level keys of {verdict}");
        assert_eq!(
            out.stdout.trim_end().lines().count(),
            1,
            "one line of JSON: {}",
            out.stdout
        );
        (code, verdict)
    }

    fn text(self) -> (i32, String) {
        let out = self.output();
        (out.code.unwrap(), out.stdout)
    }

    /// Runs and checks for a usage error mentioning every `needle`.
    #[track_caller]
    fn usage_error(&self, needles: &[&str]) {
        assert_usage_error(&self.output(), needles);
    }
}

#[track_caller]
fn assert_verdict(got: &(i32, Value), code: i32, verdict: &str, status: &str, reason: &str) {
    let (c, v) = got;
    assert_eq!(
        (
            *c,
            v["verdict"].as_str(),
            v["status"].as_str(),
            v["reason"].as_str()
        ),
        (code, Some(verdict), Some(status), Some(reason)),
        "unexpected verdict: {v}"
    );
    assert!(
        v["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail: {v}"
    );
}

#[track_caller]
fn accepted(got: &(i32, Value), status: &str, reason: &str) {
    assert_verdict(got, 0, "accepted", status, reason);
}

#[track_caller]
fn rejected(got: &(i32, Value), status: &str, reason: &str) {
    assert_verdict(got, 1, "rejected", status, reason);
}

fn serials(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_owned())
        .collect()
}

fn serials_of(pki: &Pki, roles: &[&str]) -> Vec<String> {
    roles
        .iter()
        .map(|r| pki.cert(r).unwrap().serial_hex())
        .collect()
}

const MAIN_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_CRL];

/// `vigil verify <role>.chain.pem --anchor root.pem --usage client` with
/// these CRLs.
fn client_leaf(fx: &Fixture, role: &str, crls: &[&str]) -> Run {
    fx.verify(&format!("{role}.chain.pem"))
        .args(["--usage", "client"])
        .crls(fx, crls)
}

fn client_chain(fx: &Fixture, crls: &[&str]) -> Run {
    client_leaf(fx, roles::CLIENT, crls)
}

/// [`client_leaf`] over a fresh default fixture, as JSON.
fn client_json(role: &str, crls: &[&str]) -> (i32, Value) {
    client_leaf(&Fixture::new(), role, crls).json()
}

/// The client chain with these CRLs under `--revocation policy`, as JSON.
fn client_under(policy: &str, crls: &[&str]) -> (i32, Value) {
    client_chain(&Fixture::new(), crls)
        .args(["--revocation", policy])
        .json()
}

/// The path every accepted client chain must take.
const CLIENT_PATH: &[&str] = &[roles::CLIENT, roles::INTERMEDIATE, roles::ROOT];

/// RFC 5280 §5.2.3: a `--crl` whose cRLNumber is missing or critical is
/// refused as malformed input (exit 2, naming the file and the rule), even
/// though the intermediate's own key signed it.
#[test]
fn a_crl_whose_crl_number_is_missing_or_critical_is_refused() {
    let fx = Fixture::new();
    let spec = CrlSpec::new(&fx.pki.options);
    for (fault, needle) in [
        (CrlNumberFault::Missing, "no cRLNumber"),
        (CrlNumberFault::Critical, "cRLNumber extension is critical"),
    ] {
        let crl = fx.pki.intermediate.nonconforming_crl(&spec, fault).unwrap();
        let name = format!("{fault:?}.crl");
        fx.write(&name, &crl.der);
        client_chain(&fx, &[roles::ROOT_CRL])
            .file("--crl", &fx, &name)
            .usage_error(&[&name, needle]);
    }
}

#[test]
fn help_exits_zero() {
    let out = Run::new().args(["verify", "--help"]).output();
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    for flag in [
        "--anchor",
        "--intermediate",
        "--crl",
        "--at",
        "--usage",
        "--name",
        "--revocation",
        "--depth",
        "--format",
    ] {
        assert!(
            out.stdout.contains(flag),
            "--help does not list {flag}: {}",
            out.stdout
        );
    }
}

#[test]
fn good_client_chain_json() {
    let fx = Fixture::new();
    let pki = fx.pki;
    let got = client_chain(&fx, MAIN_CRLS).json();
    accepted(&got, "good", "ok");
    let v = &got.1;

    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 3, "{v}");
    let expected = [
        (
            &pki.client,
            "O=Vigil Test PKI, CN=client.vigil.test",
            "O=Vigil Test PKI, CN=Vigil Test Intermediate CA",
        ),
        (
            &pki.intermediate.cert,
            "O=Vigil Test PKI, CN=Vigil Test Intermediate CA",
            "O=Vigil Test PKI, CN=Vigil Test Root CA",
        ),
        (
            &pki.root.cert,
            "O=Vigil Test PKI, CN=Vigil Test Root CA",
            "O=Vigil Test PKI, CN=Vigil Test Root CA",
        ),
    ];
    for (entry, (cert, subject, issuer)) in chain.iter().zip(expected) {
        for (key, value) in [
            ("subject", subject.to_owned()),
            ("issuer", issuer.to_owned()),
            ("serial", cert.serial_hex()),
            ("sha256", sha256_hex(&cert.der)),
            ("not_before", rfc3339(cert.not_before)),
            ("not_after", rfc3339(cert.not_after)),
        ] {
            assert_eq!(entry[key], value.as_str(), "{key}");
        }
    }

    let revocation = v["revocation"].as_array().unwrap();
    assert_eq!(revocation.len(), 2, "{v}");
    for (entry, (cert, crl)) in revocation.iter().zip([
        (&pki.client, &pki.intermediate_crl),
        (&pki.intermediate.cert, &pki.root_crl),
    ]) {
        for (key, value) in [
            ("serial", cert.serial_hex()),
            ("source", "crl".to_owned()),
            ("status", "good".to_owned()),
            ("this_update", rfc3339(crl.this_update)),
            ("next_update", rfc3339(crl.next_update)),
        ] {
            assert_eq!(entry[key], value.as_str(), "{key}");
        }
    }

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
    assert_eq!(v["valid_until"], rfc3339(earliest).as_str());
}

#[test]
fn good_client_chain_text() {
    let fx = Fixture::new();
    let (code, out) = client_chain(&fx, MAIN_CRLS).text();
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().next(), Some("ACCEPTED: good (ok)"), "{out}");
    let until = format!("valid until: {}", rfc3339(NOW + Duration::days(7)));
    for part in [
        "client.vigil.test",
        "Vigil Test Intermediate CA",
        "Vigil Test Root CA",
        &fx.pki.client.serial_hex(),
        &until,
    ] {
        assert!(out.contains(part), "{part} not in {out}");
    }
}

#[test]
fn same_verdict_from_pem_and_der_files() {
    let fx = Fixture::new();
    let pem = client_chain(&fx, MAIN_CRLS).json();
    let der = fx
        .verify("client.der")
        .args(["--usage", "client"])
        .file("--intermediate", &fx, "intermediate.der")
        .file("--crl", &fx, "root.crl.pem")
        .file("--crl", &fx, "intermediate.crl.pem")
        .arg("--anchor")
        .arg(fx.path("root.der"))
        .json();
    accepted(&der, "good", "ok");
    assert_eq!(pem, der);
}

#[test]
fn defaults_require_revocation_and_fail_closed() {
    // No --revocation, no CRL: the default policy is require.
    let fx = Fixture::new();
    let got = fx.verify("client.chain.pem").json();
    rejected(&got, "unknown", "revocation_data_missing");
}

fn server(fx: &Fixture, name: &str) -> (i32, Value) {
    fx.verify("server.chain.pem")
        .args(["--usage", "server", "--name", name])
        .crls(fx, MAIN_CRLS)
        .json()
}

#[test]
fn server_chain_with_dns_name_is_accepted() {
    let fx = Fixture::new();
    let got = server(&fx, "server.vigil.test");
    accepted(&got, "good", "ok");
    assert_eq!(
        serials(&got.1, "chain"),
        serials_of(fx.pki, &[roles::SERVER, roles::INTERMEDIATE, roles::ROOT])
    );
}

#[test]
fn server_chain_with_ip_address_is_accepted() {
    let fx = Fixture::new();
    accepted(&server(&fx, "127.0.0.1"), "good", "ok");
}

#[test]
fn server_chain_with_other_name_is_name_mismatch() {
    let fx = Fixture::new();
    let got = server(&fx, "other.example");
    rejected(&got, "invalid", "name_mismatch");
    assert!(
        got.1["detail"].as_str().unwrap().contains("other.example"),
        "{}",
        got.1
    );
}

#[test]
fn revoked_leaf_json() {
    let got = client_json(roles::REVOKED_CLIENT, MAIN_CRLS);
    rejected(&got, "revoked", "revoked");
    let leaf = &got.1["revocation"][0];
    assert_eq!(
        leaf["serial"],
        pki_for(KeyAlg::EcdsaP256)
            .revoked_client
            .serial_hex()
            .as_str()
    );
    assert_eq!(leaf["source"], "crl");
    assert_eq!(leaf["status"], "revoked");
    assert_eq!(leaf["reason"], "keyCompromise");
}

#[test]
fn revoked_leaf_text() {
    let fx = Fixture::new();
    let (code, out) = client_leaf(&fx, roles::REVOKED_CLIENT, MAIN_CRLS).text();
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.lines().next(),
        Some("REJECTED: revoked (revoked)"),
        "{out}"
    );
    assert!(out.contains("keyCompromise"), "{out}");
    assert!(out.contains(&fx.pki.revoked_client.serial_hex()), "{out}");
}

#[test]
fn revoked_leaf_rejected_under_prefer() {
    let fx = Fixture::new();
    let got = client_leaf(&fx, roles::REVOKED_CLIENT, MAIN_CRLS)
        .args(["--revocation", "prefer"])
        .json();
    rejected(&got, "revoked", "revoked");
}

fn revoked_intermediate(fx: &Fixture, extra: &[&str]) -> (i32, Value) {
    fx.verify("leaf-of-revoked-intermediate.chain.pem")
        .args(["--usage", "client"])
        .args(extra)
        .crls(fx, &[roles::ROOT_CRL, roles::REVOKED_INTERMEDIATE_CRL])
        .json()
}

#[test]
fn revoked_intermediate_rejected_at_chain_depth() {
    let fx = Fixture::new();
    let got = revoked_intermediate(&fx, &["--depth", "chain"]);
    rejected(&got, "revoked", "revoked");
    let ca = &got.1["revocation"][1];
    assert_eq!(
        ca["serial"],
        fx.pki.revoked_intermediate.cert.serial_hex().as_str()
    );
    assert_eq!(ca["status"], "revoked");
    assert_eq!(ca["reason"], "cACompromise");
    // chain is the default depth
    assert_eq!(revoked_intermediate(&fx, &[]), got);
}

#[test]
fn revoked_intermediate_accepted_at_leaf_depth() {
    let fx = Fixture::new();
    let got = revoked_intermediate(&fx, &["--depth", "leaf"]);
    accepted(&got, "good", "ok");
    assert_eq!(
        serials(&got.1, "revocation"),
        serials_of(fx.pki, &[roles::LEAF_OF_REVOKED_INTERMEDIATE])
    );
}

#[test]
fn expired_leaf_is_rejected() {
    let fx = Fixture::new();
    let got = client_leaf(&fx, roles::EXPIRED_CLIENT, MAIN_CRLS).json();
    rejected(&got, "invalid", "expired");
    // At a time inside its validity it is fine: the time comes from --at.
    let earlier = fx
        .verify("expired-client.chain.pem")
        .args(["--usage", "client", "--revocation", "off"])
        .at(&rfc3339(NOW - Duration::days(2)))
        .json();
    accepted(&earlier, "unknown", "revocation_not_checked");
}

#[test]
fn not_yet_valid_leaf_is_rejected() {
    let got = client_json(roles::NOT_YET_VALID_CLIENT, MAIN_CRLS);
    rejected(&got, "invalid", "not_yet_valid");
}

#[test]
fn expired_intermediate_is_rejected_and_named() {
    let got = client_json(
        roles::LEAF_OF_EXPIRED_INTERMEDIATE,
        &[roles::ROOT_CRL, roles::EXPIRED_INTERMEDIATE_CRL],
    );
    rejected(&got, "invalid", "expired");
    let detail = got.1["detail"].as_str().unwrap();
    assert!(
        detail.contains("Vigil Test Expired Intermediate CA"),
        "{detail}"
    );
}

#[test]
fn server_certificate_as_client_is_wrong_usage() {
    let got = client_json(roles::SERVER, MAIN_CRLS);
    rejected(&got, "invalid", "wrong_usage");
}

#[test]
fn other_root_chain_is_unknown_issuer() {
    let got = client_json(
        roles::OTHER_CLIENT,
        &[
            roles::ROOT_CRL,
            roles::INTERMEDIATE_CRL,
            roles::OTHER_INTERMEDIATE_CRL,
        ],
    );
    rejected(&got, "invalid", "unknown_issuer");
    assert_eq!(got.1["chain"], Value::Array(Vec::new()));
    assert_eq!(got.1["valid_until"], Value::Null);
}

#[test]
fn bad_signature_leaf_is_rejected() {
    let got = client_json(roles::BAD_SIGNATURE_CLIENT, MAIN_CRLS);
    rejected(&got, "invalid", "bad_signature");
}

const WRONG_KEY_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_WRONG_KEY_CRL];

#[test]
fn wrong_key_crl_rejected_under_require() {
    let got = client_under("require", WRONG_KEY_CRLS);
    rejected(&got, "invalid", "crl_signature_invalid");
}

#[test]
fn wrong_key_crl_rejected_under_prefer() {
    let got = client_under("prefer", WRONG_KEY_CRLS);
    rejected(&got, "invalid", "crl_signature_invalid");
}

const STALE_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_STALE_CRL];

#[test]
fn stale_crl_rejected_under_require() {
    let got = client_under("require", STALE_CRLS);
    rejected(&got, "unknown", "revocation_data_stale");
    assert_eq!(got.1["revocation"][0]["status"], "unknown");
}

#[test]
fn stale_crl_soft_fails_under_prefer() {
    let got = client_under("prefer", STALE_CRLS);
    accepted(&got, "unknown", "revocation_unknown_soft_fail");
    assert_eq!(got.1["revocation"][0]["status"], "unknown");
}

#[test]
fn no_crl_missing_under_require() {
    let got = client_under("require", &[]);
    rejected(&got, "unknown", "revocation_data_missing");
}

#[test]
fn no_crl_soft_fails_under_prefer() {
    let got = client_under("prefer", &[]);
    accepted(&got, "unknown", "revocation_unknown_soft_fail");
}

#[test]
fn no_crl_not_checked_under_off() {
    let got = client_under("off", &[]);
    accepted(&got, "unknown", "revocation_not_checked");
    assert_eq!(got.1["revocation"], Value::Array(Vec::new()));
}

#[test]
fn crl_of_other_issuer_only_is_missing() {
    let got = client_json(roles::CLIENT, &[roles::OTHER_INTERMEDIATE_CRL]);
    rejected(&got, "unknown", "revocation_data_missing");
}

/// Accepted as good along [`CLIENT_PATH`].
#[track_caller]
fn assert_client_path(fx: &Fixture, got: &(i32, Value)) {
    accepted(got, "good", "ok");
    assert_eq!(serials(&got.1, "chain"), serials_of(fx.pki, CLIENT_PATH));
}

#[test]
fn chain_out_of_order_in_leaf_file_is_accepted() {
    let fx = Fixture::new();
    fx.bundle(
        "shuffled.pem",
        &[roles::CLIENT, roles::ROOT, roles::INTERMEDIATE],
    );
    let got = fx
        .verify("shuffled.pem")
        .args(["--usage", "client"])
        .crls(&fx, MAIN_CRLS)
        .json();
    assert_client_path(&fx, &got);
}

#[test]
fn chain_out_of_order_via_intermediate_flags_is_accepted() {
    let fx = Fixture::new();
    let got = fx
        .verify("client.pem")
        .args(["--usage", "client"])
        .file("--intermediate", &fx, "root.pem")
        .file("--intermediate", &fx, "intermediate.pem")
        .crls(&fx, MAIN_CRLS)
        .json();
    assert_client_path(&fx, &got);
}

#[test]
fn chain_with_unrelated_certificates_is_accepted() {
    let fx = Fixture::new();
    fx.bundle(
        "crowded.pem",
        &[
            roles::CLIENT,
            roles::OTHER_ROOT,
            roles::ROOT,
            roles::OTHER_INTERMEDIATE,
        ],
    );
    let got = fx
        .verify("crowded.pem")
        .args(["--usage", "client"])
        .file("--intermediate", &fx, "other-root.pem")
        .file("--intermediate", &fx, "intermediate.pem")
        .crls(
            &fx,
            &[
                roles::ROOT_CRL,
                roles::OTHER_INTERMEDIATE_CRL,
                roles::INTERMEDIATE_CRL,
            ],
        )
        .json();
    assert_client_path(&fx, &got);
}

fn good_and_revoked_for(alg: KeyAlg) {
    let fx = Fixture::with_alg(alg);
    assert_eq!(fx.pki.client.alg, alg);
    let good = client_chain(&fx, MAIN_CRLS).json();
    accepted(&good, "good", "ok");
    assert_eq!(
        serials(&good.1, "revocation"),
        serials_of(fx.pki, &[roles::CLIENT, roles::INTERMEDIATE])
    );
    let revoked = client_leaf(&fx, roles::REVOKED_CLIENT, MAIN_CRLS).json();
    rejected(&revoked, "revoked", "revoked");
    assert_eq!(revoked.1["revocation"][0]["reason"], "keyCompromise");
}

#[test]
fn ecdsa_p256_good_and_revoked() {
    good_and_revoked_for(KeyAlg::EcdsaP256);
}

#[test]
fn rsa2048_good_and_revoked() {
    good_and_revoked_for(KeyAlg::Rsa2048);
}

#[test]
fn ed25519_good_and_revoked() {
    good_and_revoked_for(KeyAlg::Ed25519);
}

// ---- bad input: exit 2, a message naming the file or flag, no panic ----

/// `vigil verify <name> --anchor root.pem --crl …`, `name` holding `bytes`:
/// a usage error mentioning every `needle`.
#[track_caller]
fn bad_leaf(name: &str, bytes: &[u8], needles: &[&str]) {
    let fx = Fixture::new();
    fx.write(name, bytes);
    fx.verify(name).crls(&fx, MAIN_CRLS).usage_error(needles);
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn empty_leaf_file() {
    bad_leaf("empty.pem", b"", &["empty.pem", "empty"]);
}

#[test]
fn garbage_leaf_file() {
    bad_leaf("garbage.bin", &noise(4096, 7), &["garbage.bin"]);
}

#[test]
fn truncated_der_leaf() {
    let der = &pki_for(KeyAlg::EcdsaP256).client.der;
    bad_leaf("truncated.der", &der[..der.len() / 2], &["truncated.der"]);
}

#[test]
fn private_key_pem_as_leaf() {
    let fx = Fixture::new();
    fx.verify("client.key.pem")
        .crls(&fx, MAIN_CRLS)
        .usage_error(&["client.key.pem", "CERTIFICATE"]);
}

#[test]
fn unknown_pem_label_as_leaf() {
    let body = pki_for(KeyAlg::EcdsaP256)
        .client
        .pem
        .replace("CERTIFICATE", "FOO");
    assert!(body.starts_with("-----BEGIN FOO-----"));
    bad_leaf(
        "foo.pem",
        body.as_bytes(),
        &["foo.pem", "CERTIFICATE", "FOO"],
    );
}

#[test]
fn fifty_megabyte_random_file() {
    let fx = Fixture::new();
    let big = fx.write("big.bin", &noise(50 * 1024 * 1024, 0x5eed));
    assert_eq!(std::fs::metadata(&big).unwrap().len(), 50 * 1024 * 1024);
    fx.verify("big.bin")
        .crls(&fx, MAIN_CRLS)
        .usage_error(&["big.bin"]);
    client_chain(&fx, MAIN_CRLS)
        .arg("--crl")
        .arg(&big)
        .usage_error(&["big.bin"]);
}

#[test]
fn missing_leaf_file() {
    let fx = Fixture::new();
    fx.verify("does-not-exist.pem")
        .crls(&fx, MAIN_CRLS)
        .usage_error(&["does-not-exist.pem"]);
}

#[test]
fn missing_crl_and_anchor_files() {
    let fx = Fixture::new();
    client_chain(&fx, &["no-such.crl"]).usage_error(&["no-such.crl"]);
    client_chain(&fx, MAIN_CRLS)
        .file("--anchor", &fx, "no-such-root.pem")
        .usage_error(&["no-such-root.pem"]);
}

#[test]
fn unparsable_at() {
    let fx = Fixture::new();
    client_chain(&fx, MAIN_CRLS)
        .at("yesterday")
        .usage_error(&["--at", "yesterday"]);
    client_chain(&fx, MAIN_CRLS)
        .at("2026-01-15 12:00:00")
        .usage_error(&["--at"]);
}

#[test]
fn at_with_an_offset_is_the_same_instant() {
    let fx = Fixture::new();
    let utc = client_chain(&fx, MAIN_CRLS).json();
    let offset = client_chain(&fx, MAIN_CRLS)
        .at("2026-01-15T13:00:00+01:00")
        .json();
    accepted(&offset, "good", "ok");
    assert_eq!(utc, offset);
}

#[test]
fn invalid_usage_value() {
    let fx = Fixture::new();
    fx.verify("client.chain.pem")
        .args(["--usage", "admin"])
        .crls(&fx, MAIN_CRLS)
        .usage_error(&["--usage", "admin"]);
}

#[test]
fn invalid_revocation_and_depth_values() {
    let fx = Fixture::new();
    for (flag, value) in [("--revocation", "maybe"), ("--depth", "deep")] {
        client_chain(&fx, MAIN_CRLS)
            .args([flag, value])
            .usage_error(&[flag, value]);
    }
}

#[test]
fn invalid_name_value() {
    let fx = Fixture::new();
    fx.verify("server.chain.pem")
        .args(["--usage", "server", "--name", "not a name!"])
        .crls(&fx, MAIN_CRLS)
        .usage_error(&["--name", "not a name!"]);
}

#[test]
fn missing_anchor_flag() {
    let fx = Fixture::new();
    fx.verify_without_anchor("client.chain.pem")
        .usage_error(&["--anchor"]);
}

#[test]
fn garbage_crl_file() {
    let fx = Fixture::new();
    fx.write("garbage.crl", &noise(2048, 11));
    client_chain(&fx, &[roles::ROOT_CRL, "garbage.crl"]).usage_error(&["garbage.crl"]);
}

#[test]
fn certificate_given_as_crl() {
    let fx = Fixture::new();
    client_chain(&fx, &["intermediate.der"]).usage_error(&["intermediate.der"]);
    client_chain(&fx, &["intermediate.pem"]).usage_error(&["intermediate.pem", "X509 CRL"]);
}

#[test]
fn garbage_anchor_file() {
    let fx = Fixture::new();
    let path = fx.write("garbage-anchor.pem", &noise(1024, 13));
    fx.verify_without_anchor("client.chain.pem")
        .arg("--anchor")
        .arg(&path)
        .crls(&fx, MAIN_CRLS)
        .usage_error(&["garbage-anchor.pem"]);
}

#[test]
fn empty_anchor_and_crl_files() {
    let fx = Fixture::new();
    fx.write("empty-anchor.pem", b"");
    fx.verify_without_anchor("client.chain.pem")
        .file("--anchor", &fx, "empty-anchor.pem")
        .usage_error(&["empty-anchor.pem"]);
    fx.write("empty.crl", b"\n");
    client_chain(&fx, &["empty.crl"]).usage_error(&["empty.crl"]);
}
