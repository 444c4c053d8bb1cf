//! The API's trust boundary, in process over a real 127.0.0.1 listener
//! (issue 11): a page in the operator's browser can neither deny nor
//! register (415 for the media types a browser sends cross-site), a
//! DNS-rebound `Host` is refused (421), every `/v1` read needs the token,
//! caps answer 429, deny rules by issuer DN match whatever the spacing, and
//! stored records that cannot be read make `/readyz` fail.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use pki_fixtures::{Pki, PkiOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vigil_core::CertificateDer;
use vigil_runtime::{Engine, EngineConfig, MemoryStore, Store, StoreError, SystemClock, Table};
use vigil_sidecar::{app, Sidecar, SidecarConfig};

const TOKEN: &str = "boundary-token-0123";

/// A served app over an engine trusting the fixture root (CRLs loaded, so
/// verification is offline).
struct Served {
    base: String,
    addr: std::net::SocketAddr,
    sidecar: Sidecar,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    pki: Pki,
}

impl Served {
    async fn start(config: SidecarConfig, store: Arc<dyn Store>) -> Self {
        let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
        let engine = Engine::open(
            vec![CertificateDer::from(pki.root.cert.der.clone())],
            Arc::clone(&store),
            EngineConfig::default(),
            Arc::new(SystemClock),
        )
        .unwrap();
        engine.add_crl(&pki.intermediate_crl.der).unwrap();
        engine.add_crl(&pki.root_crl.der).unwrap();
        let (router, sidecar) = app(engine, store, config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sidecar.is_restored() {
            assert!(Instant::now() < deadline, "restore did not finish");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            base: format!("http://{addr}"),
            addr,
            sidecar,
            server,
            pki,
        }
    }

    fn chain(&self) -> Value {
        json!([self.pki.client.pem, self.pki.intermediate.cert.pem])
    }

    /// Sends `method path` with these headers and body; (status, JSON body).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(b) = body {
            request = request.body(b);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            path,
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {TOKEN}")),
            ],
            Some(body.to_string()),
        )
        .await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(
            reqwest::Method::GET,
            path,
            &[("authorization", &format!("Bearer {TOKEN}"))],
            None,
        )
        .await
    }

    /// One raw HTTP/1.1 request; the status line and the rest.
    async fn raw(&self, request: String) -> String {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn stop(self) {
        self.sidecar.shutdown();
        self.server.abort();
        self.sidecar.close().await.unwrap();
    }
}

fn with_token() -> SidecarConfig {
    SidecarConfig::default().with_api_token(TOKEN.to_owned())
}

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_media_types_are_refused_and_create_no_rule() {
    // Without a token (the loopback default): the media type is the only
    // thing between a web page and the deny list.
    let served = Served::start(SidecarConfig::default(), memory()).await;
    let rule = json!({"cert_sha256": "ab".repeat(32), "reason": "csrf"}).to_string();
    for media in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = media.map(|m| ("content-type", m)).into_iter().collect();
        for (method, path) in [
            (reqwest::Method::POST, "/v1/deny"),
            (reqwest::Method::DELETE, "/v1/deny"),
            (reqwest::Method::POST, "/v1/connections"),
            (reqwest::Method::POST, "/v1/verify"),
            (reqwest::Method::POST, "/v1/revocation/refresh"),
        ] {
            let (status, body) = served
                .send(method.clone(), path, &headers, Some(rule.clone()))
                .await;
            assert_eq!(status, 415, "{method} {path} as {media:?}: {body}");
            assert_eq!(body["error"], "unsupported_media_type");
        }
        // A bodiless POST without a type (fetch() sends those cross-site).
        let (status, _) = served
            .send(
                reqwest::Method::POST,
                "/v1/revocation/refresh",
                &headers,
                None,
            )
            .await;
        assert_eq!(status, 415, "bodiless refresh as {media:?}");
    }
    let (status, list) = served.get("/v1/deny").await;
    assert_eq!(status, 200);
    assert_eq!(
        list["rules"],
        json!([]),
        "a cross-site request created a rule"
    );
    // JSON with parameters, and a bodiless refresh that says JSON, pass.
    let (status, _) = served
        .send(
            reqwest::Method::POST,
            "/v1/deny",
            &[("content-type", "Application/JSON; charset=utf-8")],
            Some(rule),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = served
        .send(
            reqwest::Method::POST,
            "/v1/revocation/refresh",
            &[("content-type", "application/json")],
            None,
        )
        .await;
    assert_eq!(status, 200);
    // No CORS is ever granted: a preflight gets no Access-Control-* header.
    let preflight = served
        .raw(
            "OPTIONS /v1/deny HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\n\
             Access-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n"
                .into(),
        )
        .await;
    assert!(!preflight.starts_with("HTTP/1.1 2"), "{preflight}");
    assert!(
        !preflight.to_ascii_lowercase().contains("access-control-"),
        "{preflight}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_loopback_gets_421_on_a_loopback_bind() {
    let served = Served::start(SidecarConfig::default(), memory()).await;
    let request = |host: &str, path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    for host in [
        "attacker.example",
        "attacker.example:8787",
        "127.0.0.1.attacker.example",
        "localhost.attacker.example",
        "10.0.0.1",
        "[::2]:80",
        "",
    ] {
        for path in ["/healthz", "/v1/deny", "/openapi.json", "/nowhere"] {
            let reply = served.raw(request(host, path)).await;
            assert!(reply.starts_with("HTTP/1.1 421"), "{host} {path}: {reply}");
            assert!(reply.contains("misdirected_request"), "{reply}");
        }
    }
    // No Host at all (HTTP/1.0).
    let reply = served.raw("GET /healthz HTTP/1.0\r\n\r\n".into()).await;
    assert!(
        reply.starts_with("HTTP/1.0 421") || reply.starts_with("HTTP/1.1 421"),
        "{reply}"
    );
    for host in [
        "localhost",
        "LOCALHOST:8787",
        "localhost.",
        "127.0.0.1",
        "127.8.9.10:1",
        "[::1]",
        "[::1]:8787",
    ] {
        let reply = served.raw(request(host, "/healthz")).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{host}: {reply}");
    }
    served.stop().await;

    // Bound beyond loopback, the name is whatever reaches the machine.
    let open = Served::start(
        SidecarConfig::default().with_loopback_hosts_only(false),
        memory(),
    )
    .await;
    let reply = open.raw(request("sidecar.internal:8787", "/healthz")).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    open.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_route_needs_the_token_and_metrics_when_asked() {
    let served = Served::start(with_token().with_metrics_auth(true), memory()).await;
    let json_type = [("content-type", "application/json")];
    for (method, path, body) in [
        (reqwest::Method::GET, "/v1/connections", None),
        (
            reqwest::Method::GET,
            "/v1/connections/0123456789abcdef0123456789abcdef",
            None,
        ),
        (reqwest::Method::GET, "/v1/events", None),
        (reqwest::Method::GET, "/v1/revocation", None),
        (reqwest::Method::GET, "/v1/deny", None),
        (
            reqwest::Method::POST,
            "/v1/verify",
            Some(json!({"chain": served.chain()})),
        ),
        (
            reqwest::Method::POST,
            "/v1/connections",
            Some(json!({"chain": served.chain()})),
        ),
        (
            reqwest::Method::POST,
            "/v1/revocation/refresh",
            Some(json!({})),
        ),
        (
            reqwest::Method::DELETE,
            "/v1/connections/0123456789abcdef0123456789abcdef",
            None,
        ),
        (reqwest::Method::GET, "/metrics", None),
    ] {
        let (status, reply) = served
            .send(
                method.clone(),
                path,
                &json_type,
                body.map(|b| b.to_string()),
            )
            .await;
        assert_eq!(status, 401, "{method} {path}: {reply}");
        assert_eq!(reply["error"], "missing_token");
    }
    for path in ["/healthz", "/openapi.json"] {
        assert_eq!(
            served.send(reqwest::Method::GET, path, &[], None).await.0,
            200,
            "{path}"
        );
    }
    let (status, _) = served
        .send(reqwest::Method::GET, "/readyz", &[], None)
        .await;
    assert_ne!(status, 401);
    assert_eq!(served.get("/v1/connections").await.0, 200);
    assert_eq!(served.get("/metrics").await.0, 200);
    let (_, doc) = served.get("/openapi.json").await;
    assert_eq!(
        doc["paths"]["/metrics"]["get"]["security"],
        json!([{"bearer": []}])
    );
    assert!(doc["paths"]["/v1/connections"]["get"]["responses"]["401"].is_object());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_on_registrations_and_deny_rules_answer_429() {
    let served = Served::start(
        with_token().with_max_connections(2).with_max_deny_rules(2),
        memory(),
    )
    .await;
    let register = json!({"chain": served.chain(), "usage": "client"});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = served.post_json("/v1/connections", &register).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = served.post_json("/v1/connections", &register).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_connections")),
        "{body}"
    );
    // Removing one makes room.
    let (status, _) = served
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/connections/{}", ids[0]),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(served.post_json("/v1/connections", &register).await.0, 201);

    for k in ["01", "02"] {
        let rule = json!({"spki_sha256": k.repeat(32), "reason": "cap"});
        assert_eq!(served.post_json("/v1/deny", &rule).await.0, 201);
    }
    let third = json!({"spki_sha256": "03".repeat(32), "reason": "cap"});
    let (status, body) = served.post_json("/v1/deny", &third).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_deny_rules")),
        "{body}"
    );
    // Replacing a rule that exists is not growth.
    let again = json!({"spki_sha256": "01".repeat(32), "reason": "changed"});
    let (status, body) = served.post_json("/v1/deny", &again).await;
    assert!(status == 200 || status == 201, "{status} {body}");
    assert_eq!(
        served.get("/v1/deny").await.1["rules"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_rule_by_issuer_dn_matches_whatever_the_spacing_and_case() {
    let served = Served::start(with_token(), memory()).await;
    let verify = json!({"chain": served.chain(), "usage": "client"});
    let (_, verdict) = served.post_json("/v1/verify", &verify).await;
    assert_eq!(verdict["verdict"], "accepted", "{verdict}");
    let issuer = verdict["chain"][0]["issuer"].as_str().unwrap().to_owned();
    let serial = verdict["chain"][0]["serial"].as_str().unwrap().to_owned();
    assert!(issuer.contains(", "), "{issuer}");
    // No spaces after the commas, upper case, the long type names.
    let respelled = issuer
        .replace(", ", ",")
        .replace("CN=", "commonName = ")
        .to_uppercase();
    let (status, rule) = served
        .post_json(
            "/v1/deny",
            &json!({"issuer_serial": {"issuer": respelled, "serial": serial}, "reason": "dn"}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let (_, verdict) = served.post_json("/v1/verify", &verify).await;
    assert_eq!(verdict["verdict"], "rejected", "{verdict}");
    assert_eq!(verdict["reason"], "denied", "{verdict}");
    // The rule shows the canonical name; lifting with the rendered one
    // (another spelling) lifts it.
    let shown = rule["issuer_serial"]["issuer"].as_str().unwrap();
    assert_eq!(shown.to_lowercase(), issuer.to_lowercase(), "{shown}");
    assert_ne!(shown, respelled);
    let (status, _) = served
        .send(
            reqwest::Method::DELETE,
            "/v1/deny",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {TOKEN}")),
            ],
            Some(json!({"issuer_serial": {"issuer": issuer, "serial": serial}}).to_string()),
        )
        .await;
    assert_eq!(status, 204);
    let (_, verdict) = served.post_json("/v1/verify", &verify).await;
    assert_eq!(verdict["verdict"], "accepted", "{verdict}");
    // A name that cannot be parsed is refused, not stored as a dead rule.
    for bad in ["", "just text", "CN=a,,O=b", "XX=a", "CN=a\\"] {
        let (status, body) = served
            .post_json(
                "/v1/deny",
                &json!({"issuer_serial": {"issuer": bad, "serial": "01"}, "reason": "r"}),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(served.get("/v1/deny").await.1["rules"], json!([]));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_records_that_cannot_be_read_make_readyz_fail() {
    for (table, key, what) in [
        (
            Table::Denials,
            b"{\"cert_sha256\":\"zz\"}".to_vec(),
            "deny rule",
        ),
        (Table::Connections, vec![7u8; 16], "connection"),
    ] {
        let store = memory();
        store.put_entry(table, &key, b"not json at all").unwrap();
        let served = Served::start(with_token(), Arc::clone(&store)).await;
        let (status, body) = served
            .send(reqwest::Method::GET, "/readyz", &[], None)
            .await;
        assert_eq!(status, 503, "{what}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("could not be loaded") && detail.contains(what),
            "{detail}"
        );
        // Kept on disk for the operator, not dropped.
        assert!(store.entries(table).unwrap().iter().any(|(k, _)| *k == key));
        served.stop().await;
    }
    // A rule stored in the old rendered form still loads (and is matched
    // by key): ready.
    let store = memory();
    let old = json!({"key": {"issuer_serial": {"issuer": "CN=Old  Form, O=Vigil", "serial": "01"}},
                     "reason": "r", "expires": null});
    let old_key = serde_json::to_vec(&old["key"]).unwrap();
    store
        .put_entry(Table::Denials, &old_key, old.to_string().as_bytes())
        .unwrap();
    let served = Served::start(with_token(), Arc::clone(&store)).await;
    let (status, body) = served
        .send(reqwest::Method::GET, "/readyz", &[], None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = served.get("/v1/deny").await;
    assert_eq!(
        list["rules"][0]["issuer_serial"]["issuer"],
        "CN=old form, O=vigil"
    );
    // Migrated under its normalised key.
    let keys: Vec<Vec<u8>> = store
        .entries(Table::Denials)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0], old_key);
    served.stop().await;
}

/// A store whose one revocation fact cannot be decoded (as a sled record
/// written by a broken disk would be).
struct CorruptFact(MemoryStore);

impl Store for CorruptFact {
    fn get(&self, url: &str) -> Result<Option<vigil_runtime::SourceRecord>, StoreError> {
        self.0.get(url)
    }
    fn put(
        &self,
        record: &vigil_runtime::SourceRecord,
    ) -> Result<vigil_runtime::PutOutcome, StoreError> {
        self.0.put(record)
    }
    fn put_status(
        &self,
        url: &str,
        status: &vigil_runtime::SourceStatus,
    ) -> Result<bool, StoreError> {
        self.0.put_status(url, status)
    }
    fn list(&self) -> Result<Vec<Result<vigil_runtime::SourceMeta, StoreError>>, StoreError> {
        self.0.list()
    }
    fn remove(&self, url: &str) -> Result<bool, StoreError> {
        self.0.remove(url)
    }
    fn put_revocation(
        &self,
        key: &vigil_runtime::RevocationKey,
        fact: &vigil_runtime::StoredFact,
    ) -> Result<(), StoreError> {
        self.0.put_revocation(key, fact)
    }
    #[allow(clippy::type_complexity)]
    fn revocations(
        &self,
    ) -> Result<
        Vec<Result<(vigil_runtime::RevocationKey, vigil_runtime::StoredFact), StoreError>>,
        StoreError,
    > {
        let mut facts = self.0.revocations()?;
        facts.push(Err(StoreError::Invalid {
            detail: "revocation fact: truncated record".into(),
        }));
        Ok(facts)
    }
    fn prune_revocations(&self, now: i64) -> Result<usize, StoreError> {
        self.0.prune_revocations(now)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.0.flush()
    }
    fn put_entry(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.0.put_entry(table, key, value)
    }
    fn delete_entry(&self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        self.0.delete_entry(table, key)
    }
    fn entries(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.0.entries(table)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_fact_that_cannot_be_read_makes_readyz_fail() {
    let served = Served::start(with_token(), Arc::new(CorruptFact(MemoryStore::new()))).await;
    let (status, body) = served
        .send(reqwest::Method::GET, "/readyz", &[], None)
        .await;
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("revocation fact"), "{detail}");
    served.stop().await;
}
