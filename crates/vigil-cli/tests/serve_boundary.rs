//! `vigil serve`'s trust boundary, against the real binary on 127.0.0.1
//! (issue 11, item 7): cross-site media types create no deny rule (415),
//! a DNS-rebound Host is refused (421), every /v1 read needs the token
//! (401), the token comes from a file, a non-loopback listen needs a token
//! (exit 2) unless --insecure-no-auth, caps answer 429, a Last-Event-ID
//! past u64 is a reset, and a corrupt stored deny rule fails /readyz.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use serve_support::{next_event, subscribe, vigil, Api, Fixture};

const TOKEN: &str = "boundary-token-abcdef";

/// One raw request over TCP; the whole answer (the request closes).
fn raw(base: &str, request: &str) -> String {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_status(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = std::process::Command::new(vigil());
    command.arg("serve").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("VIGIL_") {
            command.env_remove(k);
        }
    }
    command.envs(env.iter().copied());
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_deny_gets_415_and_a_rebound_host_421() {
    let fx = Fixture::start().await;
    // The loopback default: no token, so the media type and the Host
    // check are all that stand between a web page and the deny list.
    let sidecar = fx.sidecar(&[]);
    let api = Api::new(&sidecar, None);
    let rule = json!({"cert_sha256": "ab".repeat(32), "reason": "csrf"}).to_string();
    for media in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=----x",
    ] {
        let reply = api
            .http
            .post(sidecar.url("/v1/deny"))
            .header("content-type", media)
            .body(rule.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 415, "{media}");
        let body: serde_json::Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
        assert_eq!(body["error"], "unsupported_media_type");
    }
    assert_eq!(api.get("/v1/deny").await.body["rules"], json!([]));

    // DNS rebinding: the browser names the attacker's host.
    let reply = raw(
        &sidecar.base,
        &format!(
            "POST /v1/deny HTTP/1.1\r\nHost: attacker.example\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{rule}",
            rule.len()
        ),
    );
    assert!(reply.starts_with("HTTP/1.1 421"), "{reply}");
    assert!(reply.contains("misdirected_request"), "{reply}");
    let reply = raw(
        &sidecar.base,
        "GET /v1/connections HTTP/1.1\r\nHost: attacker.example:8787\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 421"), "{reply}");
    assert_eq!(api.get("/v1/deny").await.body["rules"], json!([]));
    // `vigil health` (127.0.0.1) still passes.
    let probe = std::process::Command::new(vigil())
        .args(["health", "--url", &sidecar.base])
        .output()
        .unwrap();
    assert!(probe.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_from_a_file_guards_every_v1_read() {
    let fx = Fixture::start().await;
    let file = fx.dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let sidecar = fx.sidecar(&["--api-token-file", file.to_str().unwrap()]);
    let api = Api::new(&sidecar, Some(TOKEN));
    let anonymous = Api::new(&sidecar, None);
    let id = api
        .register(&fx.chain(&fx.pki.client), json!({"team": "secret"}), None)
        .await;
    for path in [
        "/v1/connections".to_owned(),
        format!("/v1/connections/{id}"),
        "/v1/events".to_owned(),
        "/v1/revocation".to_owned(),
        "/v1/deny".to_owned(),
    ] {
        let reply = anonymous.get(&path).await;
        assert_eq!(reply.status, 401, "{path}: {}", reply.text);
        assert!(!reply.text.contains("secret"), "{path}");
        assert_eq!(
            api.get(&path.replace("/v1/events", "/v1/revocation"))
                .await
                .status,
            200
        );
    }
    let verify = anonymous
        .post("/v1/verify", &json!({"chain": fx.chain(&fx.pki.client)}))
        .await;
    assert_eq!(verify.status, 401);
    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_ne!(anonymous.get(open).await.status, 401, "{open}");
    }
    // --api-token still works, with a warning that ps shows it.
    let dir2 = fx.dir.path().join("data-flag");
    let mut flagged =
        serve_support::Sidecar::start(&dir2, &fx.anchor(), &["--api-token", TOKEN], &[]);
    assert_eq!(
        Api::new(&flagged, Some(TOKEN)).get("/v1/deny").await.status,
        200
    );
    assert!(flagged.stop().success());
    assert!(
        flagged.log_text().contains("--api-token is visible"),
        "{}",
        flagged.log_text()
    );
    assert!(!flagged.log_text().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_settings_and_an_open_non_loopback_listen_exit_2() {
    let fx = Fixture::start().await;
    let anchor = fx.anchor().display().to_string();
    let data = fx.data_dir().display().to_string();
    let empty = fx.dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let base = ["--anchor", anchor.as_str(), "--data-dir", data.as_str()];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>, env: &[(&str, &str)]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        serve_status(&args, env)
    };
    let (code, err) = run(with(&["--listen", "0.0.0.0:0"]), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("not a loopback address") && err.contains("--insecure-no-auth"),
        "{err}"
    );
    let (code, err) = run(with(&["--listen", "[::]:0"]), &[]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(
        with(&[
            "--listen",
            "127.0.0.1:0",
            "--api-token-file",
            empty.to_str().unwrap(),
        ]),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("empty"), "{err}");
    let (code, err) = run(
        with(&[
            "--listen",
            "127.0.0.1:0",
            "--api-token-file",
            "/nonexistent/token",
        ]),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(
        with(&["--listen", "127.0.0.1:0"]),
        &[("VIGIL_API_TOKEN", "")],
    );
    assert_eq!(code, Some(2), "{err}");
    // --insecure-no-auth (or a token) gets past the check: what fails next
    // is the anchor, before anything is bound.
    for (extra, env) in [
        (vec!["--insecure-no-auth"], vec![]),
        (vec![], vec![("VIGIL_INSECURE_NO_AUTH", "true")]),
        (vec![], vec![("VIGIL_API_TOKEN", TOKEN)]),
    ] {
        let mut args: Vec<String> = [
            "--anchor",
            "/nonexistent/root.pem",
            "--data-dir",
            &data,
            "--listen",
            "0.0.0.0:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let (code, err) = run(args, &env);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            !err.contains("not a loopback address"),
            "{extra:?} {env:?}: {err}"
        );
        assert!(err.contains("root.pem"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_answer_429_and_a_last_event_id_past_u64_is_a_reset() {
    let fx = Fixture::start().await;
    let sidecar = fx.sidecar(&[
        "--api-token",
        TOKEN,
        "--max-connections",
        "1",
        "--max-subscribers",
        "2",
    ]);
    let api = Api::new(&sidecar, Some(TOKEN));
    let leaf = fx.leaf("capped");
    let _id = api.register(&fx.chain(&leaf), json!({}), None).await;
    let second = api
        .post(
            "/v1/connections",
            &json!({"chain": fx.chain(&fx.pki.client)}),
        )
        .await;
    assert_eq!(second.status, 429, "{}", second.text);
    assert_eq!(second.body["error"], "too_many_connections");

    let mut events = subscribe(&api, None).await;
    // A teardown gives an event id of this run.
    let sha = vigil_core::text::hex(&vigil_core::sha256(&leaf.der));
    let deny = api
        .post(
            "/v1/deny",
            &json!({"cert_sha256": sha, "reason": "cap test"}),
        )
        .await;
    assert_eq!(deny.status, 201, "{}", deny.text);
    let torn = next_event(&mut events, "teardown", Duration::from_secs(5))
        .await
        .expect("a teardown");
    let id = torn.id.unwrap();
    let epoch = id.split_once('-').unwrap().0.to_owned();
    // Two subscribers are the cap: `events` and this one.
    let mut resumed = api
        .http
        .get(format!("{}/v1/events", api.base))
        .bearer_auth(TOKEN)
        .header("Last-Event-ID", format!("{epoch}-{}", u64::MAX))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status().as_u16(), 200);
    let over = api.get("/v1/events").await;
    assert_eq!(over.status, 429, "{}", over.text);
    assert_eq!(over.body["error"], "too_many_subscribers");
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resumed.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: reset"), "{text}");
    drop(resumed);
    // The slot comes back; the sidecar is fine.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut again = 429;
    while again == 429 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        again = subscribe_status(&api).await.0;
    }
    assert_eq!(again, 200);
    assert_eq!(api.get("/healthz").await.status, 200);
    drop(events);
}

/// The status of a /v1/events subscription (the stream, if any, is
/// dropped with the tuple).
async fn subscribe_status(api: &Api) -> (u16, Option<reqwest::Response>) {
    let response = api
        .http
        .get(format!("{}/v1/events", api.base))
        .bearer_auth(api.token.as_deref().unwrap_or_default())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), Some(response))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_stored_deny_rule_fails_readyz_and_stays_on_disk() {
    let fx = Fixture::start().await;
    {
        let mut sidecar = fx.sidecar(&["--api-token", TOKEN]);
        Api::new(&sidecar, Some(TOKEN)).wait_ready().await;
        assert!(sidecar.stop().success());
    }
    {
        let store = vigil_runtime::SledStore::open(fx.data_dir()).unwrap();
        use vigil_runtime::Store as _;
        store
            .put_entry(
                vigil_runtime::Table::Denials,
                b"{\"cert_sha256\":\"x\"}",
                b"{truncated",
            )
            .unwrap();
        store.flush().unwrap();
    }
    let sidecar = fx.sidecar(&["--api-token", TOKEN]);
    let api = Api::new(&sidecar, Some(TOKEN));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let ready = api.get("/readyz").await;
        if ready.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("could not be loaded"))
            || std::time::Instant::now() > deadline
        {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(ready.text.contains("deny rule"), "{}", ready.text);
    assert!(sidecar
        .log_text()
        .contains("stored deny rule cannot be loaded"));
    let probe = std::process::Command::new(vigil())
        .args(["health", "--url", &sidecar.base, "--ready"])
        .output()
        .unwrap();
    assert_eq!(probe.status.code(), Some(1));
    let mut sidecar = sidecar;
    assert!(sidecar.stop().success());
    let store = vigil_runtime::SledStore::open(fx.data_dir()).unwrap();
    use vigil_runtime::Store as _;
    let kept = store.entries(vigil_runtime::Table::Denials).unwrap();
    assert!(
        kept.iter().any(|(_, v)| v == b"{truncated"),
        "the corrupt rule was dropped"
    );
}
