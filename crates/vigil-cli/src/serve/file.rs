//! The TOML `--config` file: its keys (unknown ones are errors) and how it
//! is read.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::args::LogLevel;
use crate::UsageError;

/// The `--config` file. Unknown keys are errors, so a typo is not silently
/// ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileConfig {
    pub(crate) listen: Option<String>,
    #[serde(alias = "data_dir")]
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) anchor: Option<OneOrMany>,
    pub(crate) revocation: Option<String>,
    #[serde(alias = "api_token")]
    pub(crate) api_token: Option<String>,
    #[serde(alias = "api_token_file")]
    pub(crate) api_token_file: Option<PathBuf>,
    #[serde(alias = "insecure_no_auth")]
    pub(crate) insecure_no_auth: Option<bool>,
    #[serde(alias = "metrics_auth")]
    pub(crate) metrics_auth: Option<bool>,
    #[serde(alias = "max_connections")]
    pub(crate) max_connections: Option<u64>,
    #[serde(alias = "max_subscribers")]
    pub(crate) max_subscribers: Option<u64>,
    #[serde(alias = "max_deny_rules")]
    pub(crate) max_deny_rules: Option<u64>,
    #[serde(alias = "tls_cert")]
    pub(crate) tls_cert: Option<PathBuf>,
    #[serde(alias = "tls_key")]
    pub(crate) tls_key: Option<PathBuf>,
    #[serde(alias = "max_body_bytes")]
    pub(crate) max_body_bytes: Option<u64>,
    #[serde(alias = "sse_keep_alive")]
    pub(crate) sse_keep_alive: Option<u64>,
    #[serde(alias = "event_backlog")]
    pub(crate) event_backlog: Option<u64>,
    #[serde(alias = "log_level")]
    pub(crate) log_level: Option<LogLevel>,
    #[serde(alias = "refresh_interval")]
    pub(crate) refresh_interval: Option<u64>,
    #[serde(alias = "clock_skew")]
    pub(crate) clock_skew: Option<u64>,
    // --- fetch destinations (issue 11) ---
    pub(crate) fetch: Option<FileFetch>,
    // --- fleet mode (issue 13) ---
    pub(crate) cluster: Option<FileCluster>,
    // --- vigil proxy (issue 14); `vigil serve` ignores these ---
    /// The proxy's admin API address.
    pub(crate) admin: Option<String>,
    #[serde(alias = "handshake_timeout")]
    pub(crate) handshake_timeout: Option<u64>,
    #[serde(alias = "idle_timeout")]
    pub(crate) idle_timeout: Option<u64>,
    /// One listen/target pair each.
    pub(crate) proxy: Option<Vec<crate::proxy::FileProxy>>,
}

/// `[cluster]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileCluster {
    pub(crate) servers: Option<OneOrManyText>,
    pub(crate) fleet: Option<String>,
    #[serde(alias = "node_id")]
    pub(crate) node_id: Option<String>,
    /// A NATS `.creds` file.
    pub(crate) credentials: Option<PathBuf>,
    /// A file holding an nkey seed.
    #[serde(alias = "nkey_file")]
    pub(crate) nkey_file: Option<PathBuf>,
    pub(crate) user: Option<String>,
    /// A file holding the password of `user`.
    #[serde(alias = "password_file")]
    pub(crate) password_file: Option<PathBuf>,
    /// A file holding a token.
    #[serde(alias = "token_file")]
    pub(crate) token_file: Option<PathBuf>,
    #[serde(alias = "tls_ca")]
    pub(crate) tls_ca: Option<PathBuf>,
    pub(crate) replicas: Option<u64>,
    /// Seconds a node holds the lease to fetch a source for the fleet (the
    /// refresh window).
    #[serde(alias = "fetch_lease_secs")]
    pub(crate) fetch_lease_secs: Option<u64>,
    #[serde(alias = "deny_signing_key")]
    pub(crate) deny_signing_key: Option<PathBuf>,
    #[serde(alias = "deny_verify_key")]
    pub(crate) deny_verify_key: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrManyText {
    One(String),
    Many(Vec<String>),
}

/// `[fetch]` of the config file: `deny = ["10.0.0.0/8"]`, `allow = [..]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileFetch {
    pub(crate) deny: Option<Vec<String>>,
    pub(crate) allow: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

pub(crate) fn read_file_config(path: &Path) -> Result<FileConfig, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("--config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| UsageError(format!("--config {}: {e}", path.display())))
}

pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}
