//! `vigil deny`: the operator's deny list on a running sidecar
//! (`POST`/`GET`/`DELETE /v1/deny`), and `vigil health`, the probe the
//! container image uses.
//!
//! Exit status: 0 done, 1 the sidecar refused or could not be reached (or,
//! for `health`, is not healthy/ready), 2 usage or unreadable input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use vigil_core::text::hex;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::UsageError;

/// Where the sidecar listens unless told.
const DEFAULT_SIDECAR: &str = "http://127.0.0.1:8787";

/// Raw flags of `vigil deny`.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  vigil deny --cert-sha256 8eed95...0d88e --reason 'key leaked' --expires 2030-01-01T00:00:00Z
  vigil deny --issuer 'O=Vigil Test PKI, CN=Vigil Test Intermediate CA' --serial 79a1eb... --reason r
  vigil deny --cert client.pem --reason 'stolen laptop'
  vigil deny --list
  vigil deny --lift --cert-sha256 8eed95...0d88e
Exit status: 0 done, 1 the sidecar refused or could not be reached, 2 usage.")]
pub(crate) struct DenyArgs {
    /// The sidecar's base URL.
    #[arg(long, env = "VIGIL_SIDECAR", default_value = DEFAULT_SIDECAR, value_name = "URL")]
    sidecar: String,
    /// Bearer token of the sidecar.
    #[arg(
        long,
        env = "VIGIL_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// CA certificate (PEM) to trust for an https sidecar.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// List the deny rules.
    #[arg(long, conflicts_with_all = ["lift", "reason", "expires"])]
    list: bool,
    /// Lift the rule with the given key instead of adding one.
    #[arg(long, conflicts_with_all = ["reason", "expires"])]
    lift: bool,
    /// Issuer DN of the certificate, as verdicts show it (with --serial).
    #[arg(long, requires = "serial", value_name = "DN")]
    issuer: Option<String>,
    /// Serial number of the certificate, hex (with --issuer).
    #[arg(long, requires = "issuer", value_name = "HEX")]
    serial: Option<String>,
    /// SHA-256 of the certificate DER, hex.
    #[arg(long, value_name = "HEX")]
    cert_sha256: Option<String>,
    /// SHA-256 of the SubjectPublicKeyInfo DER, hex: every certificate with
    /// that key.
    #[arg(long, value_name = "HEX")]
    spki_sha256: Option<String>,
    /// A certificate file (PEM or DER): denies its SHA-256 (the first
    /// certificate of the file).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Why (shown in verdicts and teardown events).
    #[arg(long)]
    reason: Option<String>,
    /// When the rule stops applying, RFC 3339 (default: until lifted).
    #[arg(long, value_name = "RFC3339")]
    expires: Option<String>,
    /// Who sets the rule (shown with it; in a fleet, on every node).
    #[arg(long, env = "VIGIL_OPERATOR", value_name = "NAME", conflicts_with_all = ["lift", "list"])]
    by: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Seconds to wait for the sidecar.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    timeout: u64,
}

/// Raw flags of `vigil health`.
#[derive(Args, Debug)]
pub(crate) struct HealthArgs {
    /// The sidecar's base URL.
    #[arg(long, env = "VIGIL_SIDECAR", default_value = DEFAULT_SIDECAR, value_name = "URL")]
    url: String,
    /// Ask /readyz (ready to serve) instead of /healthz (alive).
    #[arg(long)]
    ready: bool,
    /// CA certificate (PEM) to trust for an https sidecar.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Seconds to wait.
    #[arg(long, default_value_t = 3, value_name = "SECS")]
    timeout: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// `vigil deny`.
pub(crate) fn run(args: DenyArgs) -> Result<ExitCode, UsageError> {
    let base = base_url(&args.sidecar)?;
    let key = deny_key(&args)?;
    let request = if args.list {
        if key.is_some() {
            return Err(UsageError("--list takes no key".into()));
        }
        Request::List
    } else {
        let Some(key) = key else {
            return Err(UsageError(
                "give the certificate: --issuer DN --serial HEX, --cert-sha256 HEX, \
                 --spki-sha256 HEX or --cert FILE (or --list)"
                    .into(),
            ));
        };
        if args.lift {
            Request::Lift(key)
        } else {
            let Some(reason) = args.reason.clone().filter(|r| !r.trim().is_empty()) else {
                return Err(UsageError("--reason is required".into()));
            };
            let mut body = key;
            if let Value::Object(map) = &mut body {
                map.insert("reason".into(), Value::String(reason));
                if let Some(by) = &args.by {
                    map.insert("by".into(), Value::String(by.clone()));
                }
                if let Some(expires) = &args.expires {
                    crate::verify::parse_time(expires).map_err(|_| {
                        UsageError(format!(
                            "--expires: '{expires}' is not an RFC 3339 time such as \
                             2030-01-31T12:00:00Z"
                        ))
                    })?;
                    map.insert("expires".into(), Value::String(expires.clone()));
                }
            }
            Request::Deny(body)
        }
    };
    let client = client(args.ca.as_deref(), args.timeout)?;
    let runtime = runtime()?;
    let url = format!("{base}/v1/deny");
    let outcome = runtime.block_on(async {
        let builder = match &request {
            Request::List => client.get(&url),
            Request::Deny(body) => client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_string()),
            Request::Lift(key) => client
                .delete(&url)
                .header("content-type", "application/json")
                .body(key.to_string()),
        };
        let builder = match &args.token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        };
        let response = builder.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok::<_, reqwest::Error>((status, text))
    });
    let (status, text) = match outcome {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("vigil: error: {url}: {}", describe(&e));
            return Ok(ExitCode::from(1));
        }
    };
    if !status.is_success() {
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                Some(format!(
                    "{}: {}",
                    v.get("error")?.as_str()?,
                    v.get("detail")?.as_str()?
                ))
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        eprintln!("vigil: error: the sidecar answered {status}: {detail}");
        return Ok(ExitCode::from(1));
    }
    match (&request, args.format) {
        (_, Format::Json) if !text.is_empty() => println!("{text}"),
        (Request::Lift(_), _) => println!("lifted"),
        (Request::List, Format::Text) => {
            let rules = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("rules").cloned())
                .and_then(|r| r.as_array().cloned())
                .unwrap_or_default();
            if rules.is_empty() {
                println!("no deny rules");
            }
            for rule in rules {
                println!("{}", rule_line(&rule));
            }
        }
        (Request::Deny(_), Format::Text) => {
            let rule = serde_json::from_str::<Value>(&text).unwrap_or_default();
            let what = if status.as_u16() == 201 {
                "denied"
            } else {
                "denied (rule replaced)"
            };
            println!("{what}: {}", rule_line(&rule));
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `vigil health`.
pub(crate) fn run_health(args: HealthArgs) -> Result<ExitCode, UsageError> {
    let base = base_url(&args.url)?;
    let path = if args.ready { "readyz" } else { "healthz" };
    let url = format!("{base}/{path}");
    let client = client(args.ca.as_deref(), args.timeout)?;
    let outcome = runtime()?.block_on(async {
        let response = client.get(&url).send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    });
    match outcome {
        Ok((status, _)) if status.is_success() => {
            println!("{path}: ok");
            Ok(ExitCode::SUCCESS)
        }
        Ok((status, text)) => {
            eprintln!(
                "vigil: {path}: {status}: {}",
                text.chars().take(300).collect::<String>()
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("vigil: {url}: {}", describe(&e));
            Ok(ExitCode::from(1))
        }
    }
}

enum Request {
    List,
    Deny(Value),
    Lift(Value),
}

/// The key object, `{"cert_sha256": ...}` and so on; `None` when no key
/// flag was given.
fn deny_key(args: &DenyArgs) -> Result<Option<Value>, UsageError> {
    let mut keys = Vec::new();
    if let (Some(issuer), Some(serial)) = (&args.issuer, &args.serial) {
        keys.push(json!({"issuer_serial": {"issuer": issuer, "serial": serial}}));
    }
    if let Some(h) = &args.cert_sha256 {
        keys.push(json!({ "cert_sha256": h }));
    }
    if let Some(h) = &args.spki_sha256 {
        keys.push(json!({ "spki_sha256": h }));
    }
    if let Some(path) = &args.cert {
        let certs = vigil_core::input::load_certificates(path)?;
        let first = certs
            .first()
            .ok_or_else(|| UsageError(format!("{}: no certificate", path.display())))?;
        keys.push(json!({ "cert_sha256": hex(&vigil_core::sha256(first)) }));
    }
    match keys.len() {
        0 => Ok(None),
        1 => Ok(keys.pop()),
        _ => Err(UsageError(
            "give one key: --issuer/--serial, --cert-sha256, --spki-sha256 or --cert".into(),
        )),
    }
}

fn rule_line(rule: &Value) -> String {
    let key = if let Some(is) = rule.get("issuer_serial") {
        format!(
            "issuer {} serial {}",
            is.get("issuer").and_then(Value::as_str).unwrap_or_default(),
            is.get("serial").and_then(Value::as_str).unwrap_or_default()
        )
    } else if let Some(h) = rule.get("cert_sha256").and_then(Value::as_str) {
        format!("cert sha256 {h}")
    } else if let Some(h) = rule.get("spki_sha256").and_then(Value::as_str) {
        format!("spki sha256 {h}")
    } else {
        "?".into()
    };
    let reason = rule
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let expires = rule
        .get("expires")
        .and_then(Value::as_str)
        .map_or("until lifted".to_owned(), |e| format!("until {e}"));
    let active = if rule.get("active").and_then(Value::as_bool) == Some(false) {
        " [expired]"
    } else {
        ""
    };
    let by = match (
        rule.get("set_by").and_then(Value::as_str),
        rule.get("set_at").and_then(Value::as_str),
    ) {
        (Some(who), Some(at)) => format!(" [set by {who} at {at}]"),
        (None, Some(at)) => format!(" [set at {at}]"),
        (Some(who), None) => format!(" [set by {who}]"),
        (None, None) => String::new(),
    };
    format!("{key}: {reason} ({expires}){active}{by}")
}

fn base_url(text: &str) -> Result<String, UsageError> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        UsageError(format!(
            "'{text}' is not a URL such as {DEFAULT_SIDECAR} ({e})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UsageError(format!("'{text}': only http and https")));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// An HTTP client with a timeout, trusting `ca` in addition when given.
fn client(ca: Option<&Path>, timeout: u64) -> Result<reqwest::Client, UsageError> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout.max(1)))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca {
        let pem = vigil_core::input::read_file(path)?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| UsageError(format!("--ca {}: {e}", path.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| UsageError(format!("HTTP client: {e}")))
}

fn runtime() -> Result<tokio::runtime::Runtime, UsageError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the I/O runtime: {e}")))
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
