//! `vigil serve`'s HTTP API over 127.0.0.1: verify, every kind of bad input
//! and its documented 4xx (the sidecar stays healthy), the bearer token,
//! `/openapi.json` (valid, every route in it answers as documented and its
//! bodies match the schemas), `/metrics`, settings precedence, and TLS for
//! the API.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use pki_fixtures::{CertSpec, LeafUsage};
use serde_json::{json, Value};
use serve_support::{subscribe, vigil, Api, Fixture, Sidecar};

const TOKEN: &str = "api-token-abcdef";

/// What is sent, and the status and error code expected.
type Case<'a> = (
    &'a str,
    reqwest::Method,
    &'a str,
    Option<String>,
    u16,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_answers_accepted_and_rejected_alike() {
    let fx = Fixture::start().await;
    let sidecar = fx.sidecar(&[]);
    let api = Api::new(&sidecar, None);
    let pki = &fx.pki;
    let good = api
        .post(
            "/v1/verify",
            &json!({"chain": fx.chain(&pki.client), "usage": "client"}),
        )
        .await;
    assert_eq!(good.status, 200, "{}", good.text);
    assert_eq!(good.body["verdict"], "accepted");
    assert_eq!(good.body["reason"], "ok");
    assert_eq!(good.body["chain"].as_array().unwrap().len(), 3);
    // base64 DER elements, and a PEM bundle in one element.
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let der = api
        .post(
            "/v1/verify",
            &json!({"chain": [b64(&pki.client.der), b64(&pki.intermediate.cert.der)]}),
        )
        .await;
    assert_eq!(der.body["verdict"], "accepted", "{}", der.text);
    let bundle = format!("{}{}", pki.client.pem, pki.intermediate.cert.pem);
    let bundled = api.post("/v1/verify", &json!({"chain": [bundle]})).await;
    assert_eq!(bundled.body["verdict"], "accepted", "{}", bundled.text);
    // Rejected verdicts are 200 too.
    let revoked = api
        .post(
            "/v1/verify",
            &json!({"chain": fx.chain(&pki.revoked_client)}),
        )
        .await;
    assert_eq!(revoked.status, 200);
    assert_eq!(revoked.body["verdict"], "rejected");
    assert_eq!(revoked.body["reason"], "revoked");
    let wrong_usage = api
        .post(
            "/v1/verify",
            &json!({"chain": fx.chain(&pki.client), "usage": "server"}),
        )
        .await;
    assert_eq!(wrong_usage.body["reason"], "wrong_usage");
    let untrusted = api
        .post(
            "/v1/verify",
            &json!({"chain": [pki.other_client.pem, pki.other_intermediate.cert.pem]}),
        )
        .await;
    assert_eq!(untrusted.status, 200);
    assert_eq!(untrusted.body["reason"], "unknown_issuer");
    let name = api
        .post(
            "/v1/verify",
            &json!({"chain": [pki.server.pem, pki.intermediate.cert.pem], "usage": "server",
                    "name": "elsewhere.example"}),
        )
        .await;
    assert_eq!(name.body["reason"], "name_mismatch", "{}", name.text);
    // The same octets again are answered from the caches, until the data
    // changes: a deny of the leaf rejects the very same request.
    let body = json!({"chain": fx.chain(&pki.client), "usage": "client"});
    for _ in 0..3 {
        let again = api.post("/v1/verify", &body).await;
        assert_eq!(again.body, good.body, "{}", again.text);
    }
    let leaf = vigil_core::text::hex(&vigil_core::sha256(&pki.client.der));
    let denied = api
        .post("/v1/deny", &json!({"cert_sha256": leaf, "reason": "r"}))
        .await;
    assert_eq!(denied.status, 201, "{}", denied.text);
    let after = api.post("/v1/verify", &body).await;
    assert_eq!(after.body["verdict"], "rejected", "{}", after.text);
    assert_eq!(after.body["reason"], "denied", "{}", after.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_documented_4xx_and_the_sidecar_stays_healthy() {
    let fx = Fixture::start().await;
    let sidecar = fx.sidecar(&["--api-token", TOKEN]);
    let api = Api::new(&sidecar, Some(TOKEN));
    let anonymous = Api::new(&sidecar, None);
    let chain = fx.chain(&fx.pki.client);
    let raw = |body: &str| Some(body.to_owned());
    let post = reqwest::Method::POST;

    let cases: Vec<Case> = vec![
        ("malformed JSON", post.clone(), "/v1/verify", raw("{\"chain\": ["), 400, "malformed_json"),
        ("empty body", post.clone(), "/v1/verify", raw(""), 400, "malformed_json"),
        ("not an object", post.clone(), "/v1/verify", raw("[1,2]"), 400, "invalid_request"),
        ("chain of the wrong type", post.clone(), "/v1/verify", raw("{\"chain\": \"x\"}"), 400, "invalid_request"),
        ("numbers in the chain", post.clone(), "/v1/verify", raw("{\"chain\": [1, 2]}"), 400, "invalid_request"),
        ("unknown usage", post.clone(), "/v1/verify", raw(&json!({"chain": chain, "usage": "admin"}).to_string()), 400, "invalid_request"),
        ("unknown field", post.clone(), "/v1/verify", raw(&json!({"chain": chain, "chian": 1}).to_string()), 400, "invalid_request"),
        ("empty chain", post.clone(), "/v1/verify", raw("{\"chain\": []}"), 400, "invalid_request"),
        ("bad base64", post.clone(), "/v1/verify", raw("{\"chain\": [\"%%% not base64 %%%\"]}"), 400, "invalid_certificate"),
        ("base64 of junk", post.clone(), "/v1/verify", raw("{\"chain\": [\"aGVsbG8gd29ybGQ=\"]}"), 400, "invalid_certificate"),
        ("PEM garbage", post.clone(), "/v1/verify",
            raw(&json!({"chain": ["-----BEGIN CERTIFICATE-----\nZ2FyYmFnZSBnYXJiYWdl\n-----END CERTIFICATE-----\n"]}).to_string()),
            400, "invalid_certificate"),
        ("PEM without end", post.clone(), "/v1/verify",
            raw(&json!({"chain": ["-----BEGIN CERTIFICATE-----\nMIIB"]}).to_string()), 400, "invalid_certificate"),
        ("bad peer name", post.clone(), "/v1/verify", raw(&json!({"chain": chain, "name": "not a name!"}).to_string()), 400, "invalid_request"),
        ("lease of zero", post.clone(), "/v1/connections", raw(&json!({"chain": chain, "lease_secs": 0}).to_string()), 400, "invalid_request"),
        ("negative lease", post.clone(), "/v1/connections", raw(&json!({"chain": chain, "lease_secs": -5}).to_string()), 400, "invalid_request"),
        ("labels of the wrong type", post.clone(), "/v1/connections", raw(&json!({"chain": chain, "labels": {"a": 1}}).to_string()), 400, "invalid_request"),
        ("unknown connection", reqwest::Method::GET, "/v1/connections/00000000000000000000000000000000", None, 404, "unknown_connection"),
        ("malformed connection id", reqwest::Method::GET, "/v1/connections/not-an-id", None, 404, "unknown_connection"),
        ("delete unknown connection", reqwest::Method::DELETE, "/v1/connections/0123456789abcdef0123456789abcdef", None, 404, "unknown_connection"),
        ("renew unknown connection", post.clone(), "/v1/connections/0123456789abcdef0123456789abcdef/renew", None, 404, "unknown_connection"),
        ("bad page size", reqwest::Method::GET, "/v1/connections?limit=0", None, 400, "invalid_request"),
        ("bad page cursor", reqwest::Method::GET, "/v1/connections?after=zzz", None, 400, "invalid_request"),
        ("deny with bad hex", post.clone(), "/v1/deny", raw("{\"cert_sha256\": \"zz\", \"reason\": \"r\"}"), 400, "invalid_request"),
        ("deny without reason", post.clone(), "/v1/deny", raw(&json!({"cert_sha256": "ab".repeat(32)}).to_string()), 400, "invalid_request"),
        ("deny with two keys", post.clone(), "/v1/deny",
            raw(&json!({"cert_sha256": "ab".repeat(32), "spki_sha256": "ab".repeat(32), "reason": "r"}).to_string()), 400, "invalid_request"),
        ("deny with a bad expiry", post.clone(), "/v1/deny", raw(&json!({"cert_sha256": "ab".repeat(32), "reason": "r", "expires": "tomorrow"}).to_string()), 400, "invalid_request"),
        ("lift an unknown rule", reqwest::Method::DELETE, "/v1/deny", raw(&json!({"cert_sha256": "cd".repeat(32)}).to_string()), 404, "unknown_rule"),
        ("refresh an unknown source", post.clone(), "/v1/revocation/refresh", raw("{\"url\": \"http://127.0.0.1:1/x.crl\"}"), 404, "unknown_source"),
        ("unknown route", reqwest::Method::GET, "/v2/nothing", None, 404, "not_found"),
        ("wrong method", reqwest::Method::PUT, "/v1/verify", raw("{}"), 405, "method_not_allowed"),
    ];
    for (what, method, path, body, status, code) in cases {
        let reply = api.send(method, path, body).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.text);
        assert_eq!(reply.body["error"], code, "{what}: {}", reply.text);
        assert!(reply.body["detail"].is_string(), "{what}: {}", reply.text);
        assert_eq!(
            reply.headers["content-type"].to_str().unwrap(),
            "application/json",
            "{what}"
        );
    }

    // Tokens: missing, wrong, right (any case of the scheme).
    let body = json!({"chain": chain}).to_string();
    let missing = anonymous
        .send(reqwest::Method::POST, "/v1/connections", Some(body.clone()))
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.body["error"], "missing_token");
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let wrong = Api::new(&sidecar, Some("not-the-token"))
        .send(reqwest::Method::DELETE, "/v1/deny", Some("{}".into()))
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["error"], "invalid_token");
    assert!(!wrong.text.contains(TOKEN));
    let lower = reqwest::Client::new()
        .post(sidecar.url("/v1/connections"))
        .header("authorization", format!("bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status().as_u16(), 201);
    // Reads and verify need it too (every /v1 route: see
    // every_v1_route_needs_the_token_reads_included).
    assert_eq!(anonymous.get("/v1/connections").await.status, 401);
    assert_eq!(
        anonymous
            .post("/v1/verify", &json!({"chain": chain}))
            .await
            .status,
        401
    );

    // A 100 MB body: refused from its Content-Length (413), or the
    // connection is closed while it is still being sent.
    let huge = vec![b' '; 100 * 1024 * 1024];
    let sent = reqwest::Client::new()
        .post(sidecar.url("/v1/verify"))
        .header("content-type", "application/json")
        .bearer_auth(TOKEN)
        .body(huge)
        .send()
        .await;
    if let Ok(r) = sent {
        assert_eq!(r.status().as_u16(), 413);
        let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(body["error"], "payload_too_large");
    }
    // With Expect: 100-continue (as curl sends), the 413 comes before any
    // of the body.
    let addr = sidecar.base.trim_start_matches("http://").to_owned();
    let reply = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            format!(
                "POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 104857600\r\n\
                 Expect: 100-continue\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("payload_too_large"), "{reply}");
    // A chunked body that grows past the limit.
    let addr = sidecar.base.trim_start_matches("http://").to_owned();
    let reply = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(
            format!(
                "POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
        );
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..40 {
            let head = format!("{:x}\r\n", chunk.len());
            if s.write_all(head.as_bytes()).is_err()
                || s.write_all(&chunk).is_err()
                || s.write_all(b"\r\n").is_err()
            {
                break;
            }
        }
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 413"),
        "{reply}"
    );

    // Still healthy, still verifying.
    assert_eq!(api.get("/healthz").await.status, 200);
    let ok = api.post("/v1/verify", &json!({"chain": chain})).await;
    assert_eq!(ok.body["verdict"], "accepted");
    let metrics = api.get("/metrics").await.text;
    assert!(metrics.contains("vigil_auth_failures_total 4"), "{metrics}");
    assert!(!sidecar.log_text().contains(TOKEN));
    assert!(!sidecar.log_text().contains("BEGIN CERTIFICATE"));
}

/// The subset of OpenAPI 3.0 schema objects the document uses. Strict
/// about members a schema does not document, except inside allOf/oneOf
/// (whose parts each document only some).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    check(doc, schema, value, at, true)
}

fn check(doc: &Value, schema: &Value, value: &Value, at: &str, strict: bool) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/components/schemas/").ok_or(r)?;
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: dangling $ref {r}"));
        }
        return check(doc, target, value, at, strict);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, value, at, false)?;
        }
        return Ok(());
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let n = one
            .iter()
            .filter(|s| check(doc, s, value, at, false).is_ok())
            .count();
        return if n == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {n} oneOf branches match {value}"))
        };
    }
    if value.is_null() {
        return if schema["nullable"] == true || schema.get("type").is_none() {
            Ok(())
        } else {
            Err(format!("{at}: null where {schema} is not nullable"))
        };
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let obj = value.as_object().ok_or(format!("{at}: not an object"))?;
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    return Err(format!("{at}: missing {r}"));
                }
            }
            for (k, v) in obj {
                if let Some(p) = schema["properties"].get(k) {
                    check(doc, p, v, &format!("{at}.{k}"), true)?;
                } else if let Some(extra) = schema.get("additionalProperties") {
                    check(doc, extra, v, &format!("{at}.{k}"), true)?;
                } else if strict && schema.get("properties").is_some() {
                    return Err(format!("{at}: undocumented member {k}"));
                }
            }
            Ok(())
        }
        Some("array") => {
            let items = value.as_array().ok_or(format!("{at}: not an array"))?;
            for (i, item) in items.iter().enumerate() {
                check(doc, &schema["items"], item, &format!("{at}[{i}]"), true)?;
            }
            Ok(())
        }
        Some("string") if !value.is_string() => Err(format!("{at}: {value} is not a string")),
        Some("integer") if !(value.is_i64() || value.is_u64()) => {
            Err(format!("{at}: {value} is not an integer"))
        }
        Some("boolean") if !value.is_boolean() => Err(format!("{at}: {value} is not a boolean")),
        _ => Ok(()),
    }
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_valid_and_every_route_answers_as_documented() {
    let fx = Fixture::start().await;
    let sidecar = fx.sidecar(&["--api-token", TOKEN]);
    let api = Api::new(&sidecar, Some(TOKEN));
    let doc = api.get("/openapi.json").await.body;

    // Structure.
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    for r in &all_refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }
    let paths = doc["paths"].as_object().unwrap();
    let mut operation_ids = std::collections::BTreeSet::new();
    let mut operations = Vec::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'));
        for (method, op) in item.as_object().unwrap() {
            assert!(["get", "post", "delete", "put", "patch"].contains(&method.as_str()));
            assert!(operation_ids.insert(op["operationId"].as_str().unwrap().to_owned()));
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty());
            for (code, r) in responses {
                assert!(code.len() == 3 && code.parse::<u16>().is_ok(), "{code}");
                assert!(r["description"].is_string());
            }
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(['{', '}']);
                assert!(
                    op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                    "{method} {path}: path parameter {name} undeclared"
                );
            }
            if let Some(sec) = op.get("security") {
                assert!(doc["components"]["securitySchemes"]
                    [sec[0].as_object().unwrap().keys().next().unwrap()]
                .is_object());
            }
            operations.push((method.clone(), path.clone(), op.clone()));
        }
    }
    assert!(operations.len() >= 16, "{}", operations.len());
    // The contract's routes are all there.
    for (method, path) in [
        ("post", "/v1/verify"),
        ("post", "/v1/connections"),
        ("get", "/v1/connections"),
        ("get", "/v1/connections/{id}"),
        ("delete", "/v1/connections/{id}"),
        ("get", "/v1/events"),
        ("get", "/v1/revocation"),
        ("post", "/v1/revocation/refresh"),
        ("post", "/v1/deny"),
        ("get", "/v1/deny"),
        ("delete", "/v1/deny"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }

    // Every operation answers with a documented status and body.
    let chain = fx.chain(&fx.pki.client);
    let leased = api.register(&chain, json!({"k": "v"}), Some(600)).await;
    let deletable = api.register(&chain, json!({}), None).await;
    let key = json!({"spki_sha256": "ef".repeat(32)});
    for (method, path, op) in &operations {
        let id = if method == "delete" {
            &deletable
        } else {
            &leased
        };
        let url = path.replace("{id}", id);
        let body = match (method.as_str(), path.as_str()) {
            ("post", "/v1/verify") | ("post", "/v1/connections") => Some(json!({"chain": chain})),
            ("post", "/v1/deny") => Some(json!({"spki_sha256": "ef".repeat(32), "reason": "r"})),
            ("delete", "/v1/deny") => Some(key.clone()),
            ("post", _) => Some(json!({})),
            _ => None,
        };
        if path == "/v1/events" {
            let mut rx = subscribe(&api, None).await;
            drop(rx.try_recv());
            continue;
        }
        let reply = api
            .send(
                method.to_uppercase().parse().unwrap(),
                &url,
                body.map(|b| b.to_string()),
            )
            .await;
        let documented = &op["responses"][reply.status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {path} answered {} (undocumented): {}",
            reply.status,
            reply.text
        );
        if let Some(schema) = documented["content"]["application/json"].get("schema") {
            validate(&doc, schema, &reply.body, &format!("{method} {path}"))
                .unwrap_or_else(|e| panic!("{e}\n{}", reply.text));
        } else if documented["content"]["text/plain"].is_object() {
            assert!(reply.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"));
        } else {
            assert!(reply.text.is_empty(), "{method} {path}: {}", reply.text);
        }
    }
    // Torn-down connections, the events and error bodies match their
    // schemas too.
    let mut events = subscribe(&api, None).await;
    let denied = api
        .post(
            "/v1/deny",
            &json!({"cert_sha256": hex_sha256(&fx.pki.client.der), "reason": "r"}),
        )
        .await;
    assert_eq!(denied.status, 201, "{}", denied.text);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let gone = api.get(&format!("/v1/connections/{leased}")).await;
    assert_eq!(gone.body["state"], "torn_down");
    validate(
        &doc,
        &json!({"$ref": "#/components/schemas/Connection"}),
        &gone.body,
        "torn down",
    )
    .unwrap();
    validate(
        &doc,
        &json!({"$ref": "#/components/schemas/TeardownEvent"}),
        &gone.body["teardown"],
        "teardown",
    )
    .unwrap();
    let event = loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("a teardown event")
            .expect("the stream stays open");
        if e.event == "teardown" {
            break e;
        }
    };
    // Under text/event-stream (OpenAPI 3.0) the schema is one event's
    // fields, as an SSE parser reads them.
    let sse = json!({"event": event.event, "data": event.data.to_string(), "id": event.id});
    validate(
        &doc,
        &doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
            ["schema"],
        &sse,
        "event",
    )
    .unwrap();
    validate(
        &doc,
        &json!({"$ref": "#/components/schemas/TeardownEvent"}),
        &event.data,
        "teardown event",
    )
    .unwrap();
    let refused = api.post("/v1/connections", &json!({"chain": chain})).await;
    assert_eq!(refused.status, 403);
    validate(
        &doc,
        &doc["paths"]["/v1/connections"]["post"]["responses"]["403"]["content"]["application/json"]
            ["schema"],
        &refused.body,
        "refused",
    )
    .unwrap();
}

fn hex_sha256(der: &[u8]) -> String {
    vigil_core::text::hex(&vigil_core::sha256(der))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_verifications_fetches_connections_teardowns_and_subscribers() {
    let fx = Fixture::start().await;
    let sidecar = fx.sidecar(&[]);
    let api = Api::new(&sidecar, None);
    let chain = fx.chain(&fx.pki.client);
    api.post("/v1/verify", &json!({"chain": chain})).await;
    api.post(
        "/v1/verify",
        &json!({"chain": fx.chain(&fx.pki.revoked_client)}),
    )
    .await;
    let id = api.register(&chain, json!({}), None).await;
    let _events = subscribe(&api, None).await;
    api.post(
        "/v1/deny",
        &json!({"cert_sha256": hex_sha256(&fx.pki.client.der), "reason": "metrics"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        api.get(&format!("/v1/connections/{id}")).await.body["state"],
        "torn_down"
    );
    let reply = api.get("/metrics").await;
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = reply.text;
    for needle in [
        "vigil_verifications_total{verdict=\"accepted\",reason=\"ok\"} 2",
        "vigil_verifications_total{verdict=\"rejected\",reason=\"revoked\"} 1",
        "vigil_verify_duration_seconds_count 2",
        "vigil_fetches_total{source=\"crl\",outcome=\"updated\"}",
        "vigil_fetch_duration_seconds_bucket{source=\"ocsp\",le=\"+Inf\"}",
        "vigil_revocation_data_age_seconds{source=\"crl\",url=\"",
        "vigil_connections_tracked 0",
        "vigil_connections_registered_total 1",
        "vigil_teardowns_total{reason=\"denied\"} 1",
        "vigil_events_total{event=\"teardown\"} 1",
        "vigil_sse_subscribers 1",
        "vigil_deny_rules 1",
        "vigil_ready 1",
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
    // Every sample line is `name{labels} value` with a declared TYPE.
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "untyped {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_follow_flag_env_file_default_precedence() {
    let fx = Fixture::start().await;
    let dir = fx.dir.path();
    std::fs::write(dir.join("other-root.pem"), &fx.pki.other_root.cert.pem).unwrap();
    std::fs::write(
        dir.join("vigil.toml"),
        "api-token = \"file-token\"\nanchor = [\"root.pem\"]\nrevocation = \"require\"\n",
    )
    .unwrap();
    let config = dir.join("vigil.toml").display().to_string();
    let data = fx.data_dir();
    let args = |extra: &[&str]| -> Vec<String> {
        [
            "serve",
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([data.display().to_string()])
        .chain(extra.iter().map(|s| s.to_string()))
        .collect()
    };
    let chain = fx.chain(&fx.pki.client);
    let body = json!({"chain": chain});
    let status_with = |sidecar: &Sidecar, token: &str| {
        let api = Api::new(sidecar, Some(token));
        let body = body.clone();
        async move { api.post("/v1/connections", &body).await.status }
    };

    // The file's token (and anchor) when nothing overrides them.
    {
        let sidecar = Sidecar::spawn(&args(&[]), &[], &data);
        assert_eq!(status_with(&sidecar, "file-token").await, 201);
    }
    // The environment beats the file; VIGIL_ANCHOR takes a list.
    {
        let anchors = format!(
            "{},{}",
            dir.join("root.pem").display(),
            dir.join("other-root.pem").display()
        );
        let sidecar = Sidecar::spawn(
            &args(&[]),
            &[("VIGIL_API_TOKEN", "env-token"), ("VIGIL_ANCHOR", &anchors)],
            &data,
        );
        assert_eq!(status_with(&sidecar, "file-token").await, 401);
        assert_eq!(status_with(&sidecar, "env-token").await, 201);
        let other = Api::new(&sidecar, None)
            .post(
                "/v1/verify",
                &json!({"chain": [fx.pki.other_client.pem, fx.pki.other_intermediate.cert.pem]}),
            )
            .await;
        assert_ne!(other.body["reason"], "unknown_issuer", "{}", other.text);
    }
    // The flag beats the environment.
    {
        let sidecar = Sidecar::spawn(
            &args(&["--api-token", "flag-token"]),
            &[("VIGIL_API_TOKEN", "env-token")],
            &data,
        );
        assert_eq!(status_with(&sidecar, "env-token").await, 401);
        assert_eq!(status_with(&sidecar, "flag-token").await, 201);
    }

    // Errors at start: exit 2 with a message naming the setting.
    let fail = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(vigil());
        c.args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("VIGIL_")) {
            c.env_remove(k);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = fail(&["serve", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no trust anchors"), "{err}");
    std::fs::write(dir.join("bad.toml"), "listen = 8787\n").unwrap();
    let bad = dir.join("bad.toml").display().to_string();
    let (code, err) = fail(&["serve", "--config", &bad], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.toml") && err.contains("listen"), "{err}");
    let (code, err) = fail(
        &["serve", "--anchor", "/nonexistent/root.pem"],
        &[("VIGIL_LISTEN", "127.0.0.1:0")],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/root.pem"), "{err}");
    let (code, err) = fail(
        &["serve"],
        &[("VIGIL_LISTEN", "nowhere"), ("VIGIL_ANCHOR", "x.pem")],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("'nowhere' is not an address"), "{err}");
    let (code, err) = fail(
        &["serve", "--anchor", "x.pem", "--revocation", "sometimes"],
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("sometimes"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_tls_when_given_a_certificate() {
    let fx = Fixture::start().await;
    let dir = fx.dir.path();
    let server = fx
        .pki
        .intermediate
        .issue_leaf(
            &CertSpec::leaf("api", "api.vigil.test", &fx.pki.options)
                .with_usage(LeafUsage::Server)
                .with_ip("127.0.0.1".parse().unwrap()),
        )
        .unwrap();
    std::fs::write(
        dir.join("api.pem"),
        format!("{}{}", server.pem, fx.pki.intermediate.cert.pem),
    )
    .unwrap();
    std::fs::write(dir.join("api.key"), &server.key_pem).unwrap();
    let cert = dir.join("api.pem").display().to_string();
    let key = dir.join("api.key").display().to_string();
    let sidecar = fx.sidecar(&["--tls-cert", &cert, "--tls-key", &key]);
    assert!(sidecar.base.starts_with("https://"), "{}", sidecar.base);
    let root = reqwest::Certificate::from_pem(fx.pki.root.cert.pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let health = client.get(sidecar.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let verify = client
        .post(sidecar.url("/v1/verify"))
        .header("content-type", "application/json")
        .body(json!({"chain": fx.chain(&fx.pki.client)}).to_string())
        .send()
        .await
        .unwrap();
    let verdict: Value = serde_json::from_str(&verify.text().await.unwrap()).unwrap();
    assert_eq!(verdict["verdict"], "accepted");
    // Plain HTTP on the TLS port gets nowhere.
    assert!(
        reqwest::get(sidecar.url("/healthz").replace("https", "http"))
            .await
            .is_err()
    );
    // `vigil health` is the container's probe.
    let root_file = fx.anchor().display().to_string();
    let probe = std::process::Command::new(vigil())
        .args([
            "health",
            "--url",
            &sidecar.base,
            "--ca",
            &root_file,
            "--ready",
        ])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let down = std::process::Command::new(vigil())
        .args(["health", "--url", "http://127.0.0.1:1", "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    // A key that does not parse is an error at start.
    std::fs::write(dir.join("bad.key"), "not a key").unwrap();
    let bad_key = dir.join("bad.key").display().to_string();
    let out = std::process::Command::new(vigil())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--anchor",
            &root_file,
            "--tls-cert",
            &cert,
            "--tls-key",
            &bad_key,
            "--data-dir",
        ])
        .arg(dir.join("data2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls-key"));
}
