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

mod api;
mod body;
mod chain;
mod config;
mod connections;
mod error;
mod events;
mod guard;
mod handlers;
mod metrics;
mod openapi;
mod persist;
mod record;
mod server;
mod state;
mod tls;

pub use config::{
    ServeConfig, SidecarConfig, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_DENY_RULES,
    DEFAULT_MAX_SUBSCRIBERS,
};
pub use server::{serve, Error, Server, DRAIN_DEADLINE};
pub use state::{app, Sidecar};
pub(crate) use state::{readiness, verify_chain, AppState};
