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
pub(super) struct FileConfig {
    pub(super) listen: Option<String>,
    #[serde(alias = "data_dir")]
    pub(super) data_dir: Option<PathBuf>,
    pub(super) anchor: Option<OneOrMany>,
    pub(super) revocation: Option<String>,
    #[serde(alias = "api_token")]
    pub(super) api_token: Option<String>,
    #[serde(alias = "api_token_file")]
    pub(super) api_token_file: Option<PathBuf>,
    #[serde(alias = "insecure_no_auth")]
    pub(super) insecure_no_auth: Option<bool>,
    #[serde(alias = "metrics_auth")]
    pub(super) metrics_auth: Option<bool>,
    #[serde(alias = "max_connections")]
    pub(super) max_connections: Option<u64>,
    #[serde(alias = "max_subscribers")]
    pub(super) max_subscribers: Option<u64>,
    #[serde(alias = "max_deny_rules")]
    pub(super) max_deny_rules: Option<u64>,
    #[serde(alias = "tls_cert")]
    pub(super) tls_cert: Option<PathBuf>,
    #[serde(alias = "tls_key")]
    pub(super) tls_key: Option<PathBuf>,
    #[serde(alias = "max_body_bytes")]
    pub(super) max_body_bytes: Option<u64>,
    #[serde(alias = "sse_keep_alive")]
    pub(super) sse_keep_alive: Option<u64>,
    #[serde(alias = "event_backlog")]
    pub(super) event_backlog: Option<u64>,
    #[serde(alias = "log_level")]
    pub(super) log_level: Option<LogLevel>,
    // --- fetch destinations (issue 11) ---
    pub(super) fetch: Option<FileFetch>,
    // --- fleet mode (issue 13) ---
    pub(super) cluster: Option<FileCluster>,
}

/// `[cluster]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileCluster {
    pub(super) servers: Option<OneOrManyText>,
    pub(super) fleet: Option<String>,
    #[serde(alias = "node_id")]
    pub(super) node_id: Option<String>,
    /// A NATS `.creds` file.
    pub(super) credentials: Option<PathBuf>,
    /// A file holding an nkey seed.
    #[serde(alias = "nkey_file")]
    pub(super) nkey_file: Option<PathBuf>,
    pub(super) user: Option<String>,
    /// A file holding the password of `user`.
    #[serde(alias = "password_file")]
    pub(super) password_file: Option<PathBuf>,
    /// A file holding a token.
    #[serde(alias = "token_file")]
    pub(super) token_file: Option<PathBuf>,
    #[serde(alias = "tls_ca")]
    pub(super) tls_ca: Option<PathBuf>,
    pub(super) replicas: Option<u64>,
    /// Seconds a node holds the lease to fetch a source for the fleet (the
    /// refresh window).
    #[serde(alias = "fetch_lease_secs")]
    pub(super) fetch_lease_secs: Option<u64>,
    #[serde(alias = "deny_signing_key")]
    pub(super) deny_signing_key: Option<PathBuf>,
    #[serde(alias = "deny_verify_key")]
    pub(super) deny_verify_key: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrManyText {
    One(String),
    Many(Vec<String>),
}

/// `[fetch]` of the config file: `deny = ["10.0.0.0/8"]`, `allow = [..]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileFetch {
    pub(super) deny: Option<Vec<String>>,
    pub(super) allow: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

pub(super) fn read_file_config(path: &Path) -> Result<FileConfig, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("--config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| UsageError(format!("--config {}: {e}", path.display())))
}

pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}
