//! What the sidecar is configured with: how the API behaves
//! ([`SidecarConfig`]) and what `vigil serve` resolves ([`ServeConfig`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use vigil_core::RevocationPolicy;

#[cfg(doc)]
use crate::{serve, Server};

/// Default of [`SidecarConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// Default of [`SidecarConfig::max_subscribers`].
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 256;
/// Default of [`SidecarConfig::max_deny_rules`].
pub const DEFAULT_MAX_DENY_RULES: usize = 10_000;

/// How the API behaves. [`Default`] is what `vigil serve` uses when nothing
/// is configured.
///
/// Built from [`Default`] with the `with_*` setters; the fields are public
/// to read. More fields may come, so other crates cannot build it as a
/// struct literal.
///
/// ```
/// use std::time::Duration;
/// use vigil_core::RevocationPolicy;
/// use vigil_sidecar::SidecarConfig;
///
/// let config = SidecarConfig::default()
///     .with_policy(RevocationPolicy::Prefer)
///     .with_api_token("s3cret".to_owned())
///     .with_sse_keep_alive(Duration::from_secs(5));
/// assert!(config.loopback_hosts_only);
/// assert_eq!(config.max_connections, vigil_sidecar::DEFAULT_MAX_CONNECTIONS);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SidecarConfig {
    /// Revocation policy of `/v1/verify` and of registered connections
    /// (default `require`).
    pub policy: RevocationPolicy,
    /// Bearer token every `/v1/*` route requires (reads included);
    /// `None`: no token is asked for. `/healthz`, `/readyz` and
    /// `/openapi.json` stay open; `/metrics` too unless
    /// [`SidecarConfig::metrics_auth`].
    pub api_token: Option<String>,
    /// `/metrics` requires the token too (default off).
    pub metrics_auth: bool,
    /// Refuse requests whose `Host` is not a loopback name or address
    /// (`localhost`, `127.0.0.0/8`, `[::1]`, any port) with 421: the
    /// DNS-rebinding defence of a loopback bind (default on; [`Server`]
    /// turns it off when it binds beyond loopback).
    pub loopback_hosts_only: bool,
    /// Most registered connections; beyond, `POST /v1/connections` is 429
    /// (default 100000).
    pub max_connections: usize,
    /// Most `/v1/events` subscribers at once; beyond, 429 (default 256).
    pub max_subscribers: usize,
    /// Most deny rules; beyond, `POST /v1/deny` of a new key is 429
    /// (default 10000).
    pub max_deny_rules: usize,
    /// Largest request body accepted, bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Time between keep-alive comments on `/v1/events` (default 15 s).
    pub sse_keep_alive: Duration,
    /// Events kept for `Last-Event-ID` resumption (default 8192).
    pub event_backlog: usize,
    /// Time a client has to send a request's head, and how long an idle
    /// keep-alive connection is kept (default 30 s). Applied by [`serve`].
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once handlers start
    /// reading it (default 30 s); after it the request gets 408.
    pub body_read_timeout: Duration,
    /// Adds `POST /bench/echo`, a trivial handler behind the same stack, as
    /// the ceiling for load benchmarks (default off).
    pub bench_echo: bool,
    /// Fleet mode: deny rules go through the fleet's bucket, events are
    /// published to the fleet, `/v1/events?scope=fleet` streams the
    /// fleet's, `/readyz` waits for the deny rules to be caught up.
    pub cluster: Option<vigil_cluster::Cluster>,
    /// `/v1/connections` lists this process's own connections (the admin
    /// API of `vigil proxy`): registering, removing and renewing are 405
    /// (default off).
    pub connections_read_only: bool,
    /// More exposition text for `/metrics`, appended by whoever embeds the
    /// app (`vigil proxy` adds its own counters).
    pub extra_metrics: Option<ExtraMetrics>,
}

/// Writes more Prometheus exposition text (see
/// [`SidecarConfig::extra_metrics`]).
pub type ExtraMetrics = std::sync::Arc<dyn Fn(&mut String) + Send + Sync>;

impl Default for SidecarConfig {
    fn default() -> Self {
        Self {
            policy: RevocationPolicy::Require,
            api_token: None,
            metrics_auth: false,
            loopback_hosts_only: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
            max_deny_rules: DEFAULT_MAX_DENY_RULES,
            max_body_bytes: 1024 * 1024,
            sse_keep_alive: Duration::from_secs(15),
            event_backlog: 8192,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            bench_echo: false,
            cluster: None,
            connections_read_only: false,
            extra_metrics: None,
        }
    }
}

impl SidecarConfig {
    /// Sets the revocation policy of `/v1/verify` and of registered
    /// connections (default [`RevocationPolicy::Require`]).
    #[must_use]
    pub fn with_policy(mut self, policy: RevocationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the bearer token every `/v1/*` route requires; a `String` or an
    /// `Option<String>` (`None`: no token is asked for). Default `None`.
    #[must_use]
    pub fn with_api_token(mut self, token: impl Into<Option<String>>) -> Self {
        self.api_token = token.into();
        self
    }

    /// Makes `/metrics` require the token too (default false).
    #[must_use]
    pub fn with_metrics_auth(mut self, on: bool) -> Self {
        self.metrics_auth = on;
        self
    }

    /// Refuses requests whose `Host` is not a loopback name or address
    /// (default true).
    #[must_use]
    pub fn with_loopback_hosts_only(mut self, on: bool) -> Self {
        self.loopback_hosts_only = on;
        self
    }

    /// Sets the most registered connections (default
    /// [`DEFAULT_MAX_CONNECTIONS`]).
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets the most `/v1/events` subscribers at once (default
    /// [`DEFAULT_MAX_SUBSCRIBERS`]).
    #[must_use]
    pub fn with_max_subscribers(mut self, max: usize) -> Self {
        self.max_subscribers = max;
        self
    }

    /// Sets the most deny rules (default [`DEFAULT_MAX_DENY_RULES`]).
    #[must_use]
    pub fn with_max_deny_rules(mut self, max: usize) -> Self {
        self.max_deny_rules = max;
        self
    }

    /// Sets the largest request body accepted, bytes (default 1 MiB).
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Sets the time between keep-alive comments on `/v1/events` (default
    /// 15 s).
    #[must_use]
    pub fn with_sse_keep_alive(mut self, interval: Duration) -> Self {
        self.sse_keep_alive = interval;
        self
    }

    /// Sets how many events are kept for `Last-Event-ID` resumption
    /// (default 8192).
    #[must_use]
    pub fn with_event_backlog(mut self, events: usize) -> Self {
        self.event_backlog = events;
        self
    }

    /// Sets the time a client has to send a request's head, and the idle
    /// keep-alive time (default 30 s).
    #[must_use]
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets the time a client has to send a request's body (default 30 s).
    #[must_use]
    pub fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Adds `POST /bench/echo`, the ceiling for load benchmarks (default
    /// false).
    #[must_use]
    pub fn with_bench_echo(mut self, on: bool) -> Self {
        self.bench_echo = on;
        self
    }

    /// Sets [`SidecarConfig::connections_read_only`].
    #[must_use]
    pub fn with_connections_read_only(mut self, on: bool) -> Self {
        self.connections_read_only = on;
        self
    }

    /// Sets [`SidecarConfig::extra_metrics`].
    #[must_use]
    pub fn with_extra_metrics(mut self, extra: ExtraMetrics) -> Self {
        self.extra_metrics = Some(extra);
        self
    }

    /// Sets [`SidecarConfig::cluster`].
    pub fn with_cluster(mut self, cluster: Option<vigil_cluster::Cluster>) -> Self {
        self.cluster = cluster;
        self
    }
}

impl std::fmt::Debug for SidecarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarConfig")
            .field("policy", &self.policy)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("metrics_auth", &self.metrics_auth)
            .field("loopback_hosts_only", &self.loopback_hosts_only)
            .field("max_connections", &self.max_connections)
            .field("max_subscribers", &self.max_subscribers)
            .field("max_deny_rules", &self.max_deny_rules)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("sse_keep_alive", &self.sse_keep_alive)
            .field("event_backlog", &self.event_backlog)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("bench_echo", &self.bench_echo)
            .field("connections_read_only", &self.connections_read_only)
            .field("extra_metrics", &self.extra_metrics.is_some())
            .field(
                "cluster",
                &self.cluster.as_ref().map(vigil_cluster::Cluster::node),
            )
            .finish()
    }
}

/// What `vigil serve` resolves from its flags, environment and file.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: the sled store (created when missing).
    pub data_dir: PathBuf,
    /// Trust anchor files (PEM bundle, DER or a directory).
    pub anchors: Vec<PathBuf>,
    /// Serve over TLS with this certificate chain and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How revocation data is fetched (destination rules, limits).
    pub fetch: vigil_runtime::FetchConfig,
    /// How the API behaves.
    pub sidecar: SidecarConfig,
    /// Serve a non-loopback address without an API token (otherwise
    /// [`Server::start`] refuses to).
    pub insecure_no_auth: bool,
    /// Fleet mode: [`Server::start`] starts a [`vigil_cluster::Cluster`]
    /// beside the engine.
    pub cluster: Option<vigil_cluster::ClusterConfig>,
    /// When the refresh scheduler asks each source again.
    pub refresh: vigil_runtime::RefreshPolicy,
    /// How revocation data is judged (clock skew, OCSP max age, methods).
    pub verifier: vigil_core::VerifierConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sidecar_config_setter_sets_its_own_field() {
        let built = SidecarConfig::default()
            .with_policy(RevocationPolicy::Off)
            .with_api_token("t".to_owned())
            .with_metrics_auth(true)
            .with_loopback_hosts_only(false)
            .with_max_connections(1)
            .with_max_subscribers(2)
            .with_max_deny_rules(3)
            .with_max_body_bytes(4)
            .with_sse_keep_alive(Duration::from_secs(5))
            .with_event_backlog(6)
            .with_header_read_timeout(Duration::from_secs(7))
            .with_body_read_timeout(Duration::from_secs(8))
            .with_bench_echo(true)
            .with_connections_read_only(true);
        let expected = SidecarConfig {
            policy: RevocationPolicy::Off,
            api_token: Some("t".to_owned()),
            metrics_auth: true,
            loopback_hosts_only: false,
            max_connections: 1,
            max_subscribers: 2,
            max_deny_rules: 3,
            max_body_bytes: 4,
            sse_keep_alive: Duration::from_secs(5),
            event_backlog: 6,
            header_read_timeout: Duration::from_secs(7),
            body_read_timeout: Duration::from_secs(8),
            bench_echo: true,
            cluster: None,
            connections_read_only: true,
            extra_metrics: None,
        };
        // No PartialEq, and Debug redacts the token: compared apart.
        assert_eq!(format!("{built:?}"), format!("{expected:?}"));
        assert_eq!(built.api_token, expected.api_token);
        assert_eq!(built.with_api_token(None).api_token, None);
    }
}
