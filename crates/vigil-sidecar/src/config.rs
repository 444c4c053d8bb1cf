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
#[derive(Clone)]
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
}

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
        }
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
}
