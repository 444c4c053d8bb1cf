//! Golden files for every contract output (ARCHITECTURE.md "Contracts"):
//! `vigil verify --format json`, `vigil check --format json`, the sidecar's
//! `/v1/verify`, `/v1/connections`, `/v1/revocation` bodies, the SSE events
//! of `/v1/events` (framing and data) and `vigil drill --format json`. Each
//! case runs the real binary (real openssl, real HTTP on 127.0.0.1, real
//! sled) and compares its output with `tests/golden/CASE.json`, key order
//! included, so any drift of the contract JSON fails here.
//!
//! Regenerate (then review the diff; the contract may only be extended):
//!
//! ```text
//! VIGIL_UPDATE_GOLDEN=1 cargo test -p vigil-cli --test golden
//! ```
//!
//! Volatile values (times, serials, digests, ids, ports, durations) are
//! redacted by `golden_support`, which checks each value's exact format
//! before replacing it with a typed placeholder (`<rfc3339>`, `<hex:32>`,
//! `127.0.0.1:<port>`, `0`). A value whose format drifts (fractional
//! seconds, an offset, uppercase hex) is left as it is and so fails the
//! comparison: the golden files pin formats as well as shapes.

#![allow(clippy::unwrap_used)]

mod cli_support;
mod golden_support;
mod serve_support;

use cli_support::Live;

use std::ffi::{OsStr, OsString};
use std::process::Command;
use std::time::Duration;

use golden_support::{assert_golden, assert_golden_text, compact, parse_or_panic, redact, Json};
use pki_fixtures::openssl::{IndexEntry, OcspQuery};
use pki_fixtures::responder::{Behaviour, Target as ResponderTarget};
use pki_fixtures::{roles, Cert, Pki, PkiDir, PkiOptions, Reason};
use serde_json::{json, Value};
use serve_support::{next_event, subscribe, Api, Fixture as ServeFixture, SseEvent};
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Numbers below these keys depend on timing and are redacted to zero.
const TIMING_KEYS: &[&str] = &["fetch_ms", "teardown_ms", "elapsed_ms", "duration_ms"];

/// The fixed `now` of the offline `vigil verify` cases.
const NOW: OffsetDateTime = datetime!(2026-01-15 12:00:00 UTC);
const NOW_TEXT: &str = "2026-01-15T12:00:00Z";

/// What one run of the binary printed.
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `vigil ARGS` with no proxy and no `VIGIL_*` settings inherited.
fn vigil<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command.args(&args);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("VIGIL_") || key_text.to_ascii_lowercase().ends_with("_proxy") {
            command.env_remove(&key);
        }
    }
    let out = command.output().unwrap();
    let out = Output {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !out.stderr.contains("panicked"),
        "vigil panicked with {args:?}: {}",
        out.stderr
    );
    out
}

/// Checks that `--format json` printed exactly one line of JSON, and
/// compares it with its golden file.
#[track_caller]
fn assert_json_line_golden(name: &str, out: &Output) {
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "{name}: one line of JSON on stdout: {:?} / stderr {}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.ends_with('\n'), "{name}: {:?}", out.stdout);
    assert_golden_text(name, &out.stdout, TIMING_KEYS);
}

// ------------------------------------------------------------ helper checks

#[test]
fn the_golden_helpers_keep_order_and_check_formats() {
    golden_support::self_check();
}

/// Every golden file is in the printer's exact form (so a hand edit shows
/// up as a diff of the next regeneration, not as a silent reformat).
#[test]
fn every_golden_file_is_canonical_json() {
    let dir = golden_support::golden_path("x")
        .parent()
        .unwrap()
        .to_owned();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            path.extension().and_then(OsStr::to_str),
            Some("json"),
            "{}",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = parse_or_panic(&text, &path.display().to_string());
        assert_eq!(
            golden_support::pretty(&parsed),
            text,
            "{} is not in canonical form",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 20, "golden files found: {seen}");
}

// ------------------------------------------------------------ vigil verify

/// The fixture PKI at [`NOW`] (shared by the process), on disk.
fn offline_pki() -> (&'static Pki, PkiDir) {
    let opts = PkiOptions {
        now: NOW,
        ..PkiOptions::default()
    };
    let pki = pki_fixtures::generate_shared(&opts).unwrap();
    (pki, PkiDir::new(pki).unwrap())
}

/// `vigil verify ROLE.chain.pem --anchor root.pem --crl ... --offline --at
/// NOW --usage client --format json`.
fn verify_offline(dir: &PkiDir, role: &str, crls: &[&str]) -> Output {
    let mut args: Vec<OsString> = vec![
        "verify".into(),
        dir.file(&format!("{role}.chain.pem")).into(),
        "--anchor".into(),
        dir.file("root.pem").into(),
        "--offline".into(),
        "--at".into(),
        NOW_TEXT.into(),
        "--usage".into(),
        "client".into(),
        "--format".into(),
        "json".into(),
    ];
    for crl in crls {
        args.push("--crl".into());
        args.push(dir.file(crl).into());
    }
    vigil(&args)
}

const BOTH_CRLS: &[&str] = &[roles::ROOT_CRL, roles::INTERMEDIATE_CRL];

#[test]
fn verify_json_of_an_accepted_chain_with_crls() {
    let (_, dir) = offline_pki();
    let out = verify_offline(&dir, roles::CLIENT, BOTH_CRLS);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_json_line_golden("verify_accepted_crl", &out);
}

#[test]
fn verify_json_of_a_leaf_revoked_by_crl() {
    let (_, dir) = offline_pki();
    let out = verify_offline(&dir, roles::REVOKED_CLIENT, BOTH_CRLS);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_json_line_golden("verify_revoked_leaf_crl", &out);
}

#[test]
fn verify_json_of_an_untrusted_chain() {
    let (_, dir) = offline_pki();
    let out = verify_offline(&dir, roles::OTHER_CLIENT, BOTH_CRLS);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_json_line_golden("verify_untrusted_chain", &out);
}

#[test]
fn verify_json_with_a_crl_set_aside_carries_a_warning() {
    let (_, dir) = offline_pki();
    let crls = [
        roles::ROOT_CRL,
        roles::INTERMEDIATE_CRL,
        roles::INTERMEDIATE_WRONG_KEY_CRL,
    ];
    let out = verify_offline(&dir, roles::CLIENT, &crls);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_json_line_golden("verify_warning_crl_set_aside", &out);
}

#[test]
fn verify_json_when_revocation_data_is_missing() {
    let (_, dir) = offline_pki();
    let out = verify_offline(&dir, roles::CLIENT, &[roles::ROOT_CRL]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_json_line_golden("verify_revocation_data_missing", &out);
}

/// The current time in whole seconds, RFC 3339 (openssl stamps
/// thisUpdate with the real clock, so the OCSP cases run at now).
fn now_text() -> String {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    pki_fixtures::rfc3339(now).unwrap()
}

/// `vigil verify` of `leaf` with `root.crl` and one OCSP answer from the
/// real `openssl ocsp` responder, at now.
fn verify_with_ocsp(pki: &Pki, dir: &PkiDir, leaf: &Cert, entry: IndexEntry) -> Output {
    let der = OcspQuery::from_issuer(&pki.intermediate.cert)
        .about(&leaf.pem)
        .entries([entry])
        .respond()
        .unwrap_or_else(|e| panic!("{e}"));
    let response = dir.write("response.der", &der).unwrap();
    let chain = dir.file(&format!("{}.chain.pem", leaf.name));
    let (anchor, root_crl) = (dir.file("root.pem"), dir.file(roles::ROOT_CRL));
    let at = now_text();
    let args: [&OsStr; 15] = [
        "verify".as_ref(),
        chain.as_os_str(),
        "--anchor".as_ref(),
        anchor.as_os_str(),
        "--crl".as_ref(),
        root_crl.as_os_str(),
        "--ocsp-response".as_ref(),
        response.as_os_str(),
        "--offline".as_ref(),
        "--at".as_ref(),
        at.as_ref(),
        "--usage".as_ref(),
        "client".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ];
    vigil(&args)
}

#[test]
fn verify_json_of_ocsp_answers_good_and_revoked() {
    let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
    let dir = PkiDir::new(&pki).unwrap();

    let out = verify_with_ocsp(&pki, &dir, &pki.client, IndexEntry::good(&pki.client));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_json_line_golden("verify_ocsp_good", &out);

    let revoked_at = pki.options.now - time::Duration::hours(3);
    let entry = IndexEntry::revoked(&pki.client, revoked_at, Some(Reason::KeyCompromise));
    let out = verify_with_ocsp(&pki, &dir, &pki.client, entry);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_json_line_golden("verify_ocsp_revoked", &out);
}

// ------------------------------------------------------------- vigil check

impl Live {
    /// `vigil check client.chain.pem --format json EXTRA...`.
    fn check_client(&self, extra: &[&str]) -> Output {
        let mut args: Vec<OsString> = vec![
            "check".into(),
            self.file("client.chain.pem").into(),
            "--format".into(),
            "json".into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        vigil(&args)
    }
}

#[test]
fn check_json_of_a_good_a_revoked_and_an_unreachable_source() {
    let live = Live::start();
    let out = live.check_client(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_json_line_golden("check_good", &out);

    live.responder
        .set_behaviour(ResponderTarget::Ocsp, Behaviour::Down)
        .unwrap();
    let out = live.check_client(&["--timeout", "5"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_json_line_golden("check_ocsp_down_crl_good", &out);
    live.responder
        .set_behaviour(ResponderTarget::Ocsp, Behaviour::Normal)
        .unwrap();

    live.responder
        .revoke(&live.pki.client, Reason::KeyCompromise)
        .unwrap();
    let out = live.check_client(&[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_json_line_golden("check_revoked", &out);
}

// ------------------------------------------------------------- the sidecar

/// Compares an HTTP reply's body with its golden file, after checking the
/// status and the media type.
#[track_caller]
fn assert_reply_golden(name: &str, reply: &serve_support::Reply, status: u16) {
    assert_eq!(reply.status, status, "{name}: {}", reply.text);
    assert_eq!(
        reply.headers["content-type"].to_str().unwrap(),
        "application/json",
        "{name}"
    );
    assert_golden_text(name, &reply.text, TIMING_KEYS);
}

/// One SSE event exactly as framed on the wire (its lines, without the
/// blank line that ends it).
#[derive(Debug)]
struct RawEvent {
    lines: Vec<String>,
}

impl RawEvent {
    fn field(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}:");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.strip_prefix(' ').unwrap_or(v))
    }

    fn name(&self) -> &str {
        self.field("event").unwrap_or("message")
    }

    /// The event as a golden value: its lines, with the id's EPOCH (the
    /// sidecar's start, ms) and the data JSON replaced after their formats
    /// are checked, and the data itself, redacted.
    fn golden(&self) -> Json {
        let data_text = self.field("data").expect("an event carries data");
        let data = parse_or_panic(data_text, "SSE data");
        assert_eq!(
            compact(&data),
            data_text,
            "SSE data is one line of compact JSON"
        );
        let lines = self
            .lines
            .iter()
            .map(|line| {
                let text = if let Some(id) = line.strip_prefix("id: ") {
                    let (epoch, seq) = id.split_once('-').expect("id EPOCH-SEQ");
                    assert!(
                        epoch.len() >= 13 && epoch.bytes().all(|b| b.is_ascii_digit()),
                        "EPOCH is Unix milliseconds: {line}"
                    );
                    assert!(seq.bytes().all(|b| b.is_ascii_digit()), "{line}");
                    format!("id: <epoch-ms>-{seq}")
                } else if line.starts_with("data: ") {
                    "data: <data>".to_owned()
                } else {
                    line.clone()
                };
                Json::Str(text)
            })
            .collect();
        Json::Obj(vec![
            ("lines".to_owned(), Json::Arr(lines)),
            ("data".to_owned(), redact(&data, TIMING_KEYS)),
        ])
    }
}

/// The next event named `name`, as framed on the wire; generous deadline,
/// this is no timing test.
async fn next_raw(rx: &mut mpsc::UnboundedReceiver<SseEvent>, name: &str) -> RawEvent {
    let event = next_event(rx, name, Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("no {name} event"));
    RawEvent { lines: event.lines }
}

/// Waits until `path` answers a body for which `done` holds.
async fn poll_until(api: &Api, path: &str, done: impl Fn(&Value) -> bool) -> serve_support::Reply {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reply = api.get(path).await;
        if done(&reply.body) {
            return reply;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never reached the expected state: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Verify, register, list, revoke (teardown), lease expiry and the
/// revocation sources of one sidecar under the default policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_bodies_and_events_under_require() {
    let fx = ServeFixture::start().await;
    let sidecar = fx.sidecar(&[]);
    let api = Api::new(&sidecar, None);
    api.wait_ready().await;
    let mut events = subscribe(&api, None).await;

    let kept = fx.leaf("kept");
    let doomed = fx.leaf("doomed");

    let reply = api
        .post(
            "/v1/verify",
            &json!({"chain": fx.chain(&kept), "usage": "client", "name": null}),
        )
        .await;
    assert_reply_golden("sidecar_verify_accepted", &reply, 200);
    let other = json!([fx.pki.other_client.pem, fx.pki.other_intermediate.cert.pem]);
    let reply = api
        .post("/v1/verify", &json!({"chain": other, "usage": "client"}))
        .await;
    assert_reply_golden("sidecar_verify_rejected", &reply, 200);

    let body = json!({"chain": fx.chain(&doomed), "usage": "client", "labels": {"pod": "a"}});
    let reply = api.post("/v1/connections", &body).await;
    assert_reply_golden("sidecar_connections_created", &reply, 201);
    let doomed_id = reply.body["id"].as_str().unwrap().to_owned();
    let kept_id = api
        .register(
            &fx.chain(&kept),
            json!({"pod": "b", "zone": "z1"}),
            Some(3600),
        )
        .await;

    let reply = api.get(&format!("/v1/connections/{kept_id}")).await;
    assert_reply_golden("sidecar_connection_active", &reply, 200);

    fx.responder.revoke(&doomed, Reason::KeyCompromise).unwrap();
    api.refresh().await;
    let teardown = next_raw(&mut events, "teardown").await;
    assert_golden("sse_teardown", &teardown.golden());

    let reply = poll_until(&api, &format!("/v1/connections/{doomed_id}"), |b| {
        b["state"] == "torn_down"
    })
    .await;
    assert_reply_golden("sidecar_connection_torn_down", &reply, 200);

    let reply = api.post("/v1/connections", &body).await;
    assert_reply_golden("sidecar_connections_refused", &reply, 403);

    let reply = api.get("/v1/connections").await;
    assert_reply_golden("sidecar_connections_list", &reply, 200);

    let reply = api.get("/v1/revocation").await;
    assert_reply_golden("sidecar_revocation", &reply, 200);
    // A source is refreshed by the URL shown: a CRL's, or an OCSP
    // responder's (every certificate asked about there).
    for source in reply.body["sources"].as_array().unwrap() {
        let url = source["url"].as_str().unwrap();
        let at_url = reply.body["sources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["url"] == url)
            .count();
        let refreshed = api
            .post("/v1/revocation/refresh", &json!({"url": url}))
            .await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.text);
        let items = refreshed.body["refreshed"].as_array().unwrap();
        assert_eq!(items.len(), at_url, "{}", refreshed.text);
        for item in items {
            assert_eq!(item["url"], url, "{item}");
            assert_eq!(
                item["serial"].is_string(),
                source["kind"] == "ocsp",
                "{item}"
            );
            assert_ne!(item["outcome"], "failed", "{item}");
        }
    }

    let lapsing = fx.leaf("lapsing");
    api.register(&fx.chain(&lapsing), json!({"job": "batch"}), Some(1))
        .await;
    let expired = next_raw(&mut events, "lease_expired").await;
    assert_golden("sse_lease_expired", &expired.golden());
}

/// Under `prefer` with the responder down: a registration is kept but
/// degraded; a subscriber resuming from an event already dropped from the
/// backlog gets `reset` first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_degraded_and_reset_events_under_prefer() {
    const BACKLOG: usize = 16;
    let fx = ServeFixture::start().await;
    fx.responder
        .set_behaviour(ResponderTarget::All, Behaviour::Down)
        .unwrap();
    let backlog = BACKLOG.to_string();
    let sidecar = fx.sidecar(&["--revocation", "prefer", "--event-backlog", &backlog]);
    let api = Api::new(&sidecar, None);
    api.wait_ready().await;
    let mut events = subscribe(&api, None).await;

    let first = fx.leaf("degraded-0");
    let reply = api
        .post(
            "/v1/connections",
            &json!({"chain": fx.chain(&first), "usage": "client", "labels": {"pod": "d"}}),
        )
        .await;
    assert_reply_golden("sidecar_connections_created_degraded", &reply, 201);
    let degraded = next_raw(&mut events, "degraded").await;
    assert_golden("sse_degraded", &degraded.golden());
    let first_id = degraded.field("id").unwrap().to_owned();

    // The sources of that one chain, each with its fetch error.
    let reply = api.get("/v1/revocation").await;
    assert_reply_golden("sidecar_revocation_unreachable", &reply, 200);

    // Push the first event and the one after it out of the backlog (a
    // resume after the first then misses the second).
    for n in 1..=BACKLOG + 1 {
        let leaf = fx.leaf(&format!("degraded-{n}"));
        api.register(&fx.chain(&leaf), json!({}), None).await;
        next_raw(&mut events, "degraded").await;
    }
    let mut behind = subscribe(&api, Some(&first_id)).await;
    // The first event (keep-alive comments aside).
    let reset = loop {
        let event = tokio::time::timeout(Duration::from_secs(60), behind.recv())
            .await
            .unwrap()
            .unwrap();
        if event.event != "comment" {
            break RawEvent { lines: event.lines };
        }
    };
    assert_eq!(reset.name(), "reset", "{reset:?}");
    assert_golden("sse_reset", &reset.golden());
}

// -------------------------------------------------------------- vigil drill

#[test]
fn drill_json_at_the_smallest_full_shape() {
    let out = vigil(&[
        "drill",
        "--connections",
        "2",
        "--seed",
        "7",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_golden_text("drill", &out.stdout, TIMING_KEYS);
}
