//! Fleet-mode settings ([`ClusterConfig`]) and the default node id.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::signing::{SigningKey, VerifyKey};

/// How a node authenticates to NATS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// A `.creds` file (user JWT and nkey seed).
    CredentialsFile(PathBuf),
    /// An nkey seed (`SU...`).
    Nkey(String),
    /// User and password.
    UserPassword {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
    /// A token.
    Token(String),
}

/// Fleet-mode settings.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://HOST:PORT`, `tls://HOST:PORT`).
    pub servers: Vec<String>,
    /// The fleet's name: it prefixes every bucket and subject, so fleets
    /// can share one NATS account. `[A-Za-z0-9_-]`, 1 to 32 characters.
    pub fleet: String,
    /// This node's name in the fleet: `[A-Za-z0-9_-]`, 1 to 64 characters.
    pub node_id: String,
    /// Credentials.
    pub auth: Auth,
    /// CA certificates (PEM) for `tls://` servers.
    pub tls_ca: Option<PathBuf>,
    /// JetStream replicas of the buckets this node creates (1, or 3 on a
    /// three-server cluster).
    pub replicas: usize,
    /// Signs the deny records this node writes. A node that signs also
    /// verifies with the matching public key.
    pub signing_key: Option<Arc<SigningKey>>,
    /// When not empty, only deny records signed by one of these keys are
    /// applied, and bare KV deletes are ignored.
    pub verify_keys: Vec<VerifyKey>,
    /// Most deny rules held; records beyond are refused (as the API's cap).
    pub max_rules: usize,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one bucket operation may take before it counts as failed.
    pub request_timeout: Duration,
    /// How long a node holds the lease to fetch a revocation source for
    /// the fleet; also the refresh window within which the fleet asks the
    /// CA for a source once (default 60 s).
    pub fetch_lease: Duration,
    /// Largest revocation body taken from the bus (default 64 MiB).
    pub max_shared_bytes: usize,
}

impl ClusterConfig {
    /// Settings for `servers` with node id `node_id`; fleet `vigil`, no
    /// credentials, one replica, unsigned rules.
    pub fn new(servers: Vec<String>, node_id: String) -> Self {
        Self {
            servers,
            fleet: "vigil".into(),
            node_id,
            auth: Auth::None,
            tls_ca: None,
            replicas: 1,
            signing_key: None,
            verify_keys: Vec::new(),
            max_rules: 10_000,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            fetch_lease: Duration::from_secs(60),
            max_shared_bytes: 64 * 1024 * 1024,
        }
    }

    /// Checks the settings; the error names the one at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("cluster: no NATS server given".into());
        }
        for s in &self.servers {
            let rest = s
                .strip_prefix("nats://")
                .or_else(|| s.strip_prefix("tls://"))
                .ok_or_else(|| {
                    format!("cluster: '{s}' is not nats://HOST:PORT or tls://HOST:PORT")
                })?;
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(format!("cluster: '{s}' names no host"));
            }
        }
        check_token("cluster fleet", &self.fleet, 32)?;
        check_token("node id", &self.node_id, 64)?;
        if self.fetch_lease < Duration::from_secs(1)
            || self.fetch_lease > Duration::from_secs(86_400)
        {
            return Err("cluster: the fetch lease is 1 s to 1 day".into());
        }
        if !(1..=5).contains(&self.replicas) {
            return Err("cluster: replicas must be 1 to 5".into());
        }
        Ok(())
    }

    /// The keys records are checked with: the configured ones plus the
    /// signing key's own.
    pub(crate) fn effective_verify_keys(&self) -> Vec<VerifyKey> {
        let mut keys = self.verify_keys.clone();
        if let Some(k) = &self.signing_key {
            let own = k.verify_key();
            if !keys.contains(&own) {
                keys.push(own);
            }
        }
        keys
    }
}

/// A subject token and bucket-name part: `[A-Za-z0-9_-]{1,max}`.
fn check_token(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty()
        || value.len() > max
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "{what} '{value}': 1 to {max} of A-Z, a-z, 0-9, '_', '-'"
        ));
    }
    Ok(())
}

/// The default node id: the host name (cut to what a subject token allows)
/// and a random suffix. With a data directory the suffix is kept there
/// (`node-id`), so a node keeps its name across restarts and two nodes on
/// one host differ.
pub fn default_node_id(data_dir: Option<&Path>) -> std::io::Result<String> {
    if let Some(dir) = data_dir {
        let path = dir.join("node-id");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let id = text.trim().to_owned();
            if check_token("node id", &id, 64).is_ok() {
                return Ok(id);
            }
        }
        let id = fresh_node_id();
        std::fs::create_dir_all(dir)?;
        std::fs::write(&path, format!("{id}\n"))?;
        return Ok(id);
    }
    Ok(fresh_node_id())
}

fn fresh_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "vigil".into());
    let mut name: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(55)
        .collect();
    if name.is_empty() {
        name.push_str("vigil");
    }
    let mut suffix = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut suffix);
    format!("{name}-{}", vigil_core::text::hex(&suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_node_ids_kept() {
        let ok = ClusterConfig::new(vec!["nats://127.0.0.1:4222".into()], "a-1".into());
        assert_eq!(ok.validate(), Ok(()));
        for (servers, node, fleet) in [
            (vec![], "a", "vigil"),
            (vec!["http://x:1".to_owned()], "a", "vigil"),
            (vec!["nats://x:1".to_owned()], "a.b", "vigil"),
            (vec!["nats://x:1".to_owned()], "a", "v*"),
            (vec!["nats://x:1".to_owned()], "", "vigil"),
        ] {
            let mut c = ClusterConfig::new(servers, node.into());
            c.fleet = fleet.into();
            assert!(c.validate().is_err(), "{c:?}");
        }
        let dir = tempfile::tempdir().expect("dir");
        let first = default_node_id(Some(dir.path())).expect("id");
        assert_eq!(default_node_id(Some(dir.path())).expect("id"), first);
        let other = tempfile::tempdir().expect("dir");
        assert_ne!(default_node_id(Some(other.path())).expect("id"), first);
        assert!(check_token("node id", &first, 64).is_ok(), "{first}");
    }
}
