//! rustls certificate verifiers backed by Vigil's [`Engine`]: path
//! validation, live CRL/OCSP revocation and policy decided by Vigil, inside
//! the TLS handshake; and TLS streams that close themselves when their peer
//! stops being trusted.
//!
//! # Contents
//!
//! * [`VigilClientVerifier`]: a [`rustls::server::danger::ClientCertVerifier`]
//!   for servers that require client certificates (mTLS).
//! * [`VigilServerVerifier`]: a [`rustls::client::danger::ServerCertVerifier`]
//!   that also uses the OCSP response the server staples.
//! * [`accept`], [`connect`] and [`GuardedStream`]: tokio-rustls streams
//!   tracked by a [`Tracker`]; on teardown they send close_notify, close and
//!   fail pending I/O with [`TornDown`] (an idle one is shut down after
//!   [`CLOSE_GRACE`]). [`TlsPeer`] is what a stream must offer to be tracked.
//! * [`verdict_error`] and [`Rejected`]: how a rejected verdict becomes a
//!   rustls error and a TLS alert.
//! * [`Authorizer`]: the application's own authorization, asked by either
//!   verifier about chains Vigil accepted (`with_authorizer`).
//!
//! # Example
//!
//! An mTLS server whose clients are verified by Vigil; a client's
//! connection is closed once its certificate is revoked. It runs against
//! the fixture PKI and its CRL/OCSP responder on 127.0.0.1 (`pki-fixtures`);
//! with real files, only the paths change. The same code is
//! `examples/live_connections.rs` and the README's example.
//!
//! ```
#![doc = include_str!("../examples/live_connections.rs")]
//! ```
//!
//! # Alerts
//!
//! A rejected [`Verdict`](vigil_core::Verdict) becomes
//! [`rustls::Error::InvalidCertificate`] with the closest
//! [`rustls::CertificateError`] (see [`verdict_error`]), so the peer gets the
//! matching TLS alert: `certificate_revoked` for a revoked certificate,
//! `certificate_unknown` (an `Other` error carrying the verdict) when
//! revocation status cannot be determined under `require`, as the issue's
//! contract asks (rustls itself sends `unknown_ca` for
//! [`CertificateError::UnknownRevocationStatus`](rustls::CertificateError::UnknownRevocationStatus)).
//!
//! # Fetching inside a handshake
//!
//! rustls calls verifiers synchronously. A verifier first decides with the
//! data the engine holds ([`Engine::verify_cached`]); only when that verdict
//! depends on revocation data the engine lacks (unknown status, or data that
//! failed verification) does it fetch:
//!
//! * on a **multi-threaded tokio runtime**, it blocks the handshake's task in
//!   place ([`tokio::task::block_in_place`]) while the engine fetches
//!   ([`Engine::verify`], bounded by the fetcher's timeouts and its retry
//!   backoff), then decides with the fresh data. Other futures polled by the
//!   same task wait meanwhile;
//! * on a **current-thread runtime** it cannot block: it decides with what is
//!   cached and starts the fetch in the background ([`tokio::spawn`]), so a
//!   later handshake finds the data. Under `require` the first handshake of
//!   a chain whose data is not yet held is therefore refused;
//! * **outside any tokio runtime** it decides with what is cached only.
//!
//! Keep the engine's refresh scheduler ([`Engine::spawn_scheduler`]) running
//! so that handshakes rarely have to fetch at all.
//!
//! # Time and resumption
//!
//! Decisions use the engine's clock, not the `now` rustls passes, so tests
//! and drills that move the engine's time move the verifiers too. rustls 0.23
//! does not call the client-certificate verifier when a session is resumed:
//! [`accept`] and [`GuardedStream::track`] re-check every connection's peer
//! chain against current data when they track it, full handshake or not.
//!
//! # Live connections
//!
//! A verifier decides once, at the handshake. To end connections when their
//! peer stops being trusted, track them with a [`Tracker`] over the same
//! engine and accept through [`accept`] (or wrap with
//! [`GuardedStream::track`]): on revocation, expiry, data that can no longer
//! be verified under `require`, anchor removal or an operator's deny, the
//! stream sends close_notify, closes and fails pending I/O with
//! [`TornDown`]; see [`GuardedStream`] for the details, including dry runs.
//! Dropping the stream untracks it.

#![forbid(unsafe_code)]

mod client;
mod decide;
mod error;
mod server;
mod stream;

pub use client::VigilClientVerifier;
pub use error::{verdict_error, Authorizer, Rejected};
pub use server::VigilServerVerifier;
pub use stream::{accept, connect, GuardedStream, TlsPeer, TornDown, CLOSE_GRACE};

#[cfg(doc)]
use vigil_runtime::{Engine, Tracker};
