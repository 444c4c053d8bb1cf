//! The I/O around Vigil's core: one cloneable [`Engine`] that fetches CRLs
//! and OCSP answers ([`Fetcher`]), has the core (`vigil-core`) verify them
//! before they replace what it holds, keeps them and the "revoked stays
//! revoked" facts across restarts ([`Store`]), refreshes them on a schedule
//! ([`Engine::spawn_scheduler`]), and tears live connections down when they
//! stop being trusted ([`Tracker`]).
//!
//! Data flows one way: the runtime fetches and persists raw bytes, the core
//! verifies and decides. Nothing here trusts what it fetched or read back
//! from disk.
//!
//! # Contents
//!
//! * The engine: [`Engine`], configured by [`EngineConfig`] (with
//!   [`RefreshPolicy`] for the scheduler, [`FetchConfig`] for fetches,
//!   [`VerifierConfig`] for the core), its [`Clock`] ([`SystemClock`]), and
//!   what it reports ([`SourceState`], [`Refreshed`], [`RefreshMetrics`],
//!   [`EngineError`]).
//! * Fetching: [`Fetcher`] with its limits ([`FetchConfig`],
//!   [`MAX_CRL_URLS_PER_CERT`], [`MAX_OCSP_URLS_PER_CERT`]), destination
//!   rules ([`Cidr`], [`DEFAULT_DENIED`]) and results ([`FetchOutcome`],
//!   [`OcspOutcome`], [`FetchError`]).
//! * Storage: the [`Store`] trait, [`SledStore`] (on disk, crash-safe) and
//!   [`MemoryStore`], and the records they hold.
//! * Live connections: [`Tracker`] ([`TrackerConfig`], [`Enforcement`]),
//!   which re-checks tracked connections whenever data, anchors, denials or
//!   time change and signals teardown ([`ConnectionEvent`]); `vigil-rustls`
//!   closes TLS streams on those signals.
//!
//! Chains, options and verdicts are `vigil-core`'s types
//! ([`CertificateDer`](vigil_core::CertificateDer),
//! [`VerifyOptions`](vigil_core::VerifyOptions),
//! [`Verdict`](vigil_core::Verdict)).
//!
//! # Example
//!
//! An engine over the fixture PKI's root, fetching revocation data from the
//! fixture responder on 127.0.0.1 (`pki-fixtures`; hidden lines set it up):
//!
//! ```
//! use std::sync::Arc;
//! use vigil_core::{Status, Usage, VerifyOptions};
//! use vigil_runtime::{Engine, EngineConfig, MemoryStore, RefreshPolicy, Store, SystemClock};
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
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new()); // or SledStore::open(dir)?
//! // Refresh every source at least hourly, whatever its nextUpdate says.
//! let config =
//!     EngineConfig::default().with_refresh(RefreshPolicy::default().with_max_interval_secs(3600));
//! let engine = Engine::open(anchors, store, config, Arc::new(SystemClock))?;
//!
//! // Validates the path, then fetches the CRLs and OCSP answers its
//! // certificates name, verifies them, and decides (policy `require`).
//! let chain = vigil_core::input::load_certificates(&client_chain_pem)?;
//! let options = VerifyOptions::new(Usage::Client);
//! let verdict = engine.verify(&chain, &options).await;
//! assert_eq!(verdict.status, Status::Good, "{}", verdict.detail);
//!
//! // Keeps every source fresh until aborted: dropping the handle does not
//! // stop it.
//! let scheduler = engine.spawn_scheduler();
//! scheduler.abort();
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod engine;
pub mod exchange;
mod fetch;
mod stats;
mod store;
mod tracker;

pub use engine::{Clock, Engine, EngineConfig, EngineError, Refreshed, SourceState, SystemClock};
pub use fetch::{
    cap_sources, Cidr, CidrError, FetchConfig, FetchError, FetchOutcome, Fetcher, OcspMethod,
    OcspOutcome, Validators, DEFAULT_DENIED, MAX_CRL_URLS_PER_CERT, MAX_OCSP_URLS_PER_CERT,
};
pub use stats::{KindRefreshMetrics, RefreshMetrics, REFRESH_BUCKETS};
pub use store::{
    MemoryStore, PutOutcome, RevocationKey, SledStore, SourceKind, SourceMeta, SourceRecord,
    SourceStatus, Store, StoreError, StoredFact, Table,
};
pub use tracker::{
    wake_after_delivery, ConnectionEvent, Enforcement, Tracked, Tracker, TrackerConfig,
    TrackerMetrics,
};
pub use vigil_core::schedule::RefreshPolicy;
pub use vigil_core::VerifierConfig;
