//! The I/O around Vigil's core: fetching CRLs and OCSP responses over HTTP
//! ([`Fetcher`]) and keeping them, with the "revoked stays revoked" facts,
//! across restarts ([`Store`], [`SledStore`]).
//!
//! Data flows one way: the runtime fetches and persists raw bytes, the core
//! (`vigil-core`) verifies and decides. Nothing here trusts what it fetched
//! or read back from disk.

#![forbid(unsafe_code)]

mod engine;
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
    MemoryStore, PutOutcome, RevocationFact, RevocationKey, SledStore, SourceKind, SourceMeta,
    SourceRecord, SourceStatus, Store, StoreError, Table,
};
pub use tracker::{
    wake_after_delivery, ConnectionEvent, Enforcement, Tracked, Tracker, TrackerConfig,
    TrackerMetrics,
};
