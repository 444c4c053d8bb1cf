//! The Vigil sidecar: an HTTP API (ARCHITECTURE.md, HTTP API) over one
//! engine: verify chains, track registered connections, announce on
//! `/v1/events` which must be torn down, deny certificates at once.
//!
//! Two ways in:
//! - [`app`] builds the router over an [`Engine`](vigil_runtime::Engine) the caller already has
//!   (and the store it opened it with); serve it with [`serve`] (deadlines
//!   for slow clients, graceful drain) or with `axum::serve`, and end with
//!   [`Sidecar::shutdown`] and [`Sidecar::close`].
//! - [`Server`] is the whole of `vigil serve`: settings are checked,
//!   anchors loaded, the store opened and the engine built, the listener
//!   bound ([`Server::start`]; the binary prints `listening on
//!   http://ADDR` then), and the API served until told to stop
//!   ([`Server::run`]).
//!
//! Once the app is built, persisted connections are restored in the
//! background (`/readyz` is 503 until they are) and every revocation
//! source refreshed once, so that whatever was revoked while the sidecar was
//! down is announced.
//!
//! Shutdown: stop accepting, end the event streams, let requests in flight
//! finish ([`DRAIN_DEADLINE`] at most), write and flush the store.
//!
//! Slow clients ([`serve`]): a request's head must arrive within
//! [`SidecarConfig::header_read_timeout`] (30 s by default; an idle
//! keep-alive connection is closed after as long), and its body within
//! [`SidecarConfig::body_read_timeout`] (30 s; 408 after). Responses are
//! not timed, so `/v1/events` streams last as long as the client stays.
//! Over TLS the handshake has 10 s.
//!
//! # Example
//!
//! The API over an engine for the fixture PKI (hidden lines start its
//! CRL/OCSP responder on 127.0.0.1), served on a loopback port, asked to
//! verify a client chain, then shut down:
//!
//! ```
//! use std::sync::Arc;
//! use vigil_runtime::{Engine, EngineConfig, MemoryStore, Store, SystemClock};
//! use vigil_sidecar::SidecarConfig;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (_responder, pki) = pki_fixtures::responder::start_with_fresh_pki(
//! #     pki_fixtures::PkiOptions::default(),
//! #     pki_fixtures::responder::ResponderOptions::default(),
//! # )
//! # .await?;
//! # let files = pki_fixtures::PkiDir::new(&pki)?;
//! # let (root_pem, client_chain_pem) = (files.file("root.pem"), files.file("client.chain.pem"));
//! let anchors = vigil_core::input::load_certificates(&root_pem)?;
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let engine = Engine::open(anchors, store.clone(), EngineConfig::default(), Arc::new(SystemClock))?;
//! let token = "s3cret";
//! let config = SidecarConfig::default().with_api_token(token.to_owned());
//! let (router, sidecar) = vigil_sidecar::app(engine, store, config);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/v1/verify", listener.local_addr()?);
//! let body = serde_json::json!({
//!     "chain": [std::fs::read_to_string(&client_chain_pem)?],
//!     "usage": "client",
//! });
//! let ask = async {
//!     let response = reqwest::Client::new()
//!         .post(&url)
//!         .bearer_auth(token)
//!         .header("content-type", "application/json")
//!         .body(body.to_string())
//!         .send()
//!         .await;
//!     sidecar.shutdown(); // the server drains and returns
//!     response
//! };
//! let (served, response) = tokio::join!(vigil_sidecar::serve(listener, router, &sidecar), ask);
//! served?;
//! let verdict: serde_json::Value = serde_json::from_str(&response?.text().await?)?;
//! assert_eq!(verdict["verdict"], "accepted", "{verdict}");
//! assert_eq!(verdict["status"], "good");
//! sidecar.close().await?;
//! # Ok(()) }
//! ```

mod api;
mod body;
mod chain;
mod config;
mod connections;
mod error;
mod events;
mod guard;
mod handlers;
mod live;
mod memo;
mod metrics;
mod openapi;
mod persist;
mod record;
mod server;
mod state;
mod tls;

pub use config::{
    ExtraMetrics, ServeConfig, SidecarConfig, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_DENY_RULES,
    DEFAULT_MAX_SUBSCRIBERS,
};
pub use live::{Live, LiveConnection, Refused};
pub use server::{load_anchors, serve, Error, Server, DRAIN_DEADLINE};
pub use state::{app, Sidecar};
pub(crate) use state::{readiness, verify_chain, AppState};
