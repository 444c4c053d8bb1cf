//! Fuzz target: the sidecar's HTTP API (`vigil serve`), through the real
//! axum router (`vigil_sidecar::app`, `tower::ServiceExt::oneshot`, no
//! socket): JSON bodies of every mutating route, path ids and list queries.
//! The input is a list of records (`vigil_fuzz::records`), one request each
//! (at most four per input); the record's kind picks the route:
//!
//! | kind % 8 | request |
//! |---|---|
//! | 0 | `POST /v1/verify` with the body |
//! | 1 | `POST /v1/connections` with the body |
//! | 2 | `POST /v1/connections/{id}/renew`: id up to the first `\n`, then the body |
//! | 3 | `POST /v1/revocation/refresh` with the body |
//! | 4 | `POST /v1/deny` with the body |
//! | 5 | `DELETE /v1/deny` with the body |
//! | 6 | `GET /v1/connections?{body}` |
//! | 7 | `DELETE /v1/connections/{body}` |
//!
//! The engine is offline (nothing is fetched), anchored at the fixture root
//! with the fixture CRLs, on a fixed clock at `data/now`, revocation `off`
//! so that valid chains register connections; the state (connections, deny
//! rules) is rebuilt every [`RESET_EVERY`] inputs so it stays bounded.
//!
//! Oracle beyond "no panic": no input gets a 5xx answer (a client's bytes
//! are a 4xx at worst).

#![no_main]

use std::cell::RefCell;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use vigil_core::{CertificateDer, RevocationPolicy};
use vigil_fuzz::{now, records, INTERMEDIATE_CRL, ROOT, ROOT_CRL};
use vigil_runtime::{Clock, Engine, EngineConfig, MemoryStore};
use vigil_sidecar::{app, Sidecar, SidecarConfig};

/// Inputs between two rebuilds of the sidecar's state.
const RESET_EVERY: u32 = 1000;
/// Requests per input.
const MAX_REQUESTS: usize = 4;

struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> SystemTime {
        now()
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    state: Option<(Router, Sidecar)>,
    runs: u32,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Self {
            runtime,
            state: None,
            runs: 0,
        }
    }

    fn router(&mut self) -> Router {
        self.runs += 1;
        if self.runs % RESET_EVERY == 0 {
            // Dropping the Sidecar stops its background tasks.
            self.state = None;
        }
        if self.state.is_none() {
            let store = Arc::new(MemoryStore::new());
            let config = EngineConfig::default().with_offline(true);
            let engine = Engine::open(
                vec![CertificateDer::from(ROOT.to_vec())],
                store.clone(),
                config,
                Arc::new(Fixed),
            )
            .expect("engine over the fixture root");
            let _ = engine.add_crl(ROOT_CRL);
            let _ = engine.add_crl(INTERMEDIATE_CRL);
            let sidecar_config = SidecarConfig::default().with_policy(RevocationPolicy::Off);
            let _guard = self.runtime.enter();
            self.state = Some(app(engine, store, sidecar_config));
        }
        match &self.state {
            Some((router, _)) => router.clone(),
            None => unreachable!("state was just built"),
        }
    }
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

fn request(kind: u8, body: &[u8]) -> Option<Request<Body>> {
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    let (method, uri, body) = match kind % 8 {
        0 => (Method::POST, "/v1/verify".to_owned(), body),
        1 => (Method::POST, "/v1/connections".to_owned(), body),
        2 => {
            let split = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
            let id = text(&body[..split])?;
            let rest = body.get(split + 1..).unwrap_or_default();
            (Method::POST, format!("/v1/connections/{id}/renew"), rest)
        }
        3 => (Method::POST, "/v1/revocation/refresh".to_owned(), body),
        4 => (Method::POST, "/v1/deny".to_owned(), body),
        5 => (Method::DELETE, "/v1/deny".to_owned(), body),
        6 => (
            Method::GET,
            format!("/v1/connections?{}", text(body)?),
            &[][..],
        ),
        _ => (
            Method::DELETE,
            format!("/v1/connections/{}", text(body)?),
            &[][..],
        ),
    };
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:8787")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .ok()
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(Harness::new);
        let router = harness.router();
        for (kind, body) in records(data).into_iter().take(MAX_REQUESTS) {
            let Some(req) = request(kind, body) else {
                continue;
            };
            let router = router.clone();
            let status = harness.runtime.block_on(async move {
                match router.oneshot(req).await {
                    Ok(response) => response.status(),
                    Err(never) => match never {},
                }
            });
            assert!(
                !status.is_server_error(),
                "{status} for kind {kind} body {:?}",
                String::from_utf8_lossy(body)
            );
        }
    });
});
