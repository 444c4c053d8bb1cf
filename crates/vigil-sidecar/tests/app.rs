//! The sidecar as a library, in process: the router built from an engine
//! (fixture PKI, CRLs loaded directly, so verification is offline) and
//! served with `axum::serve` answers `/healthz`, `/openapi.json` and
//! `/v1/verify`; served with [`vigil_sidecar::serve`], a client too slow to
//! send a request's head or body is cut off while an event stream outlives
//! both deadlines.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use pki_fixtures::{Pki, PkiOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vigil_core::CertificateDer;
use vigil_runtime::{Engine, EngineConfig, MemoryStore, Store, SystemClock};
use vigil_sidecar::{app, Sidecar, SidecarConfig};

/// An engine trusting the fixture root, holding both fixture CRLs.
fn engine(pki: &Pki) -> (Engine, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::open(
        vec![CertificateDer::from(pki.root.cert.der.clone())],
        Arc::clone(&store),
        EngineConfig::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    engine.add_crl(&pki.intermediate_crl.der).unwrap();
    engine.add_crl(&pki.root_crl.der).unwrap();
    (engine, store)
}

async fn wait_restored(sidecar: &Sidecar) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sidecar.is_restored() {
        assert!(Instant::now() < deadline, "restore did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_from_an_engine_serves_health_openapi_and_verify() {
    let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
    let (engine, store) = engine(&pki);
    let (router, sidecar) = app(engine, store, SidecarConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    wait_restored(&sidecar).await;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let get = |path: &str| {
        let request = http.get(format!("{base}{path}"));
        async move { reply(request).await }
    };
    let verify = |body: Value| {
        let request = http
            .post(format!("{base}/v1/verify"))
            .header("content-type", "application/json")
            .body(body.to_string());
        async move { reply(request).await }
    };

    assert_eq!(get("/healthz").await, (200, json!({"status": "ok"})));

    let (status, doc) = get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
    assert!(doc["paths"]["/v1/verify"]["post"].is_object(), "{doc}");

    let (status, verdict) = verify(json!({
        "chain": [pki.client.pem, pki.intermediate.cert.pem],
        "usage": "client",
    }))
    .await;
    assert_eq!(status, 200);
    assert_eq!(verdict["verdict"], "accepted", "{verdict}");
    assert_eq!(verdict["status"], "good", "{verdict}");

    // A revoked leaf, from the same CRL: rejected, still 200.
    let (status, verdict) =
        verify(json!({"chain": [pki.revoked_client.pem, pki.intermediate.cert.pem]})).await;
    assert_eq!(status, 200);
    assert_eq!(verdict["verdict"], "rejected", "{verdict}");
    assert_eq!(verdict["status"], "revoked", "{verdict}");

    sidecar.shutdown();
    server.abort();
    sidecar.close().await.unwrap();
}

/// The status and the JSON body.
async fn reply(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

/// Reads what arrives within `for_how_long`; `true` when the peer closed.
async fn read_for(stream: &mut TcpStream, for_how_long: Duration) -> (Vec<u8>, bool) {
    let deadline = tokio::time::Instant::now() + for_how_long;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_but_event_streams_are_not() {
    let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
    let (engine, store) = engine(&pki);
    let config = SidecarConfig::default()
        .with_header_read_timeout(Duration::from_millis(300))
        .with_body_read_timeout(Duration::from_millis(300))
        .with_sse_keep_alive(Duration::from_millis(400));
    let (router, sidecar) = app(engine, store, config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let checks = async {
        // Half a request head, then nothing: disconnected.
        let started = Instant::now();
        let mut slow_head = TcpStream::connect(addr).await.unwrap();
        slow_head
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .unwrap();
        let (_, closed) = read_for(&mut slow_head, Duration::from_secs(5)).await;
        assert!(closed, "a half-sent head kept its connection");
        assert!(started.elapsed() < Duration::from_secs(3));

        // A head, then a body that stops halfway: 408.
        let mut slow_body = TcpStream::connect(addr).await.unwrap();
        slow_body
            .write_all(
                b"POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                  Content-Length: 100\r\n\r\n{\"chain\": [",
            )
            .await
            .unwrap();
        let (reply, _) = read_for(&mut slow_body, Duration::from_secs(3)).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(reply.contains("request_timeout"), "{reply}");

        // An event stream outlives both deadlines (keep-alives flow) ...
        let mut events = TcpStream::connect(addr).await.unwrap();
        events
            .write_all(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let (head, closed) = read_for(&mut events, Duration::from_millis(200)).await;
        assert!(!closed);
        assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"));
        let (later, closed) = read_for(&mut events, Duration::from_millis(1500)).await;
        assert!(!closed, "the event stream was cut");
        assert!(!later.is_empty(), "no keep-alive on the event stream");

        // ... and a normal request still works.
        let mut fine = TcpStream::connect(addr).await.unwrap();
        fine.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (reply, closed) = read_for(&mut fine, Duration::from_secs(3)).await;
        assert!(closed);
        assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"));

        // Shutdown ends the stream.
        sidecar.shutdown();
        let (_, closed) = read_for(&mut events, Duration::from_secs(5)).await;
        assert!(closed, "shutdown did not end the event stream");
    };
    let (served, ()) = tokio::join!(vigil_sidecar::serve(listener, router, &sidecar), checks);
    served.unwrap();
    sidecar.close().await.unwrap();
}
