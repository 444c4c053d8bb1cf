//! Fleet mode end to end: real `nats-server` processes (JetStream on a
//! temporary directory, 127.0.0.1) and real `vigil serve --cluster` nodes.
//! Needs `nats-server` on the PATH (Debian package `nats-server`; CI
//! installs it).

#![allow(clippy::unwrap_used)]

mod fleet_support;
mod serve_support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet_support::{cluster_status, denied_keys, hex, nats_server, subject, verdict};
use serde_json::{json, Value};
use serve_support::{next_event, subscribe, subscribe_to, Api, Fixture, Sidecar};

/// A `nats-server -js` on 127.0.0.1, restartable on the same port and
/// store directory.
struct Nats {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    fn start() -> Self {
        let port = free_port();
        let mut nats = Self {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        nats.restart();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(nats_server())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on the PATH (apt-get install nats-server)");
        self.child = Some(child);
        wait_for_port(self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A node of the fleet over `fx`'s anchor with its own data directory.
fn node(fx: &Fixture, nats: &Nats, name: &str, extra: &[&str]) -> Sidecar {
    let mut args = vec!["--cluster", nats_url(nats), "--node-id", name];
    args.extend_from_slice(extra);
    Sidecar::start(&data_dir(fx, name), &fx.anchor(), &args, &[])
}

fn nats_url(nats: &Nats) -> &'static str {
    Box::leak(nats.url().into_boxed_str())
}

fn data_dir(fx: &Fixture, name: &str) -> PathBuf {
    fx.dir.path().join(format!("node-{name}"))
}

fn deny_body(leaf: &pki_fixtures::Cert, reason: &str) -> Value {
    json!({"cert_sha256": hex(&leaf.der), "reason": reason})
}

/// Waits until `node` is ready; its log and /readyz on failure.
async fn ready(node: &Sidecar) -> Api {
    let api = Api::new(node, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = api.get("/readyz").await;
        if reply.status == 200 {
            return api;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {}\n{}",
            reply.text,
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it holds (10 s at most).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_on_one_node_tears_down_on_every_node_and_a_lift_anywhere_reaches_all() {
    let fx = Fixture::start().await;
    let nats = Nats::start();
    let nodes: Vec<Sidecar> = ["a", "b", "c"]
        .iter()
        .map(|n| node(&fx, &nats, n, &[]))
        .collect();
    let apis: Vec<Api> = nodes.iter().map(|n| Api::new(n, None)).collect();
    for api in &apis {
        api.wait_ready().await;
        let ready = api.get("/readyz").await;
        assert_eq!(
            ready.body["cluster"]["state"], "connected",
            "{}",
            ready.text
        );
    }
    let doomed = fx.leaf("doomed");
    let innocent = fx.leaf("innocent");
    let mut streams = Vec::new();
    for api in &apis {
        api.register(&fx.chain(&doomed), json!({}), None).await;
        api.register(&fx.chain(&innocent), json!({}), None).await;
        streams.push(subscribe(api, None).await);
    }
    let mut fleet = subscribe_to(&apis[0], "/v1/events?scope=fleet", None).await;
    let mut watch = Command::new(serve_support::vigil())
        .args([
            "watch",
            "--cluster",
            &nats.url(),
            "--format",
            "json",
            "--count",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `vigil watch` says when it is subscribed.
    {
        use std::io::BufRead;
        let stderr = watch.stderr.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stderr)
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("watching fleet vigil"), "{line}");
    }

    let reply = apis[0]
        .post(
            "/v1/deny",
            &json!({"cert_sha256": hex(&doomed.der), "reason": "key leaked", "by": "alice"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["set_by"], "alice");
    assert!(reply.body["set_at"].is_string(), "{}", reply.text);

    // Every node tears its registration of the doomed leaf down; the
    // innocent one stays.
    for (i, stream) in streams.iter_mut().enumerate() {
        let event = next_event(stream, "teardown", Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("node {i}: no teardown"));
        assert_eq!(event.data["reason"], "denied", "{:?}", event.data);
        assert_eq!(event.data["subject"], subject(&doomed));
        assert_eq!(event.data["node"], ["a", "b", "c"][i], "{:?}", event.data);
        assert!(
            next_event(stream, "teardown", Duration::from_millis(300))
                .await
                .is_none(),
            "node {i}: a second teardown (the innocent leaf?)"
        );
    }
    // The fleet stream of node a shows all three, each with its node.
    let mut nodes_seen = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut fleet, "teardown", Duration::from_secs(10))
            .await
            .expect("fleet teardown on /v1/events?scope=fleet");
        nodes_seen.push(event.data["node"].as_str().unwrap().to_owned());
    }
    nodes_seen.sort();
    assert_eq!(nodes_seen, ["a", "b", "c"]);
    // And so does `vigil watch`.
    let output = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success());
    let mut watched: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["event"], "teardown", "{l}");
            assert_eq!(v["reason"], "denied", "{l}");
            v["node"].as_str().unwrap().to_owned()
        })
        .collect();
    watched.sort();
    assert_eq!(watched, ["a", "b", "c"]);

    // New verifications are refused everywhere; the rule carries who set it.
    for api in &apis {
        assert_eq!(verdict(api, &fx.chain(&doomed)).await["reason"], "denied");
        let rules = api.get("/v1/deny").await.body["rules"].clone();
        assert_eq!(rules[0]["set_by"], "alice", "{rules}");
    }
    // Lifted on c: seen by a.
    let reply = apis[2]
        .delete("/v1/deny", Some(&json!({"cert_sha256": hex(&doomed.der)})))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    for api in &apis {
        eventually("the lift reaches every node", || async {
            denied_keys(api).await.is_empty()
        })
        .await;
        assert_eq!(
            verdict(api, &fx.chain(&doomed)).await["verdict"],
            "accepted"
        );
    }
    let metrics = apis[1].get("/metrics").await.text;
    assert!(metrics.contains("vigil_cluster_connected 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_catches_up_after_a_restart_and_enforces_without_nats() {
    let fx = Fixture::start().await;
    let mut nats = Nats::start();
    let a = node(&fx, &nats, "a", &[]);
    let mut b = node(&fx, &nats, "b", &[]);
    let (api_a, api_b) = (Api::new(&a, None), Api::new(&b, None));
    api_a.wait_ready().await;
    api_b.wait_ready().await;
    let doomed = fx.leaf("doomed");

    // b is down while a denies; b catches up before it reports ready.
    b.stop();
    let reply = api_a
        .post("/v1/deny", &deny_body(&doomed, "stolen laptop"))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let b = node(&fx, &nats, "b", &[]);
    let api_b = ready(&b).await;
    assert_eq!(denied_keys(&api_b).await, [hex(&doomed.der)]);
    drop(b);

    // NATS down: b starts anyway, ready on the rules its store kept, and
    // keeps verifying.
    nats.stop();
    let b = node(&fx, &nats, "b", &[]);
    let api_b = ready(&b).await;
    let ready = api_b.get("/readyz").await;
    assert_eq!(
        ready.body["cluster"]["state"], "disconnected",
        "{}",
        ready.text
    );
    assert_eq!(
        verdict(&api_b, &fx.chain(&doomed)).await["reason"],
        "denied"
    );
    let other = fx.leaf("other");
    assert_eq!(
        verdict(&api_b, &fx.chain(&other)).await["verdict"],
        "accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_made_during_a_partition_reaches_the_fleet_when_nats_is_back() {
    let fx = Fixture::start().await;
    let mut nats = Nats::start();
    let a = node(&fx, &nats, "a", &[]);
    let b = node(&fx, &nats, "b", &[]);
    let (api_a, api_b) = (Api::new(&a, None), Api::new(&b, None));
    api_a.wait_ready().await;
    api_b.wait_ready().await;
    let doomed = fx.leaf("doomed");
    let innocent = fx.leaf("innocent");
    api_a.register(&fx.chain(&doomed), json!({}), None).await;
    api_a.register(&fx.chain(&innocent), json!({}), None).await;
    let mut events_a = subscribe(&api_a, None).await;

    nats.stop();
    eventually("b sees NATS gone", || async {
        api_b.get("/readyz").await.body["cluster"]["state"] == "disconnected"
    })
    .await;
    // Verification never stops; a deny on b applies on b at once.
    assert_eq!(
        verdict(&api_a, &fx.chain(&innocent)).await["verdict"],
        "accepted"
    );
    let reply = api_b
        .post("/v1/deny", &deny_body(&doomed, "partitioned deny"))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        verdict(&api_b, &fx.chain(&doomed)).await["reason"],
        "denied"
    );
    assert!(
        next_event(&mut events_a, "teardown", Duration::from_millis(500))
            .await
            .is_none()
    );

    // NATS back: b writes what it holds, a takes it and tears down.
    nats.restart();
    let event = next_event(&mut events_a, "teardown", Duration::from_secs(20))
        .await
        .expect("the partitioned deny reaches a");
    assert_eq!(event.data["reason"], "denied");
    assert_eq!(event.data["subject"], subject(&doomed));
    assert!(
        next_event(&mut events_a, "teardown", Duration::from_millis(300))
            .await
            .is_none()
    );
    let ready = api_a.get("/readyz").await;
    assert_eq!(
        ready.body["cluster"]["state"], "connected",
        "{}",
        ready.text
    );
    assert!(ready.body["cluster"]["disconnects"].as_u64().unwrap() >= 1);
}

/// An Ed25519 key pair made by `openssl genpkey`: (private, public) PEM files.
fn ed25519_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    (key, public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_verify_key_unsigned_denies_and_lifts_from_the_bus_are_refused() {
    let fx = Fixture::start().await;
    let nats = Nats::start();
    let (key, public) = ed25519_pair(fx.dir.path(), "operator");
    let (key_s, public_s) = (key.display().to_string(), public.display().to_string());
    // a signs; b verifies; m writes unsigned records (anyone on the bus).
    let a = node(&fx, &nats, "a", &["--deny-signing-key", &key_s]);
    let b = node(&fx, &nats, "b", &["--deny-verify-key", &public_s]);
    let m = node(&fx, &nats, "m", &[]);
    let (api_a, api_b, api_m) = (Api::new(&a, None), Api::new(&b, None), Api::new(&m, None));
    for api in [&api_a, &api_b, &api_m] {
        api.wait_ready().await;
    }
    let doomed = fx.leaf("doomed");
    let framed = fx.leaf("framed");

    // A signed deny reaches b.
    assert_eq!(
        api_a
            .post("/v1/deny", &deny_body(&doomed, "leaked"))
            .await
            .status,
        201
    );
    eventually("the signed deny reaches b", || async {
        denied_keys(&api_b).await == [hex(&doomed.der)]
    })
    .await;
    // b cannot sign: it refuses to set a fleet rule it could not prove.
    let reply = api_b.post("/v1/deny", &deny_body(&framed, "no key")).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert_eq!(reply.body["error"], "deny_unsigned");

    // m (no keys) lifts the signed rule and frames another certificate.
    let reply = api_m
        .delete("/v1/deny", Some(&json!({"cert_sha256": hex(&doomed.der)})))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        api_m
            .post("/v1/deny", &deny_body(&framed, "forged"))
            .await
            .status,
        201
    );
    eventually("b refuses both records", || async {
        metric(&api_b, "vigil_cluster_deny_refused_total").await >= 2
    })
    .await;
    // The ban stays, the forgery never lands: on b and on a.
    for api in [&api_a, &api_b] {
        assert_eq!(denied_keys(api).await, [hex(&doomed.der)]);
        assert_eq!(verdict(api, &fx.chain(&doomed)).await["reason"], "denied");
        assert_eq!(
            verdict(api, &fx.chain(&framed)).await["verdict"],
            "accepted"
        );
    }
    // A bare KV delete of the rule, as anyone on the bus could send: refused.
    let refused = metric(&api_b, "vigil_cluster_deny_refused_total").await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let bucket = async_nats::jetstream::new(client)
        .get_key_value("vigil_deny")
        .await
        .unwrap();
    let kv_key = format!(
        "r.{}",
        vigil_core::text::hex(&vigil_core::sha256(
            format!(r#"{{"cert_sha256":"{}"}}"#, hex(&doomed.der)).as_bytes()
        ))
    );
    bucket.delete(&kv_key).await.unwrap();
    eventually("b refuses the bare delete", || async {
        metric(&api_b, "vigil_cluster_deny_refused_total").await > refused
    })
    .await;
    assert_eq!(denied_keys(&api_b).await, [hex(&doomed.der)]);
    // A node that joins now finds forgeries on top of the bucket: it takes
    // the newest record that passes, from the key's history.
    let d = node(&fx, &nats, "d", &["--deny-verify-key", &public_s]);
    let api_d = ready(&d).await;
    assert_eq!(denied_keys(&api_d).await, [hex(&doomed.der)]);
    assert_eq!(
        verdict(&api_d, &fx.chain(&framed)).await["verdict"],
        "accepted"
    );

    // A signed lift from a is honoured.
    let reply = api_a
        .delete("/v1/deny", Some(&json!({"cert_sha256": hex(&doomed.der)})))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    for api in [&api_b, &api_d] {
        eventually("the signed lift reaches b and d", || async {
            denied_keys(api).await.is_empty()
        })
        .await;
    }
}

async fn metric(api: &Api, name: &str) -> u64 {
    let text = api.get("/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Writes `[cluster]` settings to a config file in `dir`.
fn cluster_config(dir: &Path, body: &str) -> String {
    let path = dir.join(format!("cluster-{}.toml", free_port()));
    std::fs::write(&path, format!("[cluster]\n{body}\n")).unwrap();
    path.display().to_string()
}

/// Publishes `der` on the bus as the CRL of `url`, as anyone who can write
/// to NATS could: the description claims it is newer than anything held.
async fn publish_on_bus(nats: &Nats, url: &str, der: &[u8], claim: &str) {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let store = js.get_object_store("vigil_revocation").await.unwrap();
    let name = format!(
        "crl.{}",
        vigil_core::text::hex(&vigil_core::sha256(url.as_bytes()))
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let meta = json!({"kind": "crl", "key": url, "node": claim, "this_update": now + 3600,
        "etag": null, "last_modified": null, "fetched_at": now * 1000});
    let metadata = async_nats::jetstream::object_store::ObjectMetadata {
        name,
        description: Some(meta.to_string()),
        ..Default::default()
    };
    let mut reader: &[u8] = der;
    store.put(metadata, &mut reader).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_asks_the_ca_and_the_others_take_it_from_the_bus_checked() {
    use pki_fixtures::{CrlSpec, KeyAlg, Reason};
    let fx = Fixture::start().await;
    let nats = Nats::start();
    let config = cluster_config(fx.dir.path(), "fetch-lease-secs = 2");
    let nodes: Vec<Sidecar> = ["a", "b", "c"]
        .iter()
        .map(|n| node(&fx, &nats, n, &["--config", &config]))
        .collect();
    let mut apis = Vec::new();
    for n in &nodes {
        apis.push(ready(n).await);
    }
    let leaf = fx.leaf("leaf");
    let innocent = fx.leaf("innocent");

    // The first registration on a fetches what the chain needs from the
    // CA; b and c then take the same from the bus: the CA sees nothing more.
    let before = fx.responder.counts();
    apis[0].register(&fx.chain(&leaf), json!({}), None).await;
    apis[0]
        .register(&fx.chain(&innocent), json!({}), None)
        .await;
    let one = fx.responder.counts();
    let asked = |c: &pki_fixtures::responder::RequestCounts| c.crl + c.ocsp_get + c.ocsp_post;
    assert!(asked(&one) > asked(&before), "a asked the CA nothing?");
    let mut streams = Vec::new();
    for api in &apis[1..] {
        api.register(&fx.chain(&leaf), json!({}), None).await;
        api.register(&fx.chain(&innocent), json!({}), None).await;
        streams.push(subscribe(api, None).await);
    }
    assert_eq!(
        asked(&fx.responder.counts()),
        asked(&one),
        "b and c asked the CA although a had fetched in this window"
    );
    for api in &apis[1..] {
        assert!(
            cluster_status(api).await["revocation_taken"]
                .as_u64()
                .unwrap()
                >= 1
        );
    }

    // Revoked at the CA; only a refreshes (after the window): b and c
    // learn it from the bus and tear down at once.
    let original = fx.responder.current_crl("intermediate").unwrap();
    fx.responder.revoke(&leaf, Reason::KeyCompromise).unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let reply = apis[0].post("/v1/revocation/refresh", &json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    for stream in &mut streams {
        let event = next_event(stream, "teardown", Duration::from_secs(10))
            .await
            .expect("teardown from data taken off the bus");
        assert_eq!(event.data["reason"], "revoked", "{:?}", event.data);
        assert_eq!(event.data["subject"], subject(&leaf));
    }

    // A hostile bus: a forged CRL, a stale one and the older one (rollback)
    // are refused by every node, and what they hold stays.
    let url = fx.responder.crl_url("intermediate");
    let ca = &fx.pki.intermediate;
    let mut spec = CrlSpec::new(&fx.pki.options);
    spec.number = 99;
    let forged = ca.forged_crl(&spec, KeyAlg::EcdsaP256).unwrap();
    let mut stale = CrlSpec::new(&fx.pki.options);
    stale.this_update = fx.pki.options.now - time::Duration::days(10);
    stale.next_update = fx.pki.options.now - time::Duration::days(1);
    stale.number = 100;
    let stale = ca.crl(&stale).unwrap();
    let refused_before: Vec<u64> = {
        let mut v = Vec::new();
        for api in &apis {
            v.push(
                cluster_status(api).await["revocation_refused"]
                    .as_u64()
                    .unwrap(),
            );
        }
        v
    };
    for (k, (der, what)) in [
        (&forged.der, "forged"),
        (&stale.der, "stale"),
        (&original.der, "rolled back"),
    ]
    .into_iter()
    .enumerate()
    {
        publish_on_bus(&nats, &url, der, "mallory").await;
        for (i, api) in apis.iter().enumerate() {
            let wanted = refused_before[i] + k as u64 + 1;
            eventually(&format!("node {i} refuses the {what} CRL"), || async {
                cluster_status(api).await["revocation_refused"]
                    .as_u64()
                    .unwrap()
                    >= wanted
            })
            .await;
        }
        for (i, api) in apis.iter().enumerate() {
            let v = verdict(api, &fx.chain(&leaf)).await;
            assert_eq!(v["status"], "revoked", "node {i} after the {what} CRL: {v}");
            assert_eq!(
                verdict(api, &fx.chain(&innocent)).await["verdict"],
                "accepted"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_lease_holder_dies_another_node_fetches_within_the_lease() {
    use pki_fixtures::responder::{Behaviour, Target};
    use pki_fixtures::Reason;
    let fx = Fixture::start().await;
    let nats = Nats::start();
    let config = cluster_config(fx.dir.path(), "fetch-lease-secs = 2");
    let mut a = node(&fx, &nats, "a", &["--config", &config]);
    let b = node(&fx, &nats, "b", &["--config", &config]);
    let (api_a, api_b) = (ready(&a).await, ready(&b).await);
    let leaf = fx.leaf("leaf");
    api_a.register(&fx.chain(&leaf), json!({}), None).await;
    api_b.register(&fx.chain(&leaf), json!({}), None).await;
    let mut events_b = subscribe(&api_b, None).await;

    // a takes the lease and hangs on a slow CA; b waits on a's lease.
    fx.responder
        .set_behaviour(Target::All, Behaviour::Slow(Duration::from_secs(60)))
        .unwrap();
    fx.responder.revoke(&leaf, Reason::KeyCompromise).unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let leases_b = cluster_status(&api_b).await["fetch_leases"]
        .as_u64()
        .unwrap();
    let leases_a = cluster_status(&api_a).await["fetch_leases"]
        .as_u64()
        .unwrap();
    let sources = api_a.get("/v1/revocation").await.body["sources"]
        .as_array()
        .unwrap()
        .len() as u64;
    let stuck = {
        let url = a.url("/v1/revocation/refresh");
        tokio::spawn(async move {
            // a dies mid-request: the error is expected.
            let _ = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await;
        })
    };
    // Every source's lease, OCSP too (a's OCSP requests start 250 ms after
    // its CRL requests): one b took first would have b ask the slow CA.
    eventually("a holds every source's lease", || async {
        cluster_status(&api_a).await["fetch_leases"]
            .as_u64()
            .unwrap()
            >= leases_a + sources
    })
    .await;
    let waiting = {
        let api = api_b.clone();
        tokio::spawn(async move { api.post("/v1/revocation/refresh", &json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill9();
    stuck.abort();
    fx.responder
        .set_behaviour(Target::All, Behaviour::Normal)
        .unwrap();
    let killed = Instant::now();

    // b takes the lease over once it expires, asks the CA, tears down.
    let event = next_event(&mut events_b, "teardown", Duration::from_secs(15))
        .await
        .expect("b fetched once a's lease expired");
    assert_eq!(event.data["reason"], "revoked");
    assert!(
        killed.elapsed() < Duration::from_secs(2 + 8),
        "took {:?}",
        killed.elapsed()
    );
    assert!(
        cluster_status(&api_b).await["fetch_leases"]
            .as_u64()
            .unwrap()
            > leases_b
    );
    let reply = waiting.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn the_fleet_drill_revokes_and_denies_through_one_node_and_every_node_tears_down() {
    let output = Command::new(serve_support::vigil())
        .args([
            "drill",
            "--fleet",
            "3",
            "--connections",
            "12",
            "--seed",
            "7",
        ])
        .args(["--format", "json"])
        .env(
            "PATH",
            format!("{}:/usr/sbin", std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"], true);
    let rows = report["scenarios"].as_array().unwrap();
    // Per scenario: one row per node and a fleet row.
    for name in ["revoke-leaf", "revoke-intermediate", "expire", "deny"] {
        let nodes: Vec<&str> = rows
            .iter()
            .filter(|r| r["name"] == name)
            .map(|r| r["node"].as_str().unwrap())
            .collect();
        assert_eq!(nodes, ["node1", "node2", "node3", "fleet"], "{name}");
    }
    for row in rows {
        assert_eq!(row["survivors"], 0, "{row}");
        assert_eq!(row["collateral"], 0, "{row}");
        assert_eq!(row["torn_down"], row["revoked"], "{row}");
    }
}

/// N nodes verify the same chain at once: the CA sees one request per
/// source (the lease holder's), the others take its answer from the bus.
async fn ca_requests_when_nodes_start_together(n: usize) -> (u64, u64, u64, String) {
    let fx = Fixture::start().await;
    let nats = Nats::start();
    let nodes: Vec<Sidecar> = (0..n)
        .map(|i| node(&fx, &nats, &format!("n{i}"), &[]))
        .collect();
    let mut apis = Vec::new();
    for n in &nodes {
        apis.push(ready(n).await);
    }
    let leaf = fx.leaf("leaf");
    let before = fx.responder.counts();
    let runs: Vec<_> = apis
        .iter()
        .map(|api| {
            let (api, chain) = (api.clone(), fx.chain(&leaf));
            tokio::spawn(async move { verdict(&api, &chain).await })
        })
        .collect();
    for run in runs {
        assert_eq!(run.await.unwrap()["verdict"], "accepted");
    }
    let after = fx.responder.counts();
    let logs: String = nodes
        .iter()
        .flat_map(|n| {
            n.log_text()
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("lease") || l.contains("taken"))
                .map(|l| format!("{l}\n"))
                .collect::<Vec<_>>()
        })
        .collect();
    let sources = apis[0].get("/v1/revocation").await.body["sources"]
        .as_array()
        .unwrap()
        .len() as u64;
    (
        after.crl - before.crl,
        after.ocsp_get + after.ocsp_post - before.ocsp_get - before.ocsp_post,
        sources,
        logs,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_sees_one_request_per_source_for_three_and_five_nodes() {
    for n in [1, 3, 5] {
        let (crl, ocsp, sources, logs) = ca_requests_when_nodes_start_together(n).await;
        eprintln!("{n} nodes: {crl} CRL and {ocsp} OCSP requests for {sources} sources");
        assert!(sources >= 2, "{sources}");
        assert_eq!(
            crl + ocsp,
            sources,
            "{n} nodes: {crl} CRL + {ocsp} OCSP requests\n{logs}"
        );
    }
}
