//! `vigil serve` settings in two steps (raw flags, then checked settings):
//! each setting comes from the flag, else the `VIGIL_*` environment variable
//! (clap reads both: flag > environment), else the TOML `--config` file,
//! else the default. Everything is validated before the sidecar starts, with
//! an error that names the setting and where its value came from.
//!
//! The flags are declared in `args`, the file's keys in `file`; this module
//! merges them with the defaults and checks the result.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use vigil_core::RevocationPolicy;

use super::args::{LogLevel, ServeArgs};
use super::file::{parent_dir, read_file_config, FileConfig, OneOrMany};
use crate::verify::PolicyArg;
use crate::UsageError;

/// The default tolerated clock difference, seconds (as `VerifierConfig`'s).
const DEFAULT_CLOCK_SKEW_SECS: u64 = 300;
use vigil_runtime::Cidr;

/// Default listen address: loopback only.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Default data directory (the sled store).
pub(crate) const DEFAULT_DATA_DIR: &str = "./vigil-data";
const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
const DEFAULT_KEEP_ALIVE_SECS: u64 = 15;
const DEFAULT_EVENT_BACKLOG: u64 = 8192;

/// The fetch destination rules: flag or environment, else the file's
/// `[fetch]` table, else none (only the default denials).
fn fetch_rules(
    flag_or_env: Vec<Cidr>,
    file: Option<Vec<String>>,
    key: &str,
) -> Result<Vec<Cidr>, UsageError> {
    if !flag_or_env.is_empty() {
        return Ok(flag_or_env);
    }
    file.unwrap_or_default()
        .iter()
        .map(|text| {
            text.parse::<Cidr>()
                .map_err(|e| UsageError(format!("{key} (config file): {e}")))
        })
        .collect()
}
// --- end fetch destinations ---

/// Checked settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) anchors: Vec<PathBuf>,
    pub(crate) policy: RevocationPolicy,
    pub(crate) api_token: Option<String>,
    /// The token was given on the command line (`ps` shows it).
    pub(crate) token_on_command_line: bool,
    pub(crate) insecure_no_auth: bool,
    pub(crate) metrics_auth: bool,
    pub(crate) max_connections: usize,
    pub(crate) max_subscribers: usize,
    pub(crate) max_deny_rules: usize,
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    pub(crate) max_body_bytes: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) event_backlog: usize,
    pub(crate) log_level: LogLevel,
    /// The longest time between two fetches of a source, seconds (None:
    /// the engine's default).
    pub(crate) refresh_interval: Option<u64>,
    /// Tolerated clock difference, seconds.
    pub(crate) clock_skew: u64,
    pub(crate) bench_echo: bool,
    pub(crate) fetch_deny: Vec<Cidr>,
    pub(crate) fetch_allow: Vec<Cidr>,
    pub(crate) cluster: Option<vigil_cluster::ClusterConfig>,
}

impl Settings {
    /// Merges flags/environment with the config file and defaults, and
    /// validates the result.
    pub(crate) fn resolve(mut args: ServeArgs) -> Result<Self, UsageError> {
        let cluster_args = super::cluster::ClusterArgs::take(&mut args);
        let (mut file, base) = match &args.common.config {
            Some(path) => (read_file_config(path)?, parent_dir(path)),
            None => (FileConfig::default(), PathBuf::from(".")),
        };
        let in_file = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut from = Origins::default();

        let listen_text = pick(&mut from, "listen", args.listen, file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
            UsageError(format!(
                "listen{}: '{listen_text}' is not an address such as 127.0.0.1:8787",
                from.of("listen")
            ))
        })?;

        let data_dir = pick(
            &mut from,
            "data-dir",
            args.common.data_dir,
            file.data_dir.map(in_file),
        )
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));

        let anchors = if !args.common.anchor.is_empty() {
            args.common.anchor
        } else {
            match file.anchor {
                Some(OneOrMany::One(p)) => vec![in_file(p)],
                Some(OneOrMany::Many(ps)) => ps.into_iter().map(in_file).collect(),
                None => Vec::new(),
            }
        };
        let anchors: Vec<PathBuf> = anchors
            .into_iter()
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if anchors.is_empty() {
            return Err(UsageError(
                "no trust anchors: give --anchor FILE (or VIGIL_ANCHOR, or anchor = [...] in the \
                 config file)"
                    .into(),
            ));
        }

        let policy = match (args.common.revocation, file.revocation) {
            (Some(p), _) => p.policy(),
            (None, Some(text)) => PolicyArg::from_str(text.trim(), false)
                .map_err(|_| {
                    UsageError(format!(
                        "revocation (config file): '{text}' is not one of off, prefer, require"
                    ))
                })?
                .policy(),
            (None, None) => RevocationPolicy::Require,
        };

        let token_on_command_line = args.common.api_token.is_some();
        let api_token = resolve_token(
            args.common.api_token,
            args.common.api_token_file,
            file.api_token,
            file.api_token_file.map(in_file),
        )?;
        let insecure_no_auth = args
            .insecure_no_auth
            .or(file.insecure_no_auth)
            .unwrap_or(false);
        let metrics_auth = args.metrics_auth.or(file.metrics_auth).unwrap_or(false);
        if api_token.is_none() && !listen.ip().is_loopback() && !insecure_no_auth {
            return Err(UsageError(format!(
                "listen{}: {listen} is not a loopback address, and no API token is set: give \
                 one with --api-token-file FILE or VIGIL_API_TOKEN (or serve it open with \
                 --insecure-no-auth)",
                from.of("listen")
            )));
        }
        if metrics_auth && api_token.is_none() {
            return Err(UsageError(
                "metrics-auth needs an API token (--api-token-file FILE or VIGIL_API_TOKEN)".into(),
            ));
        }
        let max_connections = bounded(
            "max-connections",
            pick(
                &mut from,
                "max-connections",
                args.max_connections,
                file.max_connections,
            ),
            vigil_sidecar::DEFAULT_MAX_CONNECTIONS as u64,
            1..=10_000_000,
            &from,
        )?;
        let refresh_interval = pick(
            &mut from,
            "refresh-interval",
            args.common.refresh_interval,
            file.refresh_interval,
        )
        .map(|secs| bounded("refresh-interval", Some(secs), secs, 1..=86_400, &from))
        .transpose()?;
        let clock_skew = bounded(
            "clock-skew",
            pick(
                &mut from,
                "clock-skew",
                args.common.clock_skew,
                file.clock_skew,
            ),
            DEFAULT_CLOCK_SKEW_SECS,
            0..=3600,
            &from,
        )?;
        let max_subscribers = bounded(
            "max-subscribers",
            pick(
                &mut from,
                "max-subscribers",
                args.max_subscribers,
                file.max_subscribers,
            ),
            vigil_sidecar::DEFAULT_MAX_SUBSCRIBERS as u64,
            1..=100_000,
            &from,
        )?;
        let max_deny_rules = bounded(
            "max-deny-rules",
            pick(
                &mut from,
                "max-deny-rules",
                args.max_deny_rules,
                file.max_deny_rules,
            ),
            vigil_sidecar::DEFAULT_MAX_DENY_RULES as u64,
            1..=1_000_000,
            &from,
        )?;

        let tls_cert = pick(
            &mut from,
            "tls-cert",
            args.tls_cert,
            file.tls_cert.map(in_file),
        );
        let tls_key = pick(
            &mut from,
            "tls-key",
            args.tls_key,
            file.tls_key.map(in_file),
        );
        let tls = match (tls_cert, tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(UsageError(
                    "tls-cert and tls-key go together: give both or neither".into(),
                ))
            }
        };

        let max_body = bounded(
            "max-body-bytes",
            pick(
                &mut from,
                "max-body-bytes",
                args.max_body_bytes,
                file.max_body_bytes,
            ),
            DEFAULT_MAX_BODY,
            4096..=64 * 1024 * 1024,
            &from,
        )?;
        let keep_alive = bounded(
            "sse-keep-alive",
            pick(
                &mut from,
                "sse-keep-alive",
                args.sse_keep_alive,
                file.sse_keep_alive,
            ),
            DEFAULT_KEEP_ALIVE_SECS,
            1..=3600,
            &from,
        )?;
        let backlog = bounded(
            "event-backlog",
            pick(
                &mut from,
                "event-backlog",
                args.event_backlog,
                file.event_backlog,
            ),
            DEFAULT_EVENT_BACKLOG,
            16..=1_048_576,
            &from,
        )?;
        let log_level = pick(
            &mut from,
            "log-level",
            args.common.log_level,
            file.log_level,
        )
        .unwrap_or(LogLevel::Info);

        // --- fetch destinations (issue 11) ---
        let file_fetch = file.fetch.unwrap_or_default();
        let cluster =
            super::cluster::resolve(cluster_args, file.cluster.take(), &in_file, &data_dir)?;
        let fetch_deny = fetch_rules(args.common.fetch_deny, file_fetch.deny, "fetch.deny")?;
        let fetch_allow = fetch_rules(args.common.fetch_allow, file_fetch.allow, "fetch.allow")?;
        // --- end fetch destinations ---

        Ok(Self {
            listen,
            data_dir,
            anchors,
            policy,
            api_token,
            token_on_command_line,
            insecure_no_auth,
            metrics_auth,
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            max_subscribers: usize::try_from(max_subscribers).unwrap_or(usize::MAX),
            max_deny_rules: usize::try_from(max_deny_rules).unwrap_or(usize::MAX),
            tls,
            max_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
            keep_alive: Duration::from_secs(keep_alive),
            event_backlog: usize::try_from(backlog).unwrap_or(usize::MAX),
            log_level,
            refresh_interval,
            clock_skew,
            bench_echo: args.bench_echo,
            fetch_deny,
            fetch_allow,
            cluster,
        })
    }
}

impl Settings {
    /// What the sidecar takes.
    pub(crate) fn serve_config(self) -> vigil_sidecar::ServeConfig {
        vigil_sidecar::ServeConfig {
            listen: self.listen,
            data_dir: self.data_dir,
            anchors: self.anchors,
            tls: self.tls,
            fetch: vigil_runtime::FetchConfig::default()
                .with_deny(self.fetch_deny)
                .with_allow(self.fetch_allow),
            insecure_no_auth: self.insecure_no_auth,
            cluster: self.cluster,
            refresh: match self.refresh_interval {
                Some(secs) => vigil_runtime::RefreshPolicy::default()
                    .with_max_interval_secs(i64::try_from(secs).unwrap_or(i64::MAX)),
                None => vigil_runtime::RefreshPolicy::default(),
            },
            verifier: vigil_core::VerifierConfig::default()
                .with_clock_skew_secs(i64::try_from(self.clock_skew).unwrap_or(i64::MAX)),
            sidecar: vigil_sidecar::SidecarConfig::default()
                .with_policy(self.policy)
                .with_api_token(self.api_token)
                .with_metrics_auth(self.metrics_auth)
                .with_max_connections(self.max_connections)
                .with_max_subscribers(self.max_subscribers)
                .with_max_deny_rules(self.max_deny_rules)
                .with_max_body_bytes(self.max_body_bytes)
                .with_sse_keep_alive(self.keep_alive)
                .with_event_backlog(self.event_backlog)
                .with_bench_echo(self.bench_echo),
        }
    }
}

/// Where each setting came from, for error messages.
#[derive(Default)]
struct Origins(BTreeMap<&'static str, &'static str>);

impl Origins {
    fn of(&self, key: &str) -> String {
        self.0
            .get(key)
            .map(|o| format!(" ({o})"))
            .unwrap_or_default()
    }
}

/// The flag/environment value, else the file's.
fn pick<T>(
    from: &mut Origins,
    key: &'static str,
    flag_or_env: Option<T>,
    file: Option<T>,
) -> Option<T> {
    match (flag_or_env, file) {
        (Some(v), _) => {
            from.0.insert(key, "flag or environment");
            Some(v)
        }
        (None, Some(v)) => {
            from.0.insert(key, "config file");
            Some(v)
        }
        (None, None) => None,
    }
}

fn bounded(
    key: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    from: &Origins,
) -> Result<u64, UsageError> {
    let v = value.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(UsageError(format!(
            "{key}{}: {v} is outside {}..={}",
            from.of(key),
            range.start(),
            range.end()
        )))
    }
}

/// The token: `--api-token` (flag) > `--api-token-file` (flag or
/// `VIGIL_API_TOKEN_FILE`) > `VIGIL_API_TOKEN` > the file's `api-token-file`
/// > its `api-token`. Giving two of one level is an error.
fn resolve_token(
    flag_token: Option<String>,
    flag_token_file: Option<PathBuf>,
    file_token: Option<String>,
    file_token_file: Option<PathBuf>,
) -> Result<Option<String>, UsageError> {
    if flag_token.is_some() && flag_token_file.is_some() {
        return Err(UsageError(
            "api-token and api-token-file: give one of them".into(),
        ));
    }
    let (token, origin) = if let Some(t) = flag_token {
        (Some(t), "--api-token".to_owned())
    } else if let Some(path) = &flag_token_file {
        (
            Some(read_token_file(path)?),
            format!("api-token-file {}", path.display()),
        )
    } else if let Some(t) = std::env::var_os("VIGIL_API_TOKEN") {
        let t = t
            .into_string()
            .map_err(|_| UsageError("VIGIL_API_TOKEN: not UTF-8".into()))?;
        (Some(t), "VIGIL_API_TOKEN".to_owned())
    } else if let Some(path) = &file_token_file {
        (
            Some(read_token_file(path)?),
            format!("api-token-file {} (config file)", path.display()),
        )
    } else {
        (file_token, "api-token (config file)".to_owned())
    };
    if let Some(token) = &token {
        check_token(token).map_err(|e| UsageError(format!("{origin}: {e}")))?;
    }
    Ok(token)
}

/// The token in `path`: one trailing newline (LF or CRLF) is dropped.
fn read_token_file(path: &Path) -> Result<String, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("api-token-file {}: {e}", path.display())))?;
    let token = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    Ok(token.to_owned())
}

/// RFC 6750 §2.1: a bearer token is a b64token.
fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err(
            "a bearer token may hold only letters, digits and - . _ ~ + / (then = padding)".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn args(list: &[&str]) -> ServeArgs {
        // Environment variables are read by clap too; tests that need them
        // run the binary (tests/serve_config.rs).
        Wrap::try_parse_from(std::iter::once("serve").chain(list.iter().copied()))
            .unwrap()
            .args
    }

    fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_are_loopback_and_require() {
        let s = Settings::resolve(args(&["--anchor", "a.pem"])).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert!(s.listen.ip().is_loopback());
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(s.policy, RevocationPolicy::Require);
        assert!(s.api_token.is_none());
        assert_eq!(s.keep_alive, Duration::from_secs(15));
        assert_eq!(s.serve_config().verifier.clock_skew_secs, 300);
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let (dir, path) = config(
            "listen = \"127.0.0.1:9000\"\nanchor = [\"root.pem\"]\nrevocation = \"prefer\"\n\
             api-token = \"file-token\"\ndata-dir = \"data\"\nclock-skew = 30\n",
        );
        let p = path.to_str().unwrap();
        let s = Settings::resolve(args(&["--config", p])).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.anchors, vec![dir.path().join("root.pem")]);
        assert_eq!(s.data_dir, dir.path().join("data"));
        assert_eq!(s.policy, RevocationPolicy::Prefer);
        assert_eq!(s.api_token.as_deref(), Some("file-token"));
        assert_eq!(s.clock_skew, 30);
        let s = Settings::resolve(args(&[
            "--config",
            p,
            "--listen",
            "127.0.0.1:9001",
            "--revocation",
            "off",
            "--api-token",
            "flag-token",
            "--anchor",
            "/x.pem",
            "--clock-skew",
            "0",
        ]))
        .unwrap();
        assert_eq!(s.listen.port(), 9001);
        assert_eq!(s.policy, RevocationPolicy::Off);
        assert_eq!(s.api_token.as_deref(), Some("flag-token"));
        assert_eq!(s.anchors, vec![PathBuf::from("/x.pem")]);
        assert_eq!(s.serve_config().verifier.clock_skew_secs, 0);
    }

    #[test]
    fn a_non_loopback_listen_needs_a_token_or_insecure_no_auth() {
        let err = |list: &[&str]| Settings::resolve(args(list)).unwrap_err().0;
        let e = err(&["--anchor", "a", "--listen", "0.0.0.0:8787"]);
        assert!(
            e.contains("not a loopback address") && e.contains("--insecure-no-auth"),
            "{e}"
        );
        let s = Settings::resolve(args(&[
            "--anchor",
            "a",
            "--listen",
            "0.0.0.0:8787",
            "--insecure-no-auth",
        ]))
        .unwrap();
        assert!(s.insecure_no_auth && s.api_token.is_none());
        let s = Settings::resolve(args(&[
            "--anchor",
            "a",
            "--listen",
            "0.0.0.0:8787",
            "--api-token",
            "t0ken",
        ]))
        .unwrap();
        assert!(s.token_on_command_line);
        let (_dir, path) = config("listen = \"[::]:8787\"\ninsecure-no-auth = true\n");
        assert!(
            Settings::resolve(args(&["--config", path.to_str().unwrap(), "--anchor", "a"])).is_ok()
        );
        let e = err(&["--anchor", "a", "--metrics-auth"]);
        assert!(e.contains("metrics-auth needs an API token"), "{e}");
    }

    #[test]
    fn the_token_file_loses_one_newline_and_may_not_be_empty() {
        let (dir, _) = config("");
        let file = dir.path().join("token");
        std::fs::write(&file, "abc123\r\n").unwrap();
        let f = file.to_str().unwrap();
        let s = Settings::resolve(args(&["--anchor", "a", "--api-token-file", f])).unwrap();
        assert_eq!(s.api_token.as_deref(), Some("abc123"));
        assert!(!s.token_on_command_line);
        std::fs::write(&file, "\n").unwrap();
        let e = Settings::resolve(args(&["--anchor", "a", "--api-token-file", f]))
            .unwrap_err()
            .0;
        assert!(e.contains("empty"), "{e}");
        let e = Settings::resolve(args(&[
            "--anchor",
            "a",
            "--api-token-file",
            f,
            "--api-token",
            "x",
        ]))
        .unwrap_err()
        .0;
        assert!(e.contains("give one of them"), "{e}");
        let (_dir, path) = config("api-token-file = \"tok\"\n");
        std::fs::write(path.parent().unwrap().join("tok"), "from-file\n").unwrap();
        let s = Settings::resolve(args(&["--config", path.to_str().unwrap(), "--anchor", "a"]))
            .unwrap();
        assert_eq!(s.api_token.as_deref(), Some("from-file"));
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let err = |list: &[&str]| Settings::resolve(args(list)).unwrap_err().0;
        assert!(err(&[]).contains("no trust anchors"));
        assert!(err(&["--anchor", "a", "--listen", "nope"]).contains("'nope' is not an address"));
        assert!(err(&["--anchor", "a", "--tls-cert", "c"]).contains("go together"));
        assert!(err(&["--anchor", "a", "--api-token", "has space"]).contains("bearer token"));
        assert!(err(&["--anchor", "a", "--max-body-bytes", "1"]).contains("outside"));
        let (_dir, path) = config("listne = \"x\"\n");
        let e = err(&["--config", path.to_str().unwrap(), "--anchor", "a"]);
        assert!(e.contains("unknown field") && e.contains("listne"), "{e}");
        let (_dir, path) = config("revocation = \"maybe\"\n");
        let e = err(&["--config", path.to_str().unwrap(), "--anchor", "a"]);
        assert!(e.contains("'maybe' is not one of"), "{e}");
        let (_dir, path) = config("listen = \"bad\"\n");
        let e = err(&["--config", path.to_str().unwrap(), "--anchor", "a"]);
        assert!(e.contains("(config file)"), "{e}");
    }

    #[test]
    fn fetch_rules_come_from_flags_else_the_file() {
        let (_dir, path) = config(
            "[fetch]\ndeny = [\"10.0.0.0/8\", \"fd00::/8\"]\nallow = [\"169.254.10.0/24\"]\n",
        );
        let p = path.to_str().unwrap();
        let s = Settings::resolve(args(&["--config", p, "--anchor", "a"])).unwrap();
        let shown = |v: &[Cidr]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(shown(&s.fetch_deny), ["10.0.0.0/8", "fd00::/8"]);
        assert_eq!(shown(&s.fetch_allow), ["169.254.10.0/24"]);
        let s = Settings::resolve(args(&[
            "--config",
            p,
            "--anchor",
            "a",
            "--fetch-deny",
            "127.0.0.2",
            "--fetch-deny",
            "192.168.0.0/16",
        ]))
        .unwrap();
        assert_eq!(shown(&s.fetch_deny), ["127.0.0.2/32", "192.168.0.0/16"]);
        assert_eq!(shown(&s.fetch_allow), ["169.254.10.0/24"]);
        assert_eq!(s.serve_config().fetch.deny.len(), 2);

        let err = |text: &str| {
            let (_dir, path) = config(text);
            Settings::resolve(args(&["--config", path.to_str().unwrap(), "--anchor", "a"]))
                .unwrap_err()
                .0
        };
        let e = err("[fetch]\ndeny = [\"10.0.0.1/8\"]\n");
        assert!(e.contains("fetch.deny (config file)"), "{e}");
        let e = err("[fetch]\nallow = [\"nope\"]\n");
        assert!(e.contains("fetch.allow (config file)"), "{e}");
        let e = err("[fetch]\ndenny = []\n");
        assert!(e.contains("unknown field"), "{e}");
        assert!(Wrap::try_parse_from(["serve", "--fetch-deny", "10.0.0.0/33"]).is_err());
    }
}
