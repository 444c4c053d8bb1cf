//! `vigil proxy` as an outsider sees it: real processes and sockets on
//! 127.0.0.1, the fixture PKI with its CRL/OCSP responder, a plain backend.
//! A revoked, unverifiable, denied or no-longer-allowed client loses both
//! legs at once while the others go on; the allow rules, the PROXY v2 header, the admin
//! API, certificate reload, hostile bytes on the listener, client mode and
//! the drain at shutdown.

#![allow(clippy::unwrap_used)]

mod proxy_support;
mod serve_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pki_fixtures::responder::{Behaviour, ResponderOptions, Target};
use pki_fixtures::{Cert, CertSpec, LeafUsage, Reason};
use proxy_support::{client_config, connect, ping, wait_closed, Backend, Proxy, Seen};
use serde_json::json;
use serve_support::{next_event, subscribe, Api, Fixture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "proxy-admin-token-0123";

/// A client leaf under the fixture's intermediate, known to its responder,
/// with a DNS and a SPIFFE name.
fn client(fx: &Fixture, name: &str) -> Cert {
    let spec = CertSpec::leaf(name, &format!("{name}.vigil.test"), &fx.pki.options)
        .with_dns(&format!("{name}.vigil.test"))
        .with_uri(&format!("spiffe://vigil.test/ns/prod/sa/{name}"));
    let leaf = fx.pki.intermediate.issue_leaf(&spec).unwrap();
    fx.responder.register(&leaf).unwrap();
    leaf
}

/// A server leaf for `server.vigil.test`.
fn server_leaf(fx: &Fixture, name: &str) -> Cert {
    let spec = CertSpec::leaf(name, "server.vigil.test", &fx.pki.options)
        .with_usage(LeafUsage::Server)
        .with_dns("server.vigil.test");
    let leaf = fx.pki.intermediate.issue_leaf(&spec).unwrap();
    fx.responder.register(&leaf).unwrap();
    leaf
}

/// Writes `leaf`'s chain (with the intermediate) and key; their paths.
fn write_pair(fx: &Fixture, leaf: &Cert) -> (PathBuf, PathBuf) {
    let dir = fx.dir.path();
    let chain = dir.join(format!("{}.chain.pem", leaf.name));
    let key = dir.join(format!("{}.key.pem", leaf.name));
    std::fs::write(
        &chain,
        format!("{}{}", leaf.pem, fx.pki.intermediate.cert.pem),
    )
    .unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    (chain, key)
}

fn args(fx: &Fixture, backend: &Backend, extra: &[&str]) -> Vec<String> {
    let (chain, key) = write_pair(fx, &fx.pki.server);
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--target".into(),
        backend.addr.to_string(),
        "--cert".into(),
        chain.display().to_string(),
        "--key".into(),
        key.display().to_string(),
        "--anchor".into(),
        fx.anchor().display().to_string(),
        "--data-dir".into(),
        fx.data_dir().display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn log_path(fx: &Fixture, name: &str) -> PathBuf {
    fx.dir.path().join(format!("{name}.log"))
}

fn admin(proxy: &Proxy, token: Option<&str>) -> Api {
    Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: proxy.admin.clone().unwrap(),
        token: token.map(str::to_owned),
    }
}

fn token_file(dir: &Path) -> String {
    let path = dir.join("token");
    std::fs::write(&path, TOKEN).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_client_closes_both_of_its_legs_and_spares_the_others() {
    let fx = Fixture::start().await;
    let mut backend = Backend::start(false).await;
    let proxy = Proxy::start(
        &args(&fx, &backend, &["--admin", "127.0.0.1:0"]),
        1,
        &log_path(&fx, "proxy"),
    );
    let api = admin(&proxy, None);
    let (alice, bob) = (client(&fx, "alice"), client(&fx, "bob"));
    let root = &fx.pki.root.cert;
    let mut a = connect(
        proxy.addr(),
        &client_config(&alice, &fx.pki.intermediate.cert, root),
    )
    .await
    .unwrap();
    let mut b = connect(
        proxy.addr(),
        &client_config(&bob, &fx.pki.intermediate.cert, root),
    )
    .await
    .unwrap();

    // Both are listed, with the route's labels; the list is read-only.
    let list = api.get("/v1/connections").await;
    assert_eq!(list.body["total"], 2, "{}", list.text);
    let rows = list.body["connections"].as_array().unwrap();
    let alice_row = rows
        .iter()
        .find(|r| r["subject"].as_str().unwrap().contains("alice"))
        .unwrap();
    assert_eq!(alice_row["labels"]["target"], backend.addr.to_string());
    assert_eq!(alice_row["labels"]["listen"], proxy.addr().to_string());
    let alice_id = alice_row["id"].as_str().unwrap().to_owned();
    let refused = api
        .post(
            "/v1/connections",
            &json!({"chain": [alice.pem], "usage": "client"}),
        )
        .await;
    assert_eq!(refused.status, 405, "{}", refused.text);
    assert_eq!(refused.body["error"], "read_only");
    let refused = api
        .delete(&format!("/v1/connections/{alice_id}"), None)
        .await;
    assert_eq!(refused.status, 405, "{}", refused.text);

    let mut events = subscribe(&api, None).await;
    fx.responder.revoke(&alice, Reason::KeyCompromise).unwrap();
    api.refresh().await;

    // Alice: close_notify and FIN on the client leg, EOF on the backend's.
    let took = wait_closed(&mut a, Duration::from_secs(5)).await;
    assert!(took.is_some(), "alice's connection survived its revocation");
    assert!(
        backend.next_close(Duration::from_secs(5)).await.is_some(),
        "the backend leg of alice's connection stayed open"
    );
    let event = next_event(&mut events, "teardown", Duration::from_secs(5))
        .await
        .expect("a teardown event");
    assert_eq!(event.data["connection_id"], alice_id.as_str());
    assert_eq!(event.data["reason"], "revoked");
    assert_eq!(event.data["labels"]["target"], backend.addr.to_string());
    let gone = api.get(&format!("/v1/connections/{alice_id}")).await;
    assert_eq!(gone.body["state"], "torn_down", "{}", gone.text);

    // Bob goes on; alice cannot come back.
    ping(&mut b).await.unwrap();
    assert!(
        connect(
            proxy.addr(),
            &client_config(&alice, &fx.pki.intermediate.cert, root)
        )
        .await
        .is_err(),
        "a revoked client was let in again"
    );
    let log = proxy
        .wait_log("connection torn down", Duration::from_secs(5))
        .await;
    assert!(log.contains("reason=revoked"), "{log}");
    let metrics = api.get("/metrics").await.text;
    let listen = proxy.addr();
    for line in [
        format!("vigil_proxy_connections_total{{listen=\"{listen}\",outcome=\"spliced\"}} 2"),
        format!(
            "vigil_proxy_connections_total{{listen=\"{listen}\",outcome=\"handshake_failed\"}} 1"
        ),
        format!("vigil_proxy_closed_total{{listen=\"{listen}\",why=\"torn_down\"}} 1"),
        "vigil_proxy_open_connections 1".to_owned(),
    ] {
        assert!(metrics.contains(&line), "no {line} in:\n{metrics}");
    }
    // A client that ends its own connection is forgotten, not announced.
    b.shutdown().await.unwrap();
    assert!(backend.next_close(Duration::from_secs(5)).await.is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while api.get("/v1/connections").await.body["total"] != 0 {
        assert!(std::time::Instant::now() < deadline, "bob is still listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// CRLs the responder signs for this test are valid this long.
const LAPSE_SECS: u64 = 15;

/// The responder goes down and the revocation data lapses (RFC 5280
/// §6.3.3 (a)(2): a CRL past its nextUpdate is not current). Under the
/// default `--revocation require` the client can no longer be verified:
/// both legs are closed at the lapse, not before, with reason
/// `unverifiable`, and new clients are refused until the responder is
/// back. Under `prefer` the same lapse leaves the connection up and is
/// announced as `degraded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_revocation_data_closes_both_legs_under_require_and_degrades_under_prefer() {
    let fx = Fixture::start_with(ResponderOptions {
        crl_validity: time::Duration::seconds(LAPSE_SECS as i64),
        ..ResponderOptions::default()
    })
    .await;
    // OCSP answers are used for the clock skew (5 min) past their
    // nextUpdate; with the OCSP routes down from the start, statuses come
    // from the CRLs, which stop being current at their nextUpdate.
    fx.responder
        .set_behaviour(Target::Ocsp, Behaviour::Down)
        .unwrap();
    for ca in ["root", "intermediate"] {
        fx.responder.publish(ca).unwrap();
    }
    let published = std::time::Instant::now();
    let mut strict_backend = Backend::start(false).await;
    let mut soft_backend = Backend::start(false).await;
    let strict = Proxy::start(
        &args(&fx, &strict_backend, &["--admin", "127.0.0.1:0"]),
        1,
        &log_path(&fx, "strict"),
    );
    let mut soft_args = args(
        &fx,
        &soft_backend,
        &["--admin", "127.0.0.1:0", "--revocation", "prefer"],
    );
    let at = soft_args.iter().position(|a| a == "--data-dir").unwrap();
    soft_args[at + 1] = fx.dir.path().join("soft-data").display().to_string();
    let soft = Proxy::start(&soft_args, 1, &log_path(&fx, "soft"));
    let (strict_api, soft_api) = (admin(&strict, None), admin(&soft, None));
    let (alice, bob, carol) = (
        client(&fx, "alice"),
        client(&fx, "bob"),
        client(&fx, "carol"),
    );
    let (inter, root) = (&fx.pki.intermediate.cert, &fx.pki.root.cert);
    let mut a = connect(strict.addr(), &client_config(&alice, inter, root))
        .await
        .unwrap();
    let mut b = connect(soft.addr(), &client_config(&bob, inter, root))
        .await
        .unwrap();
    let mut strict_events = subscribe(&strict_api, None).await;
    let mut soft_events = subscribe(&soft_api, None).await;
    fx.responder
        .set_behaviour(Target::All, Behaviour::Down)
        .unwrap();

    let within = Duration::from_secs(LAPSE_SECS + 30);
    let event = next_event(&mut strict_events, "teardown", within)
        .await
        .expect("no teardown once alice's revocation data lapsed");
    let lapsed_after = published.elapsed();
    assert_eq!(event.data["reason"], "unverifiable", "{:?}", event.data);
    assert!(
        event.data["subject"].as_str().unwrap().contains("alice"),
        "{:?}",
        event.data
    );
    // thisUpdate and nextUpdate are whole seconds: the lapse may come up
    // to one second before LAPSE_SECS have passed on this clock.
    assert!(
        lapsed_after >= Duration::from_secs(LAPSE_SECS - 1),
        "torn down {lapsed_after:?} after publication, before the CRL lapsed"
    );
    assert!(
        wait_closed(&mut a, Duration::from_secs(5)).await.is_some(),
        "alice's connection survived the lapse"
    );
    assert!(
        strict_backend
            .next_close(Duration::from_secs(5))
            .await
            .is_some(),
        "the backend leg of alice's connection stayed open"
    );
    let log = strict
        .wait_log("connection torn down", Duration::from_secs(5))
        .await;
    assert!(log.contains("reason=unverifiable"), "{log}");
    // Fail closed: nobody new gets in on data that cannot be had.
    assert!(
        connect(strict.addr(), &client_config(&carol, inter, root))
            .await
            .is_err(),
        "a client was admitted with its revocation data unobtainable"
    );

    // Under prefer, the same lapse is announced and the connection goes on.
    let degraded = next_event(&mut soft_events, "degraded", Duration::from_secs(30))
        .await
        .expect("no degraded event for bob under prefer");
    assert!(
        degraded.data["subject"].as_str().unwrap().contains("bob"),
        "{:?}",
        degraded.data
    );
    ping(&mut b).await.unwrap();
    assert!(
        soft_backend
            .next_close(Duration::from_millis(200))
            .await
            .is_none(),
        "bob's backend leg was closed under prefer"
    );
    assert_eq!(soft_api.get("/v1/connections").await.body["total"], 1);

    // The responder comes back with new CRLs: carol gets in again.
    fx.responder
        .set_behaviour(Target::Crl, Behaviour::Normal)
        .unwrap();
    for ca in ["root", "intermediate"] {
        fx.responder.publish(ca).unwrap();
    }
    strict_api.refresh().await;
    let mut c = connect(strict.addr(), &client_config(&carol, inter, root))
        .await
        .unwrap();
    ping(&mut c).await.unwrap();
}

/// SIGHUP reads the anchor files again. A file that does not load changes
/// nothing; with one root taken out, the connections whose chain ends there
/// lose both legs (reason `untrusted`) and are refused from then on, while
/// those under the remaining root go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_anchors_and_closes_the_connections_under_a_removed_one() {
    let fx = Fixture::start().await;
    let mut backend = Backend::start(false).await;
    let (root, other_root) = (&fx.pki.root.cert, &fx.pki.other_root.cert);
    let anchors = fx.dir.path().join("anchors.pem");
    std::fs::write(&anchors, format!("{}{}", root.pem, other_root.pem)).unwrap();
    let mut list = args(&fx, &backend, &["--admin", "127.0.0.1:0"]);
    let at = list.iter().position(|a| a == "--anchor").unwrap();
    list[at + 1] = anchors.display().to_string();
    let proxy = Proxy::start(&list, 1, &log_path(&fx, "proxy"));
    let api = admin(&proxy, None);
    let alice = client(&fx, "alice");
    let alice_config = client_config(&alice, &fx.pki.intermediate.cert, root);
    let mut a = connect(proxy.addr(), &alice_config).await.unwrap();
    let other = &fx.pki.other_client;
    let mut o = connect(
        proxy.addr(),
        &client_config(other, &fx.pki.other_intermediate.cert, root),
    )
    .await
    .unwrap();
    let list = api.get("/v1/connections").await;
    let alice_id = list.body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["subject"].as_str().unwrap().contains("alice"))
        .unwrap()["id"]
        .clone();
    let mut events = subscribe(&api, None).await;

    std::fs::write(&anchors, "not a certificate\n").unwrap();
    proxy.signal("HUP");
    proxy
        .wait_log("trust anchors not reloaded", Duration::from_secs(10))
        .await;
    ping(&mut a).await.unwrap();
    ping(&mut o).await.unwrap();

    std::fs::write(&anchors, &other_root.pem).unwrap();
    proxy.signal("HUP");
    let event = next_event(&mut events, "teardown", Duration::from_secs(10))
        .await
        .expect("no teardown after the anchor was removed");
    assert_eq!(event.data["reason"], "untrusted", "{:?}", event.data);
    // The event names the certificate that is no longer trusted: the root.
    assert_eq!(event.data["connection_id"], alice_id, "{:?}", event.data);
    assert_eq!(event.data["serial"], fx.pki.root.cert.serial_hex().as_str());
    assert!(
        wait_closed(&mut a, Duration::from_secs(5)).await.is_some(),
        "alice's connection survived the removal of its anchor"
    );
    assert!(
        backend.next_close(Duration::from_secs(5)).await.is_some(),
        "the backend leg of alice's connection stayed open"
    );
    ping(&mut o).await.unwrap();
    assert!(
        connect(proxy.addr(), &alice_config).await.is_err(),
        "a client under a removed anchor was let in"
    );
    let log = proxy
        .wait_log("trust anchors reloaded", Duration::from_secs(5))
        .await;
    assert!(log.contains("removed=1"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_on_the_admin_api_needs_the_token_and_closes_the_connection() {
    let fx = Fixture::start().await;
    let mut backend = Backend::start(false).await;
    let token = token_file(fx.dir.path());
    let proxy = Proxy::start(
        &args(
            &fx,
            &backend,
            &["--admin", "127.0.0.1:0", "--api-token-file", &token],
        ),
        1,
        &log_path(&fx, "proxy"),
    );
    let carol = client(&fx, "carol");
    let mut c = connect(
        proxy.addr(),
        &client_config(&carol, &fx.pki.intermediate.cert, &fx.pki.root.cert),
    )
    .await
    .unwrap();
    let sha = vigil_core_sha(&carol.der);
    let anonymous = admin(&proxy, None);
    assert_eq!(anonymous.get("/v1/connections").await.status, 401);
    let denied = anonymous
        .post("/v1/deny", &json!({"cert_sha256": sha, "reason": "test"}))
        .await;
    assert_eq!(denied.status, 401, "{}", denied.text);
    ping(&mut c).await.unwrap();
    assert_eq!(anonymous.get("/healthz").await.status, 200);

    let api = admin(&proxy, Some(TOKEN));
    let denied = api
        .post(
            "/v1/deny",
            &json!({"cert_sha256": sha, "reason": "stolen laptop"}),
        )
        .await;
    assert_eq!(denied.status, 201, "{}", denied.text);
    assert!(wait_closed(&mut c, Duration::from_secs(5)).await.is_some());
    assert!(backend.next_close(Duration::from_secs(5)).await.is_some());
    let log = proxy
        .wait_log("reason=denied", Duration::from_secs(5))
        .await;
    assert!(log.contains("connection torn down"), "{log}");
}

fn vigil_core_sha(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_rules_let_only_matching_spiffe_ids_through_and_reload_on_sighup() {
    let fx = Fixture::start().await;
    let backend = Backend::start(false).await;
    let (chain, key) = write_pair(&fx, &fx.pki.server);
    let config = fx.dir.path().join("proxy.toml");
    let write_config = |rule: &str| {
        let text = format!(
            "anchor = \"{}\"\ndata-dir = \"{}\"\n\n[[proxy]]\nlisten = \"127.0.0.1:0\"\ntarget = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nallow-uri = [\"{rule}\"]\n",
            fx.anchor().display(),
            fx.data_dir().display(),
            backend.addr,
            chain.display(),
            key.display()
        );
        std::fs::write(&config, text).unwrap();
    };
    write_config("spiffe://vigil.test/ns/*/sa/dave");
    let proxy = Proxy::start(
        &["--config".to_string(), config.display().to_string()],
        1,
        &log_path(&fx, "proxy"),
    );
    let (dave, erin) = (client(&fx, "dave"), client(&fx, "erin"));
    let (inter, root) = (&fx.pki.intermediate.cert, &fx.pki.root.cert);
    let mut d = connect(proxy.addr(), &client_config(&dave, inter, root))
        .await
        .unwrap();
    assert!(
        connect(proxy.addr(), &client_config(&erin, inter, root))
            .await
            .is_err(),
        "erin's SPIFFE ID matches no rule"
    );
    let log = proxy
        .wait_log("matches no allow rule", Duration::from_secs(5))
        .await;
    assert!(log.contains("peer refused by the authorizer"), "{log}");
    assert!(log.contains("spiffe://vigil.test/ns/prod/sa/erin"), "{log}");

    // A listen address bound to port 0 cannot be matched on reload: the
    // route is matched by the address as configured.
    write_config("spiffe://vigil.test/ns/*/sa/erin");
    proxy.signal("HUP");
    proxy
        .wait_log("allow rules reloaded", Duration::from_secs(5))
        .await;
    // Dave no longer matches: his open connection is closed too.
    assert!(wait_closed(&mut d, Duration::from_secs(5)).await.is_some());
    let mut e = connect(proxy.addr(), &client_config(&erin, inter, root))
        .await
        .unwrap();
    ping(&mut e).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_learns_who_is_connected_from_a_proxy_v2_header() {
    let fx = Fixture::start().await;
    let mut backend = Backend::start(true).await;
    let proxy = Proxy::start(
        &args(&fx, &backend, &["--proxy-protocol", "v2"]),
        1,
        &log_path(&fx, "proxy"),
    );
    let frank = client(&fx, "frank");
    let tcp_local;
    let mut f = {
        let config = client_config(&frank, &fx.pki.intermediate.cert, &fx.pki.root.cert);
        let tls = connect(proxy.addr(), &config).await.unwrap();
        tcp_local = tls.get_ref().0.local_addr().unwrap();
        tls
    };
    let header = tokio::time::timeout(Duration::from_secs(5), backend.seen.recv())
        .await
        .unwrap()
        .unwrap();
    let Seen::Header { source, tlvs } = header else {
        panic!("no header: {header:?}");
    };
    assert_eq!(source, tcp_local, "the source is the client's address");
    let tlv = |kind: u8| {
        tlvs.iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.clone())
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, &frank.der);
    assert_eq!(tlv(0xE0).unwrap(), digest.as_ref());
    let subject = String::from_utf8(tlv(0xE1).unwrap()).unwrap();
    assert!(subject.contains("CN=frank.vigil.test"), "{subject}");
    let ssl = tlv(0x20).unwrap();
    assert_eq!(
        ssl[0] & 0x07,
        0x07,
        "client SSL, cert in connection and session"
    );
    assert_eq!(&ssl[1..5], &[0, 0, 0, 0], "verified");
    assert!(tlv(0x05).is_some_and(|id| !id.is_empty()));
    ping(&mut f).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_proxy_certificate_is_served_while_open_connections_stay_up() {
    let fx = Fixture::start().await;
    let backend = Backend::start(false).await;
    let proxy = Proxy::start(&args(&fx, &backend, &[]), 1, &log_path(&fx, "proxy"));
    let grace = client(&fx, "grace");
    let config = client_config(&grace, &fx.pki.intermediate.cert, &fx.pki.root.cert);
    let mut open = connect(proxy.addr(), &config).await.unwrap();
    let served = |tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    assert_eq!(served(&open), fx.pki.server.der);

    // Replaced on disk (as a renewal would), picked up without a signal.
    let renewed = server_leaf(&fx, "server");
    write_pair(&fx, &renewed);
    proxy
        .wait_log("certificate reloaded", Duration::from_secs(10))
        .await;
    // A new client configuration each time: a resumed session would show
    // the certificate of the session it resumes.
    let fresh_config = || client_config(&grace, &fx.pki.intermediate.cert, &fx.pki.root.cert);
    let fresh = connect(proxy.addr(), &fresh_config()).await.unwrap();
    assert_eq!(served(&fresh), renewed.der);
    ping(&mut open).await.unwrap();

    // A broken pair is refused and the one in use stays.
    let refusals = proxy.log_text().matches("certificate not reloaded").count();
    std::fs::write(fx.dir.path().join("server.key.pem"), "not a key").unwrap();
    proxy.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proxy.log_text().matches("certificate not reloaded").count() == refusals {
        assert!(std::time::Instant::now() < deadline, "{}", proxy.log_text());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let again = connect(proxy.addr(), &fresh_config()).await.unwrap();
    assert_eq!(served(&again), renewed.der);
    ping(&mut open).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_bytes_and_stalled_handshakes_are_dropped_and_the_proxy_goes_on() {
    let fx = Fixture::start().await;
    let backend = Backend::start(false).await;
    let proxy = Proxy::start(
        &args(&fx, &backend, &["--handshake-timeout", "1"]),
        1,
        &log_path(&fx, "proxy"),
    );
    let mut plain = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(wait_closed(&mut plain, Duration::from_secs(5))
        .await
        .is_some());
    proxy
        .wait_log("TLS handshake failed", Duration::from_secs(5))
        .await;

    let mut silent = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    let took = wait_closed(&mut silent, Duration::from_secs(10))
        .await
        .expect("a stalled handshake is dropped");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    proxy
        .wait_log("not completed in time", Duration::from_secs(5))
        .await;

    let heidi = client(&fx, "heidi");
    let mut h = connect(
        proxy.addr(),
        &client_config(&heidi, &fx.pki.intermediate.cert, &fx.pki.root.cert),
    )
    .await
    .unwrap();
    ping(&mut h).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_closes_the_local_connection_when_the_server_is_revoked() {
    let fx = Fixture::start().await;
    // A remote mTLS server (rustls, webpki client verification) that echoes.
    let server = server_leaf(&fx, "remote");
    let remote = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote_addr = remote.local_addr().unwrap();
    let (closed_tx, mut remote_closed) = tokio::sync::mpsc::unbounded_channel();
    {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(fx.pki.root.cert.der.clone()))
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![
                    CertificateDer::from(server.der.clone()),
                    CertificateDer::from(fx.pki.intermediate.cert.der.clone()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_pkcs8_der.clone())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = remote.accept().await {
                let acceptor = acceptor.clone();
                let closed_tx = closed_tx.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tls.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = closed_tx.send(());
                });
            }
        });
    }
    let agent = client(&fx, "agent");
    let (chain, key) = write_pair(&fx, &agent);
    let proxy = Proxy::start(
        &[
            "--client",
            "--listen",
            "127.0.0.1:0",
            "--target",
            &remote_addr.to_string(),
            "--name",
            "server.vigil.test",
            "--cert",
            &chain.display().to_string(),
            "--key",
            &key.display().to_string(),
            "--anchor",
            &fx.anchor().display().to_string(),
            "--data-dir",
            &fx.data_dir().display().to_string(),
            "--admin",
            "127.0.0.1:0",
        ]
        .map(str::to_owned),
        1,
        &log_path(&fx, "proxy"),
    );
    let mut local = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    ping(&mut local).await.unwrap();
    let api = admin(&proxy, None);
    let list = api.get("/v1/connections").await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
    assert_eq!(list.body["connections"][0]["usage"], "server");

    fx.responder.revoke(&server, Reason::KeyCompromise).unwrap();
    api.refresh().await;
    assert!(
        wait_closed(&mut local, Duration::from_secs(5))
            .await
            .is_some(),
        "the local connection to a revoked server stayed open"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(5), remote_closed.recv())
            .await
            .is_ok(),
        "the TLS leg to the revoked server stayed open"
    );
    // A new local connection is closed: the handshake refuses the server.
    let mut again = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    let _ = again.write_all(b"ping\n").await;
    assert!(wait_closed(&mut again, Duration::from_secs(5))
        .await
        .is_some());
    let log = proxy.log_text();
    assert!(
        log.contains("server certificate rejected")
            || log.contains("no longer trusted at tracking time"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_open_connections_then_closes_them_cleanly() {
    let fx = Fixture::start().await;
    let mut backend = Backend::start(false).await;
    let mut proxy = Proxy::start(&args(&fx, &backend, &[]), 1, &log_path(&fx, "proxy"));
    let ivan = client(&fx, "ivan");
    let config = client_config(&ivan, &fx.pki.intermediate.cert, &fx.pki.root.cert);
    let mut i = connect(proxy.addr(), &config).await.unwrap();
    let addr = proxy.addr();
    let stopping = tokio::task::spawn_blocking(move || {
        let status = proxy.stop();
        (status, proxy)
    });
    // Still served while draining; new connections are not accepted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ping(&mut i).await.unwrap();
    assert!(connect(addr, &config).await.is_err());
    // The client ends: the proxy stops at once, cleanly.
    i.shutdown().await.unwrap();
    let (status, proxy) = stopping.await.unwrap();
    assert!(status.success(), "{status:?}: {}", proxy.log_text());
    assert!(backend.next_close(Duration::from_secs(1)).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_staples_a_fresh_ocsp_answer_for_its_own_certificate() {
    let fx = Fixture::start().await;
    let backend = Backend::start(false).await;
    let proxy = Proxy::start(&args(&fx, &backend, &[]), 1, &log_path(&fx, "proxy"));
    let judy = client(&fx, "judy");
    let (chain, key) = write_pair(&fx, &judy);
    // openssl as the client: `-status` asks for the staple and prints it.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let text = loop {
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &proxy.addr().to_string(), "-status"])
            .arg("-cert")
            .arg(&chain)
            .arg("-key")
            .arg(&key)
            .arg("-CAfile")
            .arg(fx.anchor())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("OCSP Response Status: successful") {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "no staple: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(text.contains("Cert Status: good"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
}

/// Ten thousand idle mTLS connections through one proxy (fewer when this
/// process cannot hold two descriptors per connection): all stay up and
/// listed, and the proxy's memory per connection is reported and bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_stay_up_at_a_bounded_memory_cost() {
    // The clients and the backend legs live here: two descriptors each.
    let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, 65_536, 65_536);
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let n = 10_000.min((limit.saturating_sub(512) / 2) as usize);
    let fx = Fixture::start().await;
    let (target, accepted) = proxy_support::holding_backend().await;
    let (chain, key) = write_pair(&fx, &fx.pki.server);
    let proxy = Proxy::start(
        &[
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--target".to_owned(),
            target.to_string(),
            "--cert".to_owned(),
            chain.display().to_string(),
            "--key".to_owned(),
            key.display().to_string(),
            "--anchor".to_owned(),
            fx.anchor().display().to_string(),
            "--data-dir".to_owned(),
            fx.data_dir().display().to_string(),
            "--admin".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--log-level".to_owned(),
            "warn".to_owned(),
        ],
        1,
        &log_path(&fx, "proxy"),
    );
    let kate = client(&fx, "kate");
    let config = client_config(&kate, &fx.pki.intermediate.cert, &fx.pki.root.cert);
    // One verification first, so that the rest find the data held.
    let first = connect(proxy.addr(), &config).await.unwrap();
    let before = proxy.rss_kib();
    let started = std::time::Instant::now();
    let addr = proxy.addr();
    let mut streams = vec![first];
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = n.div_ceil(64);
    for t in 0..64 {
        let config = config.clone();
        let count = per_task.min((n - 1).saturating_sub(t * per_task));
        tasks.spawn(async move {
            let mut mine = Vec::with_capacity(count);
            for _ in 0..count {
                mine.push(connect(addr, &config).await.unwrap());
            }
            mine
        });
    }
    while let Some(mine) = tasks.join_next().await {
        streams.extend(mine.unwrap());
    }
    let took = started.elapsed();
    assert_eq!(streams.len(), n);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while accepted.load(std::sync::atomic::Ordering::Relaxed) < n {
        assert!(std::time::Instant::now() < deadline, "backend legs missing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = proxy.rss_kib();
    let per_connection = after.saturating_sub(before) as f64 / n as f64;
    eprintln!(
        "{n} idle connections: proxy RSS {before} KiB -> {after} KiB, {per_connection:.1} KiB per \
         connection; opened in {took:?}"
    );
    let api = admin(&proxy, None);
    let list = api.get("/v1/connections?limit=1").await;
    assert_eq!(list.body["total"], n, "{}", list.text);
    // Memory: the TLS state and tracking of an idle connection, no copy
    // buffers (they are freed while a leg is idle).
    assert!(
        per_connection < 48.0,
        "{per_connection:.1} KiB per idle connection"
    );
    // Still up, both ways: a sample still echoes.
    for s in streams.iter_mut().step_by(n / 50 + 1) {
        ping(s).await.unwrap();
    }
}

/// A TLS echo server with the fixture's server certificate (IP SAN
/// 127.0.0.1), no client authentication: a backend behind `--target-tls`.
async fn tls_backend(fx: &Fixture) -> std::net::SocketAddr {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![
            CertificateDer::from(fx.pki.server.der.clone()),
            CertificateDer::from(fx.pki.intermediate.cert.der.clone()),
        ],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            fx.pki.server.key_pkcs8_der.clone(),
        )),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Two `[[proxy]]` tables in one process, one with TLS to its target; SIGHUP
/// re-reads that route's target-ca; one deny closes the client everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_serves_several_routes_from_the_config_file_one_with_tls_to_its_target() {
    let fx = Fixture::start().await;
    let plain = Backend::start(false).await;
    let tls_target = tls_backend(&fx).await;
    let (chain, key) = write_pair(&fx, &fx.pki.server);
    let target_ca = fx.dir.path().join("target-ca.pem");
    std::fs::write(&target_ca, &fx.pki.root.cert.pem).unwrap();
    let config = fx.dir.path().join("routes.toml");
    let route = |target: String, extra: &str| {
        format!(
            "[[proxy]]\nlisten = \"127.0.0.1:0\"\ntarget = \"{target}\"\ncert = \"{}\"\nkey = \"{}\"\n{extra}\n",
            chain.display(),
            key.display()
        )
    };
    std::fs::write(
        &config,
        format!(
            "anchor = \"{}\"\ndata-dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n{}\n{}",
            fx.anchor().display(),
            fx.data_dir().display(),
            route(plain.addr.to_string(), ""),
            route(
                tls_target.to_string(),
                &format!("target-tls = true\ntarget-ca = \"{}\"", target_ca.display())
            ),
        ),
    )
    .unwrap();
    let proxy = Proxy::start_expecting(
        &["--config".to_owned(), config.display().to_string()],
        2,
        true,
        &log_path(&fx, "proxy"),
    );
    let leo = client(&fx, "leo");
    let tls = client_config(&leo, &fx.pki.intermediate.cert, &fx.pki.root.cert);
    let mut one = connect(proxy.listens[0], &tls).await.unwrap();
    let mut two = connect(proxy.listens[1], &tls).await.unwrap();
    ping(&mut one).await.unwrap();
    ping(&mut two).await.unwrap();
    let list = admin(&proxy, None).get("/v1/connections").await;
    assert_eq!(list.body["total"], 2, "{}", list.text);
    // SIGHUP re-reads target-ca: with the target's root gone from it, new
    // connections on that route fail at the target's TLS; the open one and
    // the plain route go on.
    std::fs::write(&target_ca, &fx.pki.other_root.cert.pem).unwrap();
    proxy.signal("HUP");
    proxy
        .wait_log("target anchors reloaded", Duration::from_secs(10))
        .await;
    assert!(
        connect(proxy.listens[1], &tls).await.is_err(),
        "a target outside the reloaded target-ca was reached"
    );
    proxy
        .wait_log("TLS to the target failed", Duration::from_secs(5))
        .await;
    ping(&mut two).await.unwrap();
    let mut three = connect(proxy.listens[0], &tls).await.unwrap();
    ping(&mut three).await.unwrap();
    ping(&mut one).await.unwrap();
    // One deny closes the client's connections on every route.
    let sha = vigil_core_sha(&leo.der);
    let denied = admin(&proxy, None)
        .post("/v1/deny", &json!({"cert_sha256": sha, "reason": "test"}))
        .await;
    assert_eq!(denied.status, 201, "{}", denied.text);
    assert!(wait_closed(&mut one, Duration::from_secs(5))
        .await
        .is_some());
    assert!(wait_closed(&mut two, Duration::from_secs(5))
        .await
        .is_some());
    assert!(wait_closed(&mut three, Duration::from_secs(5))
        .await
        .is_some());
}

#[test]
fn unusable_proxy_settings_exit_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let root = write("root.pem", &pki.root.cert.pem);
    let cert = write("server.pem", &pki.server.pem);
    let key = write("server.key", &pki.server.key_pem);
    let other_key = write("client.key", &pki.client.key_pem);
    let file = write("bad.toml", "listen = \"127.0.0.1:1\"\n");
    let data = dir.path().join("data").display().to_string();
    let base = |listen: &str, key: &str| {
        vec![
            "proxy".to_owned(),
            "--listen".to_owned(),
            listen.to_owned(),
            "--target".to_owned(),
            "127.0.0.1:9".to_owned(),
            "--cert".to_owned(),
            cert.clone(),
            "--key".to_owned(),
            key.to_owned(),
            "--anchor".to_owned(),
            root.clone(),
            "--data-dir".to_owned(),
            data.clone(),
        ]
    };
    let with = |mut args: Vec<String>, extra: &[&str]| {
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["proxy".to_owned(), "--anchor".to_owned(), root.clone()],
            "nothing to proxy",
        ),
        (base("127.0.0.1:0", &other_key), "key"),
        (base("not-an-address", &key), "listen"),
        (with(base("0.0.0.0:0", &key), &["--client"]), "loopback"),
        (
            with(
                base("127.0.0.1:0", &key),
                &["--allow-uri", "spiffe://x/a*b"],
            ),
            "allow-uri",
        ),
        (
            with(base("127.0.0.1:0", &key), &["--allow-spki-sha256", "abc"]),
            "allow-spki-sha256",
        ),
        (
            with(base("127.0.0.1:0", &key), &["--proxy-protocol", "v1"]),
            "proxy-protocol",
        ),
        (
            with(base("127.0.0.1:0", &key), &["--admin", "0.0.0.0:0"]),
            "admin: 0.0.0.0:0 is not a loopback address, and no API token is set",
        ),
        (
            with(base("127.0.0.1:0", &key), &["--admin", "localhost"]),
            "admin: 'localhost' is not an address",
        ),
        (
            with(base("127.0.0.1:0", &key), &["--refresh-interval", "0"]),
            "refresh-interval (flag or environment): 0 is outside 1..=86400",
        ),
        (
            with(base("127.0.0.1:0", &key), &["--clock-skew", "3601"]),
            "clock-skew (flag or environment): 3601 is outside 0..=3600",
        ),
        (
            vec![
                "proxy".to_owned(),
                "--config".to_owned(),
                file.clone(),
                "--anchor".to_owned(),
                root.clone(),
            ],
            "admin",
        ),
    ];
    for (args, says) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("vigil: error:"), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should mention {says}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_the_connection_cap_holds() {
    let fx = Fixture::start().await;
    let mut backend = Backend::start(false).await;
    let proxy = Proxy::start(
        &args(
            &fx,
            &backend,
            &[
                "--idle-timeout",
                "1",
                "--max-connections",
                "2",
                "--admin",
                "127.0.0.1:0",
            ],
        ),
        1,
        &log_path(&fx, "proxy"),
    );
    let mike = client(&fx, "mike");
    let config = client_config(&mike, &fx.pki.intermediate.cert, &fx.pki.root.cert);
    let mut quiet = connect(proxy.addr(), &config).await.unwrap();
    let mut busy = connect(proxy.addr(), &config).await.unwrap();
    // A third is closed at accept: the cap counts every open connection.
    let mut third = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(wait_closed(&mut third, Duration::from_secs(5))
        .await
        .is_some());
    // The busy one talks every 300 ms and stays; the quiet one goes after
    // 1 s without a byte, both legs.
    let started = std::time::Instant::now();
    let mut quiet_closed = None;
    while started.elapsed() < Duration::from_millis(2500) {
        ping(&mut busy).await.unwrap();
        if quiet_closed.is_none() {
            let mut byte = [0u8; 1];
            if let Ok(r) =
                tokio::time::timeout(Duration::from_millis(300), quiet.read(&mut byte)).await
            {
                assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
                quiet_closed = Some(started.elapsed());
            }
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let took = quiet_closed.expect("the idle connection was closed");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(backend.next_close(Duration::from_secs(2)).await.is_some());
    proxy.wait_log("idle timeout", Duration::from_secs(2)).await;
    let metrics = admin(&proxy, None).get("/metrics").await.text;
    assert!(
        metrics.contains("vigil_proxy_refused_at_limit_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("why=\"idle\"} 1"), "{metrics}");
}

/// Under an open-file limit too low for the default cap, the cap is fitted
/// to it and connections beyond are refused at accept (no EMFILE); a cap the
/// operator set is kept, with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_cap_fits_the_open_file_limit() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("prlimit (util-linux) is needed");
    }
    let fx = Fixture::start().await;
    let backend = Backend::start(false).await;
    // 400 descriptors: (400 - 256) / 2 = 72 connections.
    let wrapper = ["prlimit", "--nofile=400:400", "--"];
    let proxy = Proxy::start_under(
        &wrapper,
        &args(&fx, &backend, &[]),
        1,
        false,
        &log_path(&fx, "fitted"),
    );
    let log = proxy
        .wait_log("max-connections fitted", Duration::from_secs(5))
        .await;
    assert!(log.contains("max_connections=72"), "{log}");
    let mut held = Vec::new();
    for _ in 0..72 {
        held.push(tokio::net::TcpStream::connect(proxy.addr()).await.unwrap());
    }
    let mut over = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(
        wait_closed(&mut over, Duration::from_secs(3))
            .await
            .is_some(),
        "the 73rd connection is refused at accept"
    );
    proxy
        .wait_log(
            "the proxy holds its most connections",
            Duration::from_secs(2),
        )
        .await;
    // The held ones are still open (the handshake timeout is 10 s).
    let mut byte = [0u8; 1];
    let still = tokio::time::timeout(Duration::from_millis(300), held[0].read(&mut byte)).await;
    assert!(still.is_err(), "{still:?}");
    drop(proxy);

    let proxy = Proxy::start_under(
        &wrapper,
        &args(&fx, &backend, &["--max-connections", "5000"]),
        1,
        false,
        &log_path(&fx, "set"),
    );
    let log = proxy
        .wait_log("lower --max-connections", Duration::from_secs(5))
        .await;
    assert!(!log.contains("fitted"), "{log}");
}
