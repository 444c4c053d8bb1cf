//! How a [`Fetcher`](super::Fetcher) is configured: limits, timeouts,
//! retries and destination rules.

use std::time::Duration;

use super::Cidr;
#[cfg(doc)]
use super::{Fetcher, DEFAULT_DENIED};

/// Limits and timeouts for a [`Fetcher`]. The defaults suit CRLs of a few
/// million entries on a reasonable link.
///
/// Built from [`Default`] with the `with_*` setters; the fields are public
/// to read. More fields may come, so other crates cannot build it as a
/// struct literal.
///
/// ```
/// use std::time::Duration;
/// use vigil_runtime::{Cidr, FetchConfig};
///
/// let config = FetchConfig::default()
///     .with_total_timeout(Duration::from_secs(5))
///     .with_retries(0)
///     .with_allow(vec!["169.254.0.0/16".parse::<Cidr>()?]);
/// assert_eq!(config.max_redirects, 3);
/// # Ok::<(), vigil_runtime::CidrError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FetchConfig {
    /// Time to establish a connection (TCP and TLS). Default 5 s.
    pub connect_timeout: Duration,
    /// Time for one attempt: all redirects, headers and the whole body.
    /// Default 15 s.
    pub total_timeout: Duration,
    /// Largest CRL body accepted. Default 64 MiB.
    pub max_crl_bytes: u64,
    /// Largest OCSP response accepted. Default 64 KiB.
    pub max_ocsp_bytes: u64,
    /// Redirects followed before giving up. Default 3.
    pub max_redirects: u32,
    /// Attempts after the first one, for transient failures. Default 2.
    pub retries: u32,
    /// Backoff before retry `n` is uniform in `[0, min(max, base * 2^n)]`
    /// ("full jitter"). Default base 200 ms.
    pub backoff_base: Duration,
    /// Cap of the backoff. Default 5 s.
    pub backoff_max: Duration,
    /// The User-Agent header.
    pub user_agent: String,
    /// Whether to use the proxies named by `HTTP_PROXY`/`HTTPS_PROXY`/
    /// `NO_PROXY`. Default false: through a proxy, the address check
    /// applies to the proxy, not to where the proxy then connects, so
    /// turning this on gives up [`deny`](Self::deny) for proxied URLs.
    pub use_env_proxy: bool,
    /// Destination ranges never connected to, on top of the default
    /// denials ([`DEFAULT_DENIED`]). An explicit deny wins over
    /// [`allow`](Self::allow).
    pub deny: Vec<Cidr>,
    /// Ranges lifted from the default denials (e.g. a link-local
    /// responder). Does not lift [`deny`](Self::deny).
    pub allow: Vec<Cidr>,
    /// Fetches in flight at once, all hosts together; more wait. Default 32.
    pub max_concurrent: usize,
    /// Fetches in flight at once to one host (name and port); more wait.
    /// Default 4.
    pub max_per_host: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_crl_bytes: 64 * 1024 * 1024,
            max_ocsp_bytes: 64 * 1024,
            max_redirects: 3,
            retries: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            user_agent: concat!("vigil/", env!("CARGO_PKG_VERSION")).to_owned(),
            use_env_proxy: false,
            deny: Vec::new(),
            allow: Vec::new(),
            max_concurrent: 32,
            max_per_host: 4,
        }
    }
}

impl FetchConfig {
    /// Sets the time to establish a connection (default 5 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the time for one attempt, redirects and body included
    /// (default 15 s).
    #[must_use]
    pub fn with_total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// Sets the largest CRL body accepted, bytes (default 64 MiB).
    #[must_use]
    pub fn with_max_crl_bytes(mut self, max: u64) -> Self {
        self.max_crl_bytes = max;
        self
    }

    /// Sets the largest OCSP response accepted, bytes (default 64 KiB).
    #[must_use]
    pub fn with_max_ocsp_bytes(mut self, max: u64) -> Self {
        self.max_ocsp_bytes = max;
        self
    }

    /// Sets how many redirects are followed (default 3).
    #[must_use]
    pub fn with_max_redirects(mut self, max: u32) -> Self {
        self.max_redirects = max;
        self
    }

    /// Sets the attempts after the first one, for transient failures
    /// (default 2).
    #[must_use]
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the base of the retry backoff (default 200 ms).
    #[must_use]
    pub fn with_backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = base;
        self
    }

    /// Sets the cap of the retry backoff (default 5 s).
    #[must_use]
    pub fn with_backoff_max(mut self, max: Duration) -> Self {
        self.backoff_max = max;
        self
    }

    /// Sets the User-Agent header (default `vigil/<version>`).
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Uses the proxies named by `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`
    /// (default false; see [`use_env_proxy`](Self::use_env_proxy) for what
    /// it gives up).
    #[must_use]
    pub fn with_use_env_proxy(mut self, on: bool) -> Self {
        self.use_env_proxy = on;
        self
    }

    /// Sets the destination ranges never connected to, on top of
    /// [`DEFAULT_DENIED`] (default none).
    #[must_use]
    pub fn with_deny(mut self, deny: Vec<Cidr>) -> Self {
        self.deny = deny;
        self
    }

    /// Sets the ranges lifted from [`DEFAULT_DENIED`] (default none).
    #[must_use]
    pub fn with_allow(mut self, allow: Vec<Cidr>) -> Self {
        self.allow = allow;
        self
    }

    /// Sets how many fetches are in flight at once, all hosts together
    /// (default 32).
    #[must_use]
    pub fn with_max_concurrent(mut self, max: usize) -> Self {
        self.max_concurrent = max;
        self
    }

    /// Sets how many fetches are in flight at once to one host (default 4).
    #[must_use]
    pub fn with_max_per_host(mut self, max: usize) -> Self {
        self.max_per_host = max;
        self
    }
}
