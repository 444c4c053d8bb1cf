//! Fleet-mode settings of `vigil serve`: `--cluster` and friends, or the
//! config file's `[cluster]` table (flags and environment win, key by key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_cluster::{Auth, ClusterConfig, SigningKey, VerifyKey};

use super::args::ServeArgs;
use super::file::{FileCluster, OneOrMany, OneOrManyText};
use crate::UsageError;

/// The flags of fleet mode, taken out of [`ServeArgs`].
pub(super) struct ClusterArgs {
    servers: Vec<String>,
    node_id: Option<String>,
    fleet: Option<String>,
    verify_keys: Vec<PathBuf>,
    signing_key: Option<PathBuf>,
}

impl ClusterArgs {
    pub(super) fn take(args: &mut ServeArgs) -> Self {
        Self {
            servers: std::mem::take(&mut args.common.cluster),
            node_id: args.common.node_id.take(),
            fleet: args.common.fleet.take(),
            verify_keys: std::mem::take(&mut args.common.deny_verify_key),
            signing_key: args.common.deny_signing_key.take(),
        }
    }
}

/// Fleet mode's settings, or none when no server is given.
pub(super) fn resolve(
    args: ClusterArgs,
    file: Option<FileCluster>,
    in_file: &dyn Fn(PathBuf) -> PathBuf,
    data_dir: &Path,
) -> Result<Option<ClusterConfig>, UsageError> {
    let file = file.unwrap_or_default();
    let servers: Vec<String> = if args.servers.is_empty() {
        match file.servers {
            Some(OneOrManyText::One(s)) => s.split(',').map(str::to_owned).collect(),
            Some(OneOrManyText::Many(v)) => v,
            None => Vec::new(),
        }
    } else {
        args.servers
    };
    let servers: Vec<String> = servers
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        let set_without_servers = args.node_id.is_some()
            || args.fleet.is_some()
            || !args.verify_keys.is_empty()
            || args.signing_key.is_some();
        if set_without_servers {
            return Err(UsageError(
                "--node-id, --fleet and the deny keys are for fleet mode: give --cluster \
                 nats://HOST:PORT too"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let node_id = match args.node_id.or(file.node_id) {
        Some(id) => id,
        None => vigil_cluster::default_node_id(Some(data_dir))
            .map_err(|e| UsageError(format!("node id: data-dir {}: {e}", data_dir.display())))?,
    };
    let mut config = ClusterConfig::new(servers, node_id);
    if let Some(fleet) = args.fleet.or(file.fleet) {
        config.fleet = fleet;
    }
    let read_secret = |what: &str, path: PathBuf| {
        std::fs::read_to_string(in_file(path.clone()))
            .map(|t| t.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| UsageError(format!("cluster {what} {}: {e}", path.display())))
    };
    let auths = [
        file.credentials.is_some(),
        file.nkey_file.is_some(),
        file.user.is_some(),
        file.token_file.is_some(),
    ];
    if auths.iter().filter(|a| **a).count() > 1 {
        return Err(UsageError(
            "[cluster]: give one of credentials, nkey-file, user (with password-file), token-file"
                .into(),
        ));
    }
    config.auth = if let Some(creds) = file.credentials {
        Auth::CredentialsFile(in_file(creds))
    } else if let Some(nkey) = file.nkey_file {
        Auth::Nkey(read_secret("nkey-file", nkey)?)
    } else if let Some(user) = file.user {
        let password = file
            .password_file
            .ok_or_else(|| UsageError("[cluster]: user needs password-file".into()))?;
        Auth::UserPassword {
            user,
            password: read_secret("password-file", password)?,
        }
    } else if let Some(token) = file.token_file {
        Auth::Token(read_secret("token-file", token)?)
    } else {
        Auth::None
    };
    config.tls_ca = file.tls_ca.map(in_file);
    if let Some(secs) = file.fetch_lease_secs {
        config.fetch_lease = std::time::Duration::from_secs(secs);
    }
    if let Some(replicas) = file.replicas {
        config.replicas = usize::try_from(replicas).unwrap_or(usize::MAX);
    }
    let signing = args
        .signing_key
        .or_else(|| file.deny_signing_key.map(in_file));
    if let Some(path) = signing {
        config.signing_key = Some(Arc::new(
            SigningKey::from_pem_file(&path)
                .map_err(|e| UsageError(format!("deny-signing-key: {e}")))?,
        ));
    }
    let verify: Vec<PathBuf> = if args.verify_keys.is_empty() {
        match file.deny_verify_key {
            Some(OneOrMany::One(p)) => vec![in_file(p)],
            Some(OneOrMany::Many(v)) => v.into_iter().map(in_file).collect(),
            None => Vec::new(),
        }
    } else {
        args.verify_keys
    };
    for path in verify {
        config.verify_keys.push(
            VerifyKey::from_pem_file(&path)
                .map_err(|e| UsageError(format!("deny-verify-key: {e}")))?,
        );
    }
    config.validate().map_err(UsageError)?;
    Ok(Some(config))
}
