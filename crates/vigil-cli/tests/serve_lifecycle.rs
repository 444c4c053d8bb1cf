//! `vigil serve` end to end over 127.0.0.1, with the fixture CRL/OCSP
//! responder: revocation reaches an SSE subscriber for exactly the
//! connection concerned; registrations survive graceful and `kill -9`
//! restarts and still produce teardowns (also for what was revoked while
//! the sidecar was down); leases expire, and renewed lease lengths outlive
//! restarts; deny tears down at once and survives a restart;
//! `Last-Event-ID` resumes the stream; a restart with OCSP-only sources
//! due neither spins nor delays SIGTERM; SIGHUP reloads the anchors.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::time::{Duration, Instant};

use pki_fixtures::Reason;
use serde_json::json;
use serve_support::{next_event, subscribe, Api, Fixture, Sidecar};

const TOKEN: &str = "test-token-0123456789";

fn token_args() -> [&'static str; 2] {
    ["--api-token", TOKEN]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_tears_down_exactly_that_connection_over_sse() {
    let fx = Fixture::start().await;
    let sidecar = fx.sidecar(&token_args());
    let api = Api::new(&sidecar, Some(TOKEN));
    let doomed_cert = fx.leaf("doomed");
    let kept_cert = fx.leaf("kept");
    let doomed = api
        .register(&fx.chain(&doomed_cert), json!({"pod": "a"}), None)
        .await;
    let kept = api
        .register(&fx.chain(&kept_cert), json!({"pod": "b"}), None)
        .await;
    // A second connection with the same chain (shares the tracked peer).
    let twin = api
        .register(&fx.chain(&doomed_cert), json!({"pod": "a2"}), None)
        .await;
    let mut events = subscribe(&api, None).await;

    fx.responder
        .revoke(&doomed_cert, Reason::KeyCompromise)
        .unwrap();
    api.refresh().await;

    let mut event = next_event(&mut events, "teardown", Duration::from_secs(5))
        .await
        .expect("a teardown event");
    let other = next_event(&mut events, "teardown", Duration::from_secs(5))
        .await
        .expect("a teardown event for the twin");
    if event.data["connection_id"] == twin.as_str() {
        event = other;
    } else {
        assert_eq!(other.data["connection_id"], twin.as_str());
        assert_eq!(other.data["labels"], json!({"pod": "a2"}));
    }
    assert_eq!(event.data["connection_id"], doomed.as_str());
    assert_eq!(event.data["reason"], "revoked");
    assert_eq!(event.data["serial"], doomed_cert.serial_hex().as_str());
    assert_eq!(event.data["labels"], json!({"pod": "a"}));
    for field in ["detail", "at", "subject"] {
        assert!(event.data[field].is_string(), "{field}: {}", event.data);
    }
    assert!(event.id.is_some());
    // Nothing for the other connection.
    assert!(
        next_event(&mut events, "teardown", Duration::from_millis(500))
            .await
            .is_none()
    );
    let gone = api.get(&format!("/v1/connections/{doomed}")).await;
    assert_eq!(gone.status, 200);
    assert_eq!(gone.body["state"], "torn_down");
    assert_eq!(gone.body["teardown"]["reason"], "revoked");
    let alive = api.get(&format!("/v1/connections/{kept}")).await;
    assert_eq!(alive.body["state"], "active");
    let list = api.get("/v1/connections").await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["connections"][0]["id"], kept.as_str());
    // A new registration of the revoked chain is refused with its verdict.
    let refused = api
        .post(
            "/v1/connections",
            &json!({"chain": fx.chain(&doomed_cert), "usage": "client"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.body["verdict"]["reason"], "revoked");
    assert_eq!(refused.body["error"], "rejected");
}

/// SIGHUP reads the `--anchor` files again: a registration whose chain ends
/// at an anchor no longer listed is torn down as `untrusted`, and the
/// chain is refused from then on; one under a kept anchor stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_anchors_and_tears_down_what_a_removed_one_carried() {
    let fx = Fixture::start().await;
    let anchors = fx.dir.path().join("anchors.pem");
    let (root, other_root) = (&fx.pki.root.cert, &fx.pki.other_root.cert);
    std::fs::write(&anchors, format!("{}{}", root.pem, other_root.pem)).unwrap();
    let sidecar = Sidecar::start(&fx.data_dir(), &anchors, &token_args(), &[]);
    let api = Api::new(&sidecar, Some(TOKEN));
    let gone_cert = fx.leaf("gone");
    let gone = api
        .register(&fx.chain(&gone_cert), json!({"pod": "a"}), None)
        .await;
    let other = json!([fx.pki.other_client.pem, fx.pki.other_intermediate.cert.pem]);
    let kept = api.register(&other, json!({"pod": "b"}), None).await;
    let mut events = subscribe(&api, None).await;

    std::fs::write(&anchors, &other_root.pem).unwrap();
    let pid = sidecar.pid().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let event = next_event(&mut events, "teardown", Duration::from_secs(10))
        .await
        .expect("no teardown after the anchor was removed");
    assert_eq!(event.data["connection_id"], gone.as_str());
    assert_eq!(event.data["reason"], "untrusted", "{:?}", event.data);
    let alive = api.get(&format!("/v1/connections/{kept}")).await;
    assert_eq!(alive.body["state"], "active", "{}", alive.text);
    let refused = api
        .post(
            "/v1/connections",
            &json!({"chain": fx.chain(&gone_cert), "usage": "client"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_graceful_and_kill9_restarts() {
    let fx = Fixture::start().await;
    let a_cert = fx.leaf("restart-a");
    let b_cert = fx.leaf("restart-b");
    let c_cert = fx.leaf("restart-c");
    let (a, b, c) = {
        let mut sidecar = fx.sidecar(&token_args());
        let api = Api::new(&sidecar, Some(TOKEN));
        let a = api
            .register(&fx.chain(&a_cert), json!({"name": "a"}), None)
            .await;
        let b = api
            .register(&fx.chain(&b_cert), json!({"name": "b"}), Some(3600))
            .await;
        let c = api
            .register(&fx.chain(&c_cert), json!({"name": "c"}), None)
            .await;
        let status = sidecar.stop();
        assert!(status.success(), "{status:?}: {}", sidecar.log_text());
        assert!(sidecar.log_text().contains("stopped cleanly"));
        (a, b, c)
    };

    // Graceful restart: all three are back, with their ids and labels, and
    // a revocation still reaches a subscriber.
    let mut sidecar = fx.sidecar(&token_args());
    let api = Api::new(&sidecar, Some(TOKEN));
    api.wait_ready().await;
    let list = api.get("/v1/connections").await;
    assert_eq!(list.body["total"], 3, "{}", list.text);
    let b_view = api.get(&format!("/v1/connections/{b}")).await;
    assert_eq!(b_view.body["labels"], json!({"name": "b"}));
    assert_eq!(b_view.body["lease_secs"], 3600);
    let mut events = subscribe(&api, None).await;
    fx.responder.revoke(&a_cert, Reason::KeyCompromise).unwrap();
    api.refresh().await;
    let event = next_event(&mut events, "teardown", Duration::from_secs(5))
        .await
        .expect("teardown after a graceful restart");
    assert_eq!(event.data["connection_id"], a.as_str());
    drop(events);

    // kill -9, and c is revoked while the sidecar is down: the restart
    // announces it (reachable by resuming with an id of the previous run).
    let last_id = event.id.clone().unwrap();
    sidecar.kill9();
    fx.responder.revoke(&c_cert, Reason::Superseded).unwrap();
    let sidecar = fx.sidecar(&token_args());
    let api = Api::new(&sidecar, Some(TOKEN));
    api.wait_ready().await;
    let mut events = subscribe(&api, Some(&last_id)).await;
    // `a`'s removal may not have reached the disk before the kill: then it
    // is announced again (at least once), before or after `c`.
    let event = loop {
        let event = next_event(&mut events, "teardown", Duration::from_secs(10))
            .await
            .expect("teardown for what was revoked while down");
        if event.data["connection_id"] != a.as_str() {
            break event;
        }
    };
    assert_eq!(event.data["connection_id"], c.as_str());
    assert_eq!(event.data["reason"], "revoked");
    let list = api.get("/v1/connections").await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
    assert_eq!(list.body["connections"][0]["id"], b.as_str());
    // ... and b still produces its teardown after the kill -9.
    fx.responder.revoke(&b_cert, Reason::KeyCompromise).unwrap();
    api.refresh().await;
    let event = loop {
        let event = next_event(&mut events, "teardown", Duration::from_secs(5))
            .await
            .expect("teardown after kill -9");
        if event.data["connection_id"] != a.as_str() {
            break event;
        }
    };
    assert_eq!(event.data["connection_id"], b.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_unless_renewed() {
    let fx = Fixture::start().await;
    let sidecar = fx.sidecar(&token_args());
    let api = Api::new(&sidecar, Some(TOKEN));
    let leaf = fx.leaf("leased");
    let mut events = subscribe(&api, None).await;
    let lapsing = api.register(&fx.chain(&leaf), json!({}), Some(1)).await;
    let renewed = api.register(&fx.chain(&leaf), json!({}), Some(1)).await;
    let unleased = api.register(&fx.chain(&leaf), json!({}), None).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2200) {
        let r = api
            .post(&format!("/v1/connections/{renewed}/renew"), &json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let event = next_event(&mut events, "lease_expired", Duration::from_secs(2))
        .await
        .expect("lease_expired event");
    assert_eq!(event.data["connection_id"], lapsing.as_str());
    assert_eq!(
        api.get(&format!("/v1/connections/{lapsing}")).await.status,
        404
    );
    // It shared its chain with the lapsed one: still tracked.
    let view = api.get(&format!("/v1/connections/{renewed}")).await;
    assert_eq!(view.body["state"], "active");
    assert!(view.body["valid_until"].is_string(), "{}", view.text);
    let r = api
        .post(&format!("/v1/connections/{unleased}/renew"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    let r = api
        .post(
            &format!("/v1/connections/{unleased}/renew"),
            &json!({"lease_secs": 60}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["lease_secs"], 60);
    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains("vigil_lease_expirations_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_lease_lengths_survive_restarts() {
    let fx = Fixture::start().await;
    let leaf = fx.leaf("renewed");
    let renew = |id: &str, secs: u32| {
        (
            format!("/v1/connections/{id}/renew"),
            json!({"lease_secs": secs}),
        )
    };
    let (x, y, z) = {
        let mut sidecar = fx.sidecar(&token_args());
        let api = Api::new(&sidecar, Some(TOKEN));
        let x = api.register(&fx.chain(&leaf), json!({}), Some(60)).await;
        let y = api.register(&fx.chain(&leaf), json!({}), None).await;
        let z = api.register(&fx.chain(&leaf), json!({}), Some(90)).await;
        for (id, secs) in [(&x, 3600), (&y, 120), (&z, 90)] {
            let (path, body) = renew(id, secs);
            let r = api.post(&path, &body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["lease_secs"], secs);
        }
        let status = sidecar.stop();
        assert!(status.success(), "{status:?}: {}", sidecar.log_text());
        (x, y, z)
    };
    let lease_of = |api: Api, id: String| async move {
        let view = api.get(&format!("/v1/connections/{id}")).await;
        assert_eq!(view.status, 200, "{}", view.text);
        view.body["lease_secs"].clone()
    };

    // Graceful restart: the renewed lengths, not the registered ones.
    let mut sidecar = fx.sidecar(&token_args());
    let api = Api::new(&sidecar, Some(TOKEN));
    api.wait_ready().await;
    assert_eq!(lease_of(api.clone(), x.clone()).await, 3600);
    assert_eq!(lease_of(api.clone(), y.clone()).await, 120);
    assert_eq!(lease_of(api.clone(), z.clone()).await, 90);
    // A renewal is durable once answered: kill -9 right after it.
    let (path, body) = renew(&x, 45);
    assert_eq!(api.post(&path, &body).await.status, 200);
    assert_eq!(
        api.delete(&format!("/v1/connections/{y}"), None)
            .await
            .status,
        204
    );
    sidecar.kill9();

    let sidecar = fx.sidecar(&token_args());
    let api = Api::new(&sidecar, Some(TOKEN));
    api.wait_ready().await;
    assert_eq!(lease_of(api.clone(), x.clone()).await, 45);
    assert_eq!(lease_of(api.clone(), z.clone()).await, 90);
    assert_eq!(api.get(&format!("/v1/connections/{y}")).await.status, 404);
    let list = api.get("/v1/connections").await;
    assert_eq!(list.body["total"], 2, "{}", list.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_tears_down_within_100ms_and_survives_restart() {
    let fx = Fixture::start().await;
    let leaf = fx.leaf("denied");
    let other = fx.leaf("not-denied");
    let sha = {
        let mut sidecar = fx.sidecar(&token_args());
        let api = Api::new(&sidecar, Some(TOKEN));
        let id = api.register(&fx.chain(&leaf), json!({}), None).await;
        let other_id = api.register(&fx.chain(&other), json!({}), None).await;
        let verdict = api
            .post("/v1/verify", &json!({"chain": fx.chain(&leaf)}))
            .await;
        let sha = verdict.body["chain"][0]["sha256"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut events = subscribe(&api, None).await;
        let sent = Instant::now();
        let reply = api
            .post(
                "/v1/deny",
                &json!({"cert_sha256": sha, "reason": "key leaked", "expires": "2099-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.body["cert_sha256"], sha.as_str());
        let event = next_event(&mut events, "teardown", Duration::from_secs(2))
            .await
            .expect("teardown for the denied certificate");
        let took = event.at.duration_since(sent);
        assert!(took < Duration::from_millis(100), "deny took {took:?}");
        assert_eq!(event.data["connection_id"], id.as_str());
        assert_eq!(event.data["reason"], "denied");
        assert!(event.data["detail"]
            .as_str()
            .unwrap()
            .contains("key leaked"));
        assert!(
            next_event(&mut events, "teardown", Duration::from_millis(300))
                .await
                .is_none()
        );
        assert_eq!(
            api.get(&format!("/v1/connections/{other_id}")).await.body["state"],
            "active"
        );
        let v = api
            .post("/v1/verify", &json!({"chain": fx.chain(&leaf)}))
            .await;
        assert_eq!(v.body["verdict"], "rejected");
        assert_eq!(v.body["reason"], "denied");
        assert!(sidecar.stop().success());
        sha
    };
    // After a restart the rule holds; `vigil deny` lists and lifts it.
    let sidecar = fx.sidecar(&token_args());
    let api = Api::new(&sidecar, Some(TOKEN));
    let v = api
        .post("/v1/verify", &json!({"chain": fx.chain(&leaf)}))
        .await;
    assert_eq!(v.body["reason"], "denied", "{}", v.text);
    let r = api
        .post("/v1/connections", &json!({"chain": fx.chain(&leaf)}))
        .await;
    assert_eq!(r.status, 403);
    // Listing is a /v1 read: it needs the token too.
    let anonymous_list = std::process::Command::new(serve_support::vigil())
        .args(["deny", "--sidecar", &sidecar.base, "--list"])
        .env_remove("VIGIL_API_TOKEN")
        .output()
        .unwrap();
    assert_eq!(anonymous_list.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&anonymous_list.stderr).contains("missing_token"));
    let list = std::process::Command::new(serve_support::vigil())
        .args(["deny", "--sidecar", &sidecar.base, "--list"])
        .env("VIGIL_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success() && text.contains(&sha) && text.contains("key leaked"),
        "{text}"
    );
    let no_token = std::process::Command::new(serve_support::vigil())
        .args([
            "deny",
            "--sidecar",
            &sidecar.base,
            "--lift",
            "--cert-sha256",
            &sha,
        ])
        .env_remove("VIGIL_API_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("missing_token"));
    let lift = std::process::Command::new(serve_support::vigil())
        .args([
            "deny",
            "--sidecar",
            &sidecar.base,
            "--lift",
            "--cert-sha256",
            &sha,
        ])
        .env("VIGIL_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        lift.status.success(),
        "{}",
        String::from_utf8_lossy(&lift.stderr)
    );
    let v = api
        .post("/v1/verify", &json!({"chain": fx.chain(&leaf)}))
        .await;
    assert_eq!(v.body["verdict"], "accepted", "{}", v.text);
    // And by issuer and serial from the command line.
    let issuer = v.body["chain"][0]["issuer"].as_str().unwrap().to_owned();
    let deny = std::process::Command::new(serve_support::vigil())
        .args([
            "deny",
            "--sidecar",
            &sidecar.base,
            "--token",
            TOKEN,
            "--issuer",
            &issuer,
            "--serial",
            &leaf.serial_hex(),
            "--reason",
            "offboarded",
        ])
        .output()
        .unwrap();
    assert!(
        deny.status.success(),
        "{}",
        String::from_utf8_lossy(&deny.stderr)
    );
    let v = api
        .post("/v1/verify", &json!({"chain": fx.chain(&leaf)}))
        .await;
    assert_eq!(v.body["reason"], "denied");
    let usage = std::process::Command::new(serve_support::vigil())
        .args(["deny", "--sidecar", &sidecar.base, "--cert-sha256", "ab"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_resume_from_last_event_id_with_keep_alives() {
    let fx = Fixture::start().await;
    let sidecar = fx.sidecar(&["--sse-keep-alive", "1", "--event-backlog", "16"]);
    let api = Api::new(&sidecar, None);
    let leaves: Vec<_> = (0..3).map(|i| fx.leaf(&format!("resume-{i}"))).collect();
    let mut ids = Vec::new();
    for leaf in &leaves {
        ids.push(api.register(&fx.chain(leaf), json!({}), None).await);
    }
    let mut events = subscribe(&api, None).await;
    fx.responder
        .revoke_many(&leaves.iter().collect::<Vec<_>>(), Reason::KeyCompromise)
        .unwrap();
    api.refresh().await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(
            next_event(&mut events, "teardown", Duration::from_secs(5))
                .await
                .unwrap(),
        );
    }
    let mut got: Vec<&str> = seen
        .iter()
        .map(|e| e.data["connection_id"].as_str().unwrap())
        .collect();
    got.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    // Keep-alive comments flow while idle.
    assert!(next_event(&mut events, "comment", Duration::from_secs(3))
        .await
        .is_some());
    // Resuming after the first event replays the other two, in order.
    let first = seen[0].id.clone().unwrap();
    let mut resumed = subscribe(&api, Some(&first)).await;
    for expected in &seen[1..] {
        let e = next_event(&mut resumed, "teardown", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(e.id, expected.id);
    }
    // `0`: everything held.
    let mut all = subscribe(&api, Some("0")).await;
    for expected in &seen {
        let e = next_event(&mut all, "teardown", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(e.id, expected.id);
    }
    // An id whose events were dropped from the 16-event backlog: `reset`
    // first. Push 20 lease expiries through the backlog.
    let leaf = fx.leaf("filler");
    for _ in 0..20 {
        api.register(&fx.chain(&leaf), json!({}), Some(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut behind = subscribe(&api, Some(&first)).await;
    let e = behind.recv().await.unwrap();
    assert_eq!(e.event, "reset", "{e:?}");
    let bad = api
        .send(reqwest::Method::GET, "/v1/events?last_event_id=junk", None)
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_event_streams_and_exits_zero() {
    let fx = Fixture::start().await;
    let mut sidecar = fx.sidecar(&[]);
    let api = Api::new(&sidecar, None);
    let mut events = subscribe(&api, None).await;
    let started = Instant::now();
    let status = sidecar.stop();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The stream ended (the channel closes when the reader task ends).
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while events.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream did not end");
}

/// The "restart spin" regression: OCSP sources restored from the store have
/// no certificate/issuer pair to build a request from. The restarted
/// sidecar must retry them with backoff (under 10% of a core over 20 s),
/// keep answering /healthz, and exit on SIGTERM in under 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_ocsp_only_sources_due_does_not_spin() {
    use vigil_runtime::{SledStore, SourceKind, Store};

    let fx = Fixture::start().await;
    let leaf = fx.leaf("spin");
    {
        let mut sidecar = fx.sidecar(&[]);
        let api = Api::new(&sidecar, None);
        let verified = api
            .post("/v1/verify", &json!({ "chain": fx.chain(&leaf) }))
            .await;
        assert_eq!(verified.status, 200, "{}", verified.text);
        assert!(sidecar.stop().success());
    }
    // Keep only the OCSP sources, fetched two hours ago: all due at start.
    {
        let store = SledStore::open(fx.data_dir()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut ocsp = 0;
        for meta in store.list().unwrap() {
            let url = meta.unwrap().url;
            let mut record = store.get(&url).unwrap().unwrap();
            if record.kind == SourceKind::Crl {
                assert!(store.remove(&url).unwrap());
                continue;
            }
            ocsp += 1;
            record.fetched_at = now - 7200;
            record.last_attempt = Some(now - 7200);
            record.this_update = Some(now - 7200);
            record.next_update = Some(now - 3600);
            store.put(&record).unwrap();
        }
        assert!(ocsp >= 1);
        store.flush().unwrap();
    }

    // Not ready under `require` (every OCSP answer held is stale), but
    // alive.
    let mut sidecar = fx.sidecar(&[]);
    let api = Api::new(&sidecar, None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ocsp_before = fx.responder.counts().ocsp();
    let cpu_before = sidecar.cpu_time();
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(20) {
        let health = tokio::time::timeout(Duration::from_secs(2), api.get("/healthz"))
            .await
            .expect("/healthz did not answer within 2 s");
        assert_eq!(health.status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cpu = sidecar.cpu_time() - cpu_before;
    let window = watched.elapsed();
    assert!(
        cpu.as_secs_f64() < 0.10 * window.as_secs_f64(),
        "{cpu:?} of CPU in {window:?}"
    );
    // No request can be built for them: none is sent, and the sources say
    // why.
    assert_eq!(fx.responder.counts().ocsp(), ocsp_before);
    let sources = api.get("/v1/revocation").await;
    assert!(
        sources.text.contains("no certificate known"),
        "{}",
        sources.text
    );

    let stopping = Instant::now();
    let status = sidecar.stop();
    assert!(status.success(), "{status:?}: {}", sidecar.log_text());
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
}

/// `VIGIL_FETCH_DENY` reaches the engine: a verification whose sources sit
/// on a denied address sends them nothing, and `/v1/revocation` says why.
/// A bad CIDR there is a usage error (exit 2) before anything starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_deny_from_the_environment_keeps_fetches_off_denied_addresses() {
    let fx = Fixture::start().await;
    let leaf = fx.leaf("denied");
    let sidecar = serve_support::Sidecar::start(
        &fx.data_dir(),
        &fx.anchor(),
        &[],
        &[("VIGIL_FETCH_DENY", "127.0.0.0/8,::1")],
    );
    let api = Api::new(&sidecar, None);
    let verified = api
        .post("/v1/verify", &json!({ "chain": fx.chain(&leaf) }))
        .await;
    assert_eq!(
        verified.body["reason"], "revocation_data_missing",
        "{}",
        verified.text
    );
    let counts = fx.responder.counts();
    assert_eq!((counts.crl, counts.ocsp()), (0, 0));
    let sources = api.get("/v1/revocation").await;
    assert!(sources.text.contains("address_denied"), "{}", sources.text);
    drop(sidecar);

    let out = std::process::Command::new(serve_support::vigil())
        .args(["serve", "--listen", "127.0.0.1:0", "--anchor"])
        .arg(fx.anchor())
        .env("VIGIL_FETCH_ALLOW", "169.254.0.0/16,10.0.0.1/8")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("10.0.0.1/8"));
}
