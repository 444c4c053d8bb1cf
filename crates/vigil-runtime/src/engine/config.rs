//! The engine's settings ([`EngineConfig`]), its clock and its errors.

use super::*;

/// The time source; injected so tests and drills can move time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Engine settings; the defaults are the strict choices.
///
/// Built from [`Default`] with the `with_*` setters; the fields are public
/// to read. More fields may come, so other crates cannot build it as a
/// struct literal.
///
/// ```
/// use vigil_runtime::{EngineConfig, FetchConfig, RefreshPolicy};
///
/// let config = EngineConfig::default()
///     .with_refresh(RefreshPolicy::default().with_max_interval_secs(3600))
///     .with_fetch(FetchConfig::default().with_retries(0))
///     .with_max_sources(1_000);
/// assert_eq!(config.refresh.max_interval_secs, 3600);
/// assert!(!config.offline);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Fetch limits and timeouts.
    pub fetch: FetchConfig,
    /// Verification tunables (clock skew, OCSP max age, method order).
    pub verifier: VerifierConfig,
    /// Refresh timing.
    pub refresh: RefreshPolicy,
    /// Hash of OCSP CertIDs (SHA-1 by default, as RFC 5019 asks).
    pub ocsp_sha256: bool,
    /// Send an OCSP nonce.
    pub ocsp_nonce: bool,
    /// Never fetch: use only what is loaded and stored.
    pub offline: bool,
    /// Revocation sources tracked at most; beyond, the least recently used
    /// one (named by no verification for the longest time) is forgotten, in
    /// memory and in the store. Default 10,000.
    pub max_sources: usize,
    /// Refreshes the scheduler runs at once (a few slow endpoints do not
    /// hold up the rest). Default 16.
    pub refresh_concurrency: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            fetch: FetchConfig::default(),
            verifier: VerifierConfig::default(),
            refresh: RefreshPolicy::default(),
            ocsp_sha256: false,
            ocsp_nonce: false,
            offline: false,
            max_sources: 10_000,
            refresh_concurrency: 16,
        }
    }
}

impl EngineConfig {
    /// Sets the fetch limits and timeouts (default
    /// [`FetchConfig::default`]).
    #[must_use]
    pub fn with_fetch(mut self, fetch: FetchConfig) -> Self {
        self.fetch = fetch;
        self
    }

    /// Sets the verification tunables (default
    /// [`VerifierConfig::default`]).
    #[must_use]
    pub fn with_verifier(mut self, verifier: VerifierConfig) -> Self {
        self.verifier = verifier;
        self
    }

    /// Sets the refresh timing (default [`RefreshPolicy::default`]).
    #[must_use]
    pub fn with_refresh(mut self, refresh: RefreshPolicy) -> Self {
        self.refresh = refresh;
        self
    }

    /// Hashes OCSP CertIDs with SHA-256 instead of SHA-1 (default false:
    /// SHA-1, as RFC 5019 asks).
    #[must_use]
    pub fn with_ocsp_sha256(mut self, on: bool) -> Self {
        self.ocsp_sha256 = on;
        self
    }

    /// Sends an OCSP nonce (default false).
    #[must_use]
    pub fn with_ocsp_nonce(mut self, on: bool) -> Self {
        self.ocsp_nonce = on;
        self
    }

    /// Never fetches: uses only what is loaded and stored (default false).
    #[must_use]
    pub fn with_offline(mut self, on: bool) -> Self {
        self.offline = on;
        self
    }

    /// Sets how many revocation sources are tracked at most (default
    /// 10,000).
    #[must_use]
    pub fn with_max_sources(mut self, max: usize) -> Self {
        self.max_sources = max;
        self
    }

    /// Sets how many refreshes the scheduler runs at once (default 16).
    #[must_use]
    pub fn with_refresh_concurrency(mut self, max: usize) -> Self {
        self.refresh_concurrency = max;
        self
    }
}

/// Why the engine could not start or act.
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed.
    Store(StoreError),
    /// The fetcher could not be built.
    Fetch(FetchError),
    /// A certificate or anchor was unusable.
    Input(vigil_core::input::InputError),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "store: {e}"),
            Self::Fetch(e) => write!(f, "fetcher: {e}"),
            Self::Input(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EngineError {}
