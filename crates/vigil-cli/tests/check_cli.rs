//! `vigil check` end to end: the real binary against the pki-fixtures
//! responder on 127.0.0.1 (real HTTP), started by each test on a tokio
//! runtime of its own, with certificates generated for its address.
//! Misbehaving responders use short `--timeout`s so every test stays fast.

#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::time::{Duration, Instant};

use pki_fixtures::responder::{Behaviour, OcspSigner, Target};
use pki_fixtures::{CertSpec, CrlNumberFault, PkiDir, PkiOptions, Reason};
use serde_json::{json, Value};

mod cli_support;

use cli_support::{Live, Run};

impl Live {
    /// `vigil check client.chain.pem` (the client, then its issuer).
    fn check_client(&self) -> Run {
        Run::new().arg("check").arg(self.file("client.chain.pem"))
    }

    fn set(&self, target: Target, behaviour: Behaviour) {
        self.responder.set_behaviour(target, behaviour).unwrap();
    }

    fn ocsp_url(&self) -> String {
        self.responder.ocsp_url("intermediate")
    }

    fn crl_url(&self) -> String {
        self.responder.crl_url("intermediate")
    }
}

impl Run {
    /// Runs with `--format json`: the exit status and the report.
    fn json(self) -> (i32, Value) {
        let (out, report) = self.json_output();
        assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
        (out.code.unwrap(), report)
    }
}

/// The sources of a report as (kind, status) pairs, in order.
fn sources(report: &Value) -> Vec<(String, String)> {
    report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The source of this kind (the fixtures name one of each).
fn source<'v>(report: &'v Value, kind: &str) -> &'v Value {
    report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} source in {report}"))
}

#[track_caller]
fn verdict(got: &(i32, Value), code: i32, verdict: &str, reason: &str) {
    let (c, r) = got;
    assert_eq!(
        (
            *c,
            r["verdict"]["verdict"].as_str(),
            r["verdict"]["reason"].as_str()
        ),
        (code, Some(verdict), Some(reason)),
        "unexpected verdict: {r}"
    );
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, s)| ((*k).to_owned(), (*s).to_owned()))
        .collect()
}

#[test]
fn a_good_client_is_good_at_both_sources() {
    let live = Live::start();
    let got = live.check_client().json();
    verdict(&got, 0, "accepted", "ok");
    let report = &got.1;
    // OCSP first: the default method order.
    assert_eq!(sources(report), pairs(&[("ocsp", "good"), ("crl", "good")]));

    let ocsp = source(report, "ocsp");
    assert_eq!(ocsp["url"], live.ocsp_url());
    assert_eq!(ocsp["http_method"], "GET");
    assert_eq!(ocsp["freshness"], "fresh");
    assert!(ocsp["this_update"].is_string() && ocsp["next_update"].is_string());
    assert!(ocsp["fetch_ms"].is_u64());
    assert!(ocsp["error"].is_null() && ocsp["crl_number"].is_null());

    let crl = source(report, "crl");
    assert_eq!(crl["url"], live.crl_url());
    // The fixture's intermediate.crl: number 2, revoking revoked-client.
    assert_eq!(crl["crl_number"], "2");
    assert_eq!(crl["entries"], 1);
    assert_eq!(crl["freshness"], "fresh");
    assert!(crl["http_method"].is_null() && crl["error"].is_null());
    assert!(crl["fetch_ms"].is_u64());

    let cert = &report["certificate"];
    assert_eq!(cert["serial"], live.pki.client.serial_hex());
    assert!(cert["subject"]
        .as_str()
        .unwrap()
        .contains("client.vigil.test"));
    assert_eq!(cert["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(report["verdict"]["chain"][0], *cert);

    let counts = live.responder.counts_for("intermediate");
    assert_eq!((counts.crl, counts.ocsp()), (1, 1));
}

#[test]
fn a_revocation_published_while_running_shows_at_both_sources() {
    let live = Live::start();
    verdict(&live.check_client().json(), 0, "accepted", "ok");
    live.responder
        .revoke(&live.pki.client, Reason::KeyCompromise)
        .unwrap();
    let got = live.check_client().json();
    verdict(&got, 1, "rejected", "revoked");
    let report = &got.1;
    assert_eq!(
        sources(report),
        pairs(&[("ocsp", "revoked"), ("crl", "revoked")])
    );
    for kind in ["ocsp", "crl"] {
        let s = source(report, kind);
        assert_eq!(s["reason"], "keyCompromise", "{s}");
        assert!(s["revoked_at"].is_string(), "{s}");
    }
    assert_eq!(source(report, "crl")["crl_number"], "3");
    assert_eq!(source(report, "crl")["entries"], 2);
    assert_eq!(report["verdict"]["status"], "revoked");
}

#[test]
fn ocsp_down_falls_back_to_a_good_crl() {
    let live = Live::start();
    live.set(Target::Ocsp, Behaviour::Down);
    let got = live.check_client().args(["--timeout", "2"]).json();
    verdict(&got, 0, "accepted", "ok");
    let report = &got.1;
    assert_eq!(
        sources(report),
        pairs(&[("ocsp", "error"), ("crl", "good")])
    );
    let ocsp = source(report, "ocsp");
    assert!(ocsp["error"]["code"].is_string(), "{ocsp}");
    assert!(
        ocsp["error"]["detail"]
            .as_str()
            .unwrap()
            .contains(&live.ocsp_url()),
        "{ocsp}"
    );
    assert_eq!(report["verdict"]["revocation"][0]["source"], "crl");
}

#[test]
fn both_sources_down_fail_closed_under_require_and_open_under_prefer() {
    let live = Live::start();
    live.set(Target::All, Behaviour::Down);
    let got = live.check_client().args(["--timeout", "2"]).json();
    verdict(&got, 1, "rejected", "revocation_data_missing");
    assert_eq!(
        sources(&got.1),
        pairs(&[("ocsp", "error"), ("crl", "error")])
    );
    // Nothing listens: the connection is refused.
    assert_eq!(source(&got.1, "crl")["error"]["code"], "connect");

    let got = live
        .check_client()
        .args(["--timeout", "2", "--revocation", "prefer"])
        .json();
    verdict(&got, 0, "accepted", "revocation_unknown_soft_fail");
    assert_eq!(got.1["verdict"]["status"], "unknown");
}

#[test]
fn a_slow_responder_is_cut_off_at_the_timeout() {
    let live = Live::start();
    live.set(Target::Ocsp, Behaviour::Slow(Duration::from_secs(20)));
    let started = Instant::now();
    let got = live.check_client().args(["--timeout", "1"]).json();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    verdict(&got, 0, "accepted", "ok");
    let ocsp = source(&got.1, "ocsp");
    assert_eq!(ocsp["status"], "error");
    assert_eq!(ocsp["error"]["code"], "timeout", "{ocsp}");
    assert!(ocsp["fetch_ms"].as_u64().unwrap() < 5_000, "{ocsp}");
}

#[test]
fn a_stale_crl_with_ocsp_down_is_rejected_as_stale() {
    let live = Live::start();
    live.set(Target::Crl, Behaviour::Stale);
    live.set(Target::Ocsp, Behaviour::Down);
    let got = live.check_client().args(["--timeout", "2"]).json();
    verdict(&got, 1, "rejected", "revocation_data_stale");
    let crl = source(&got.1, "crl");
    assert_eq!(crl["status"], "unknown", "{crl}");
    assert_eq!(crl["freshness"], "stale");
    assert_eq!(crl["error"]["code"], "revocation_data_stale");
    assert_eq!(source(&got.1, "ocsp")["status"], "error");

    let text = live.check_client().args(["--timeout", "2"]).output().stdout;
    assert!(text.contains("stale since "), "{text}");
}

#[test]
fn forged_data_is_an_error_and_never_accepted() {
    let live = Live::start();
    live.set(Target::All, Behaviour::WrongSigner);
    for policy in ["require", "prefer"] {
        let (code, report) = live.check_client().args(["--revocation", policy]).json();
        assert_eq!(code, 1, "{policy}: {report}");
        assert_eq!(report["verdict"]["verdict"], "rejected");
        assert_eq!(report["verdict"]["status"], "invalid");
        assert_eq!(
            sources(&report),
            pairs(&[("ocsp", "error"), ("crl", "error")])
        );
        assert_eq!(
            source(&report, "crl")["error"]["code"],
            "crl_signature_invalid"
        );
        assert_eq!(
            source(&report, "ocsp")["error"]["code"],
            "ocsp_signature_invalid"
        );
    }
}

/// RFC 5280 §5.2.3: cRLNumber MUST be present and non-critical. A CRL that
/// breaks either rule is refused even though its signature is good, and
/// `vigil check` says which rule (JSON code and text alike).
#[test]
fn a_crl_whose_crl_number_is_missing_or_critical_is_refused() {
    let live = Live::start();
    live.set(Target::Ocsp, Behaviour::Down);
    for (fault, code, text) in [
        (
            CrlNumberFault::Missing,
            "crl_number_missing",
            "no cRLNumber",
        ),
        (
            CrlNumberFault::Critical,
            "crl_number_critical",
            "cRLNumber extension is critical",
        ),
    ] {
        live.set(Target::Crl, Behaviour::NonconformingCrl(fault));
        for policy in ["require", "prefer"] {
            let (exit, report) = live.check_client().args(["--revocation", policy]).json();
            assert_eq!(
                source(&report, "crl")["error"]["code"],
                code,
                "{policy}: {report}"
            );
            assert_ne!(report["verdict"]["status"], "good", "{policy}: {report}");
            if policy == "require" {
                assert_eq!(exit, 1, "{report}");
                assert_eq!(report["verdict"]["verdict"], "rejected");
            }
        }
        let out = live.check_client().output();
        assert_eq!(out.code, Some(1), "{}", out.stdout);
        assert!(out.stdout.contains(text), "{fault:?}: {}", out.stdout);
    }
}

#[test]
fn method_crl_consults_only_the_crl() {
    let live = Live::start();
    let got = live.check_client().args(["--method", "crl"]).json();
    verdict(&got, 0, "accepted", "ok");
    assert_eq!(sources(&got.1), pairs(&[("crl", "good")]));
    let counts = live.responder.counts_for("intermediate");
    assert_eq!((counts.crl, counts.ocsp()), (1, 0));

    let got = live
        .check_client()
        .args(["--method", "crl-then-ocsp"])
        .json();
    assert_eq!(sources(&got.1), pairs(&[("crl", "good"), ("ocsp", "good")]));
}

#[test]
fn sha256_cert_ids_and_nonces_work() {
    let live = Live::start();
    let got = live
        .check_client()
        .args(["--method", "ocsp", "--ocsp-hash", "sha256", "--nonce"])
        .json();
    verdict(&got, 0, "accepted", "ok");
    assert_eq!(sources(&got.1), pairs(&[("ocsp", "good")]));
    assert_eq!(source(&got.1, "ocsp")["nonce"], "echoed");
    assert_eq!(live.responder.counts_for("intermediate").crl, 0);
}

#[test]
fn a_delegated_ocsp_responder_is_accepted() {
    let live = Live::start();
    live.responder.set_ocsp_signer(OcspSigner::Delegated);
    let got = live.check_client().args(["--method", "ocsp"]).json();
    verdict(&got, 0, "accepted", "ok");
    assert_eq!(sources(&got.1), pairs(&[("ocsp", "good")]));
}

#[test]
fn the_issuer_can_come_from_its_own_file() {
    let live = Live::start();
    let got = Run::new()
        .arg("check")
        .arg(live.file("client.pem"))
        .arg("--issuer")
        .arg(live.file("intermediate.pem"))
        .json();
    verdict(&got, 0, "accepted", "ok");
    // A bundle: the certificate that issued the client is picked.
    let mut bundle = live.pki.root.cert.pem.clone();
    bundle.push_str(&live.pki.intermediate.cert.pem);
    let bundle = live.files.write("bundle.pem", bundle.as_bytes()).unwrap();
    let got = Run::new()
        .arg("check")
        .arg(live.file("client.der"))
        .arg("--issuer")
        .arg(&bundle)
        .json();
    verdict(&got, 0, "accepted", "ok");
}

#[test]
fn a_wrong_issuer_is_rejected_and_the_certificate_still_shown() {
    let live = Live::start();
    let got = Run::new()
        .arg("check")
        .arg(live.file("client.pem"))
        .arg("--issuer")
        .arg(live.file("other-intermediate.pem"))
        .json();
    verdict(&got, 1, "rejected", "unknown_issuer");
    assert_eq!(got.1["certificate"]["serial"], live.pki.client.serial_hex());
    assert!(got.1["verdict"]["chain"].as_array().unwrap().is_empty());
}

#[test]
fn text_output_lists_every_source_with_its_answer_and_timing() {
    let live = Live::start();
    let out = live.check_client().output();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let text = out.stdout;
    assert!(text.starts_with("certificate: "), "{text}");
    assert!(
        text.contains("sources (2 consulted, method ocsp-then-crl, policy require):"),
        "{text}"
    );
    let ocsp_at = text.find(&format!("ocsp {}", live.ocsp_url())).unwrap();
    let crl_at = text.find(&format!("crl  {}", live.crl_url())).unwrap();
    assert!(ocsp_at < crl_at, "{text}");
    assert!(text.contains(" ms (GET)"), "{text}");
    assert!(text.contains("; CRL number 2, 1 entry"), "{text}");
    assert_eq!(text.matches("       good\n").count(), 2, "{text}");
    assert_eq!(text.matches("fresh, next update in ").count(), 2, "{text}");
    assert!(text.contains("ACCEPTED: good (ok)"), "{text}");

    live.set(Target::Ocsp, Behaviour::Status500);
    let out = live.check_client().args(["--timeout", "2"]).output();
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains("error: http_status: "),
        "{}",
        out.stdout
    );
}

#[test]
fn revocation_off_consults_nothing() {
    let live = Live::start();
    let got = live.check_client().args(["--revocation", "off"]).json();
    verdict(&got, 0, "accepted", "revocation_not_checked");
    assert!(got.1["sources"].as_array().unwrap().is_empty());
    let counts = live.responder.counts();
    assert_eq!((counts.crl, counts.ocsp()), (0, 0));
}

#[test]
fn a_certificate_without_http_sources_says_so_and_fails_closed() {
    let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
    // URLs of another scheme are not sources.
    let spec = CertSpec {
        base_url: "ldap://ldap.vigil.test".into(),
        ..CertSpec::leaf("ldap-only", "ldap-only.vigil.test", &pki.options)
    };
    let leaf = pki.intermediate.issue_leaf(&spec).unwrap();
    let files = PkiDir::new(&pki).unwrap();
    let chain = format!("{}{}", leaf.pem, pki.intermediate.cert.pem);
    let path = files
        .write("ldap-only.chain.pem", chain.as_bytes())
        .unwrap();

    let got = Run::new().arg("check").arg(&path).json();
    verdict(&got, 1, "rejected", "revocation_data_missing");
    assert!(got.1["sources"].as_array().unwrap().is_empty());
    let got = Run::new()
        .arg("check")
        .arg(&path)
        .args(["--revocation", "prefer"])
        .json();
    verdict(&got, 0, "accepted", "revocation_unknown_soft_fail");

    let out = Run::new().arg("check").arg(&path).output();
    assert_eq!(out.code, Some(1));
    assert!(
        out.stdout
            .contains("names no http(s) CRL distribution point or OCSP responder"),
        "{}",
        out.stdout
    );
}

#[test]
fn bad_input_exits_2() {
    let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
    let files = PkiDir::new(&pki).unwrap();
    let chain = files.file("client.chain.pem");
    let garbage = files.write("garbage.pem", b"not a certificate\n").unwrap();
    let cases: Vec<(Vec<OsString>, &str)> = vec![
        (vec![files.file("missing.pem").into()], "missing.pem"),
        (vec![garbage.clone().into()], "garbage.pem"),
        (
            vec![chain.clone().into(), "--issuer".into(), garbage.into()],
            "garbage.pem",
        ),
        (vec![files.file("client.pem").into()], "--issuer"),
        (
            vec![chain.clone().into(), "--at".into(), "yesterday".into()],
            "--at",
        ),
        (
            vec![chain.clone().into(), "--method".into(), "ldap".into()],
            "--method",
        ),
        (
            vec![chain.clone().into(), "--timeout".into(), "0".into()],
            "--timeout",
        ),
        (
            vec![chain.clone().into(), "--ocsp-hash".into(), "md5".into()],
            "--ocsp-hash",
        ),
        (vec![], "CERT"),
    ];
    for (args, says) in cases {
        let out = Run::new().arg("check").args(&args).output();
        assert_eq!(out.code, Some(2), "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

/// Pins a known limitation: the verifier reaches revocation only through
/// path validation, which refuses a CA certificate as the leaf. The check
/// is rejected (never accepted) and says why.
#[test]
fn checking_a_ca_certificate_is_refused_with_a_note() {
    let live = Live::start();
    let out = Run::new()
        .arg("check")
        .arg(live.file("intermediate.pem"))
        .arg("--issuer")
        .arg(live.file("root.pem"))
        .output();
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("REJECTED: invalid (unsupported_ca_end_entity)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("checking a CA certificate is not supported yet"),
        "{}",
        out.stderr
    );
}

/// `vigil verify` without `--offline` fetches what the chain names.
#[test]
fn online_verify_fetches_the_chains_sources() {
    let live = Live::start();
    let verify = |leaf: &str, offline: bool| {
        let mut run = Run::new()
            .arg("verify")
            .args(["--format", "json", "--usage", "client", "--anchor"])
            .arg(live.file("root.pem"))
            .arg(live.file(leaf));
        if offline {
            run = run.arg("--offline");
        }
        let out = run.output();
        let json: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        (out.code.unwrap(), json)
    };
    // Offline with no files: nothing fetched, fails closed.
    let (code, v) = verify("client.chain.pem", true);
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("revocation_data_missing")),
        "{v}"
    );
    assert_eq!(
        live.responder.counts().ocsp() + live.responder.counts().crl,
        0
    );
    // Online: the leaf's and the intermediate's sources are fetched.
    let (code, v) = verify("client.chain.pem", false);
    assert_eq!((code, v["reason"].as_str()), (0, Some("ok")), "{v}");
    assert_eq!(v["revocation"][0]["source"], "ocsp");
    assert!(live.responder.counts_for("intermediate").ocsp() >= 1);
    assert!(live.responder.counts_for("root").crl + live.responder.counts_for("root").ocsp() >= 1);
    live.responder
        .revoke(&live.pki.client, Reason::KeyCompromise)
        .unwrap();
    let (code, v) = verify("client.chain.pem", false);
    assert_eq!((code, v["reason"].as_str()), (1, Some("revoked")), "{v}");
    assert_eq!(v["revocation"][0]["reason"], "keyCompromise");
}

/// A TCP listener on 127.0.0.1 that counts connections and answers none.
fn counting_listener() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (format!("http://{addr}"), count)
}

#[test]
fn environment_proxies_are_not_used() {
    let live = Live::start();
    let (proxy, connections) = counting_listener();
    let mut run = live.check_client();
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        run = run.env(var, &proxy);
    }
    let got = run.env("NO_PROXY", "").env("no_proxy", "").json();
    verdict(&got, 0, "accepted", "ok");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the proxy was used"
    );
    assert!(live.responder.counts().crl >= 1);
}

#[test]
fn a_denied_responder_address_gets_no_request() {
    let live = Live::start();
    let got = live
        .check_client()
        .args(["--fetch-deny", "127.0.0.0/8", "--fetch-deny", "::1"])
        .json();
    assert_eq!(got.0, 1, "{}", got.1);
    for kind in ["ocsp", "crl"] {
        let s = source(&got.1, kind);
        assert_eq!(s["error"]["code"], "address_denied", "{s}");
    }
    let counts = live.responder.counts();
    assert_eq!((counts.crl, counts.ocsp_get, counts.ocsp_post), (0, 0, 0));

    // Allow does not lift an explicit deny.
    let got = live
        .check_client()
        .args(["--fetch-deny", "127.0.0.0/8", "--fetch-allow", "127.0.0.1"])
        .json();
    assert_eq!(source(&got.1, "crl")["error"]["code"], "address_denied");
}

#[test]
fn a_bad_fetch_cidr_is_a_usage_error() {
    let live = Live::start();
    for (flag, value) in [
        ("--fetch-deny", "10.0.0.1/8"),
        ("--fetch-allow", "nope"),
        ("--fetch-deny", "::/129"),
    ] {
        let out = live.check_client().args([flag, value]).output();
        assert_eq!(out.code, Some(2), "{flag} {value}: {}", out.stderr);
        assert!(out.stderr.contains(value), "{}", out.stderr);
    }
    assert_eq!(live.responder.counts().crl, 0);
}

#[test]
fn verify_takes_the_fetch_rules_too() {
    let live = Live::start();
    let verify = || {
        Run::new()
            .arg("verify")
            .arg(live.file("client.chain.pem"))
            .arg("--anchor")
            .arg(live.file("root.pem"))
            .args(["--usage", "client"])
    };
    let (code, report) = verify()
        .args(["--fetch-deny", "127.0.0.0/8", "--fetch-deny", "::1"])
        .json();
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["reason"], "revocation_data_missing", "{report}");
    let counts = live.responder.counts();
    assert_eq!((counts.crl, counts.ocsp_get, counts.ocsp_post), (0, 0, 0));
    // The control: loopback is fetched from by default.
    let (code, report) = verify().json();
    assert_eq!((code, &report["reason"]), (0, &json!("ok")), "{report}");
    assert!(live.responder.counts().crl + live.responder.counts().ocsp() > 0);
    let out = verify().args(["--fetch-allow", "300.0.0.0/8"]).output();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}
