//! `vigil proxy` settings: the routes (one from the flags, more from the
//! config file's `[[proxy]]` tables), the limits, and everything shared
//! with `vigil serve` (data dir, anchors, policy, token, fetch, fleet),
//! resolved by `vigil serve`'s own code with the admin address as its
//! listen address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_core::Usage;

use super::allow::{AllowList, AllowSpec};
use super::args::ProxyArgs;
use crate::serve::file::{parent_dir, read_file_config, FileConfig};
use crate::serve::{ServeArgs, Settings};
use crate::verify::UsageArg;
use crate::UsageError;

/// Default of `--handshake-timeout`, seconds.
const DEFAULT_HANDSHAKE_SECS: u64 = 10;

/// A `[[proxy]]` table of the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileProxy {
    listen: Option<String>,
    target: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client: Option<bool>,
    name: Option<String>,
    target_tls: Option<bool>,
    target_ca: Option<PathBuf>,
    usage: Option<UsageArg>,
    allow_dns: Option<Vec<String>>,
    allow_uri: Option<Vec<String>>,
    allow_subject: Option<Vec<String>>,
    allow_spki_sha256: Option<Vec<String>>,
    proxy_protocol: Option<String>,
}

/// Which side of TLS the proxy is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Accepts mutual TLS, speaks plain (or `--target-tls`) to the target.
    Server,
    /// Accepts plain TCP, speaks mutual TLS to the target.
    Client,
}

/// One listen/target pair, checked.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) mode: Mode,
    pub(crate) listen: SocketAddr,
    /// HOST:PORT as given.
    pub(crate) target: String,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// Client mode: the name the server's certificate must carry.
    pub(crate) name: String,
    pub(crate) target_tls: bool,
    pub(crate) target_ca: Option<PathBuf>,
    pub(crate) usage: Usage,
    pub(crate) allow: AllowSpec,
    pub(crate) proxy_protocol: bool,
    /// Which `[[proxy]]` table of the config file it comes from (None:
    /// the flags): how a reload finds it.
    pub(crate) table: Option<usize>,
}

/// Everything `vigil proxy` runs with.
#[derive(Debug)]
pub(crate) struct ProxySettings {
    pub(crate) routes: Vec<Route>,
    pub(crate) shared: Settings,
    /// The admin API is served (at `shared.listen`).
    pub(crate) admin: bool,
    pub(crate) handshake_timeout: Duration,
    /// None: never.
    pub(crate) idle_timeout: Option<Duration>,
    /// Read again on SIGHUP for the allow rules.
    pub(crate) config: Option<PathBuf>,
    /// max-connections was set (flag, environment or file), not defaulted.
    pub(crate) max_connections_set: bool,
}

impl ProxySettings {
    pub(crate) fn resolve(args: ProxyArgs) -> Result<Self, UsageError> {
        let config = args.common.config.clone();
        let (file, base) = match &config {
            Some(path) => (read_file_config(path)?, parent_dir(path)),
            None => (FileConfig::default(), PathBuf::from(".")),
        };
        if file.listen.is_some() {
            return Err(UsageError(
                "listen (config file): in a proxy's config, listen addresses go in [[proxy]] \
                 tables and the admin API's in admin"
                    .into(),
            ));
        }
        let admin_text = args.admin.clone().or(file.admin.clone());
        let handshake = args
            .handshake_timeout
            .or(file.handshake_timeout)
            .unwrap_or(DEFAULT_HANDSHAKE_SECS);
        if !(1..=3600).contains(&handshake) {
            return Err(UsageError(format!(
                "handshake-timeout: {handshake} is not within 1..=3600 seconds"
            )));
        }
        let idle = args.idle_timeout.or(file.idle_timeout).unwrap_or(0);
        if idle > 30 * 24 * 3600 {
            return Err(UsageError(format!(
                "idle-timeout: {idle} is more than 30 days"
            )));
        }
        let mut routes = Vec::new();
        if let Some(route) = flag_route(&args)? {
            routes.push(route);
        }
        for (i, table) in file
            .proxy
            .clone()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            routes.push(file_route(table, &base, i)?);
        }
        if routes.is_empty() {
            return Err(UsageError(
                "nothing to proxy: give --listen, --target, --cert and --key (or [[proxy]] \
                 tables in the --config file)"
                    .into(),
            ));
        }
        for (i, a) in routes.iter().enumerate() {
            if a.listen.port() != 0 && routes[..i].iter().any(|b| b.listen == a.listen) {
                return Err(UsageError(format!("listen {}: given twice", a.listen)));
            }
        }
        let max_connections_set = args.max_connections.is_some() || file.max_connections.is_some();
        let serve = ServeArgs {
            common: args.common,
            // The admin API is the sidecar's listener, set below; a
            // loopback placeholder here so that the token rule is the
            // proxy's own (this has no --insecure-no-auth).
            listen: Some("127.0.0.1:0".into()),
            max_connections: args.max_connections,
            ..ServeArgs::default()
        };
        let mut shared = Settings::resolve(serve)?;
        if let Some(text) = &admin_text {
            let admin: SocketAddr = text.trim().parse().map_err(|_| {
                UsageError(format!(
                    "admin: '{text}' is not an address such as 127.0.0.1:9901"
                ))
            })?;
            if shared.api_token.is_none() && !admin.ip().is_loopback() {
                return Err(UsageError(format!(
                    "admin: {admin} is not a loopback address, and no API token is set: give \
                     one with --api-token-file FILE or VIGIL_API_TOKEN"
                )));
            }
            shared.listen = admin;
        }
        Ok(Self {
            routes,
            shared,
            admin: admin_text.is_some(),
            handshake_timeout: Duration::from_secs(handshake),
            idle_timeout: (idle > 0).then(|| Duration::from_secs(idle)),
            config,
            max_connections_set,
        })
    }
}

/// The `[[proxy]]` tables of `config` as they are now (SIGHUP), checked.
pub(crate) fn reload_routes(config: &Path) -> Result<Vec<Route>, String> {
    let file = read_file_config(config).map_err(|e| e.0)?;
    let base = parent_dir(config);
    file.proxy
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, table)| file_route(table, &base, i).map_err(|e| e.0))
        .collect()
}

fn flag_route(args: &ProxyArgs) -> Result<Option<Route>, UsageError> {
    let Some(listen) = &args.listen else {
        let stray = args.target.is_some() || args.cert.is_some() || args.key.is_some();
        if stray {
            return Err(UsageError(
                "--target, --cert and --key need --listen".into(),
            ));
        }
        return Ok(None);
    };
    let raw = FileProxy {
        listen: Some(listen.clone()),
        target: args.target.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
        client: Some(args.client),
        name: args.name.clone(),
        target_tls: Some(args.target_tls),
        target_ca: args.target_ca.clone(),
        usage: args.usage,
        allow_dns: Some(args.allow_dns.clone()),
        allow_uri: Some(args.allow_uri.clone()),
        allow_subject: Some(args.allow_subject.clone()),
        allow_spki_sha256: Some(args.allow_spki_sha256.clone()),
        proxy_protocol: args.proxy_protocol.clone(),
    };
    route(raw, &|p| p, "--", None).map(Some)
}

fn file_route(table: FileProxy, base: &Path, index: usize) -> Result<Route, UsageError> {
    let in_file = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    route(
        table,
        &in_file,
        &format!("[[proxy]] #{} ", index + 1),
        Some(index),
    )
}

fn route(
    raw: FileProxy,
    in_file: &dyn Fn(PathBuf) -> PathBuf,
    at: &str,
    table: Option<usize>,
) -> Result<Route, UsageError> {
    let need = |v: Option<String>, key: &str| {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| UsageError(format!("{at}{key} is required")))
    };
    let listen_text = need(raw.listen, "listen")?;
    let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
        UsageError(format!(
            "{at}listen: '{listen_text}' is not an address such as 127.0.0.1:8443"
        ))
    })?;
    let target = need(raw.target, "target")?.trim().to_owned();
    let host = target_host(&target)
        .ok_or_else(|| UsageError(format!("{at}target: '{target}' is not HOST:PORT")))?;
    let cert = raw
        .cert
        .map(in_file)
        .ok_or_else(|| UsageError(format!("{at}cert is required")))?;
    let key = raw
        .key
        .map(in_file)
        .ok_or_else(|| UsageError(format!("{at}key is required")))?;
    let client = raw.client.unwrap_or(false);
    let mode = if client { Mode::Client } else { Mode::Server };
    if client && !listen.ip().is_loopback() {
        return Err(UsageError(format!(
            "{at}listen: client mode accepts plain TCP, so it listens on loopback only ({listen} \
             is not)"
        )));
    }
    if client && raw.target_tls == Some(true) {
        return Err(UsageError(format!(
            "{at}target-tls: client mode always speaks TLS to the target"
        )));
    }
    if !client && raw.name.is_some() {
        return Err(UsageError(format!(
            "{at}name: only client mode checks a name"
        )));
    }
    let proxy_protocol = match raw.proxy_protocol.as_deref().map(str::trim) {
        None | Some("") | Some("none") => false,
        Some("v2") | Some("2") => true,
        Some(other) => {
            return Err(UsageError(format!(
                "{at}proxy-protocol: '{other}' is not v2"
            )))
        }
    };
    if client && proxy_protocol {
        return Err(UsageError(format!(
            "{at}proxy-protocol: client mode speaks TLS to the target; the header is for \
             backends behind a server-mode proxy"
        )));
    }
    let allow = AllowSpec {
        dns: raw.allow_dns.unwrap_or_default(),
        uri: raw.allow_uri.unwrap_or_default(),
        subject: raw.allow_subject.unwrap_or_default(),
        spki_sha256: raw.allow_spki_sha256.unwrap_or_default(),
    };
    AllowList::parse(&allow).map_err(|e| UsageError(format!("{at}{e}")))?;
    let usage = raw.usage.map(UsageArg::usage).unwrap_or(match mode {
        Mode::Server => Usage::Client,
        Mode::Client => Usage::Server,
    });
    Ok(Route {
        mode,
        listen,
        name: raw.name.unwrap_or_else(|| host.clone()),
        target,
        cert,
        key,
        target_tls: raw.target_tls.unwrap_or(false),
        target_ca: raw.target_ca.map(in_file),
        usage,
        allow,
        proxy_protocol,
        table,
    })
}

/// The host of HOST:PORT or `[V6]:PORT`.
fn target_host(target: &str) -> Option<String> {
    let (host, port) = target.rsplit_once(':')?;
    port.parse::<u16>().ok().filter(|p| *p != 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::target_host;

    #[test]
    fn targets_are_host_and_port() {
        assert_eq!(target_host("backend:80").as_deref(), Some("backend"));
        assert_eq!(target_host("[::1]:443").as_deref(), Some("::1"));
        assert_eq!(target_host("backend"), None);
        assert_eq!(target_host("backend:0"), None);
        assert_eq!(target_host(":80"), None);
    }
}
