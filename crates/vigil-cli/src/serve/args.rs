//! The raw flags of `vigil serve` (each also `VIGIL_<NAME>` in the
//! environment, read by clap), before they are checked.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::verify::PolicyArg;
use vigil_runtime::Cidr;

/// Raw flags of `vigil serve` (ARCHITECTURE.md, `vigil serve`). Each is also
/// `VIGIL_<NAME>` in the environment and a key of the `--config` file.
#[derive(Args, Debug, Default)]
#[command(after_help = "\
Precedence: flag > VIGIL_* environment > --config file > default.
Config file keys are the flag names (e.g. listen, data-dir, anchor = [..],
revocation, api-token-file, insecure-no-auth, metrics-auth, max-connections,
tls-cert, tls-key); relative paths in the file are relative to the file's
directory.
The API token: --api-token-file FILE or VIGIL_API_TOKEN (--api-token works but
shows in `ps`). Every /v1 route needs it; a non-loopback --listen without one
is refused unless --insecure-no-auth.
SIGHUP reads the --anchor files again: connections whose chain ends at an
anchor no longer listed are torn down (untrusted); a file that does not load
changes nothing.
Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 when the settings,
anchors, data directory, TLS files or listen address are unusable at start,
1 when the sidecar fails after starting.")]
pub(crate) struct ServeArgs {
    /// Flags `vigil proxy` shares.
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    /// Address to listen on [default: 127.0.0.1:8787].
    #[arg(long, env = "VIGIL_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Serve a non-loopback address without an API token (otherwise an
    /// error). Anyone who can reach it may then read, register, deny and
    /// refresh.
    #[arg(long, env = "VIGIL_INSECURE_NO_AUTH", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub(crate) insecure_no_auth: Option<bool>,
    /// /metrics requires the token too (it is open by default).
    #[arg(long, env = "VIGIL_METRICS_AUTH", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub(crate) metrics_auth: Option<bool>,
    /// Most registered connections; beyond, 429 [default: 100000].
    #[arg(long, env = "VIGIL_MAX_CONNECTIONS", value_name = "N")]
    pub(crate) max_connections: Option<u64>,
    /// Most /v1/events subscribers at once; beyond, 429 [default: 256].
    #[arg(long, env = "VIGIL_MAX_SUBSCRIBERS", value_name = "N")]
    pub(crate) max_subscribers: Option<u64>,
    /// Most deny rules; beyond, 429 [default: 10000].
    #[arg(long, env = "VIGIL_MAX_DENY_RULES", value_name = "N")]
    pub(crate) max_deny_rules: Option<u64>,
    /// Serve the API over TLS with this certificate chain (PEM); needs
    /// --tls-key.
    #[arg(long, env = "VIGIL_TLS_CERT", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, env = "VIGIL_TLS_KEY", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Largest request body accepted, bytes [default: 1048576].
    #[arg(long, env = "VIGIL_MAX_BODY_BYTES", value_name = "BYTES")]
    pub(crate) max_body_bytes: Option<u64>,
    /// Seconds between keep-alive comments on /v1/events [default: 15].
    #[arg(long, env = "VIGIL_SSE_KEEP_ALIVE", value_name = "SECS")]
    pub(crate) sse_keep_alive: Option<u64>,
    /// Events kept for Last-Event-ID resumption [default: 8192].
    #[arg(long, env = "VIGIL_EVENT_BACKLOG", value_name = "N")]
    pub(crate) event_backlog: Option<u64>,
    /// Adds POST /bench/echo, a trivial handler behind the same stack, as
    /// the ceiling for load benchmarks.
    #[arg(long, hide = true)]
    pub(crate) bench_echo: bool,
}

/// The flags `vigil serve` and `vigil proxy` share (one declaration, so
/// their names, environment variables and help stay the same).
#[derive(Args, Debug, Default)]
pub(crate) struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "VIGIL_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (the store: revocation data, connections, deny list)
    /// [default: ./vigil-data].
    #[arg(long, env = "VIGIL_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Trust anchors (PEM bundle, DER or a directory), repeatable;
    /// VIGIL_ANCHOR takes a comma-separated list.
    #[arg(long, env = "VIGIL_ANCHOR", value_name = "FILE", value_delimiter = ',')]
    pub(crate) anchor: Vec<PathBuf>,
    /// Revocation policy [default: require].
    #[arg(long, env = "VIGIL_REVOCATION", value_enum)]
    pub(crate) revocation: Option<PolicyArg>,
    /// Bearer token every /v1 route requires. Visible in `ps`: prefer
    /// --api-token-file or VIGIL_API_TOKEN. Unset: no token is asked for
    /// (allowed on a loopback address only, unless --insecure-no-auth).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) api_token: Option<String>,
    /// File holding the bearer token (one trailing newline is ignored).
    #[arg(long, env = "VIGIL_API_TOKEN_FILE", value_name = "FILE")]
    pub(crate) api_token_file: Option<PathBuf>,
    /// Log level on stderr [default: info].
    #[arg(long, env = "VIGIL_LOG_LEVEL", value_enum)]
    pub(crate) log_level: Option<LogLevel>,
    /// Ask every revocation source again at least this often, seconds
    /// (1..=86400), however long its data stays valid: the longest a
    /// revocation can go unnoticed when nobody triggers a refresh
    /// [default: 21600, or sooner at half the data's validity].
    #[arg(long, env = "VIGIL_REFRESH_INTERVAL", value_name = "SECS")]
    pub(crate) refresh_interval: Option<u64>,
    /// Tolerated clock difference with CAs and responders, seconds
    /// (0..=3600): CRLs and OCSP answers dated up to this far in the
    /// future are used, and OCSP answers this long past their nextUpdate
    /// (a CRL is stale at its nextUpdate) [default: 300].
    #[arg(long, env = "VIGIL_CLOCK_SKEW", value_name = "SECS")]
    pub(crate) clock_skew: Option<u64>,
    /// Never fetch from addresses in this range (CIDR or one address), on
    /// top of the default denials (link-local incl. 169.254.169.254,
    /// unspecified, multicast, broadcast); repeatable; VIGIL_FETCH_DENY
    /// takes a comma-separated list. Wins over --fetch-allow.
    #[arg(
        long = "fetch-deny",
        env = "VIGIL_FETCH_DENY",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = crate::fetch_args::parse_cidr
    )]
    pub(crate) fetch_deny: Vec<Cidr>,
    /// Lift a default denial for this range; repeatable; VIGIL_FETCH_ALLOW
    /// takes a comma-separated list. Does not lift --fetch-deny.
    #[arg(
        long = "fetch-allow",
        env = "VIGIL_FETCH_ALLOW",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = crate::fetch_args::parse_cidr
    )]
    pub(crate) fetch_allow: Vec<Cidr>,
    /// Fleet mode on NATS JetStream: the servers, nats://HOST:PORT (or
    /// tls://), comma-separated. Deny rules then apply fleet-wide and
    /// events are published to the fleet.
    #[arg(
        long,
        env = "VIGIL_CLUSTER",
        value_name = "URLS",
        value_delimiter = ','
    )]
    pub(crate) cluster: Vec<String>,
    /// This node's name in the fleet [default: the host name plus a suffix
    /// kept in the data dir].
    #[arg(long, env = "VIGIL_NODE_ID", value_name = "ID")]
    pub(crate) node_id: Option<String>,
    /// The fleet's name, prefixing every bucket and subject [default: vigil].
    #[arg(long, env = "VIGIL_FLEET", value_name = "NAME")]
    pub(crate) fleet: Option<String>,
    /// Apply only deny records signed with this Ed25519 public key (PEM,
    /// `openssl pkey -pubout`); repeatable. Unsigned records and bare
    /// deletes are then refused.
    #[arg(
        long,
        env = "VIGIL_DENY_VERIFY_KEY",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub(crate) deny_verify_key: Vec<PathBuf>,
    /// Sign the deny records this node writes with this Ed25519 private key
    /// (PEM, `openssl genpkey -algorithm ed25519`); implies verifying with
    /// its public key.
    #[arg(long, env = "VIGIL_DENY_SIGNING_KEY", value_name = "FILE")]
    pub(crate) deny_signing_key: Option<PathBuf>,
}

/// `--log-level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub(crate) fn level(self) -> tracing::Level {
        match self {
            Self::Error => tracing::Level::ERROR,
            Self::Warn => tracing::Level::WARN,
            Self::Info => tracing::Level::INFO,
            Self::Debug => tracing::Level::DEBUG,
            Self::Trace => tracing::Level::TRACE,
        }
    }
}
