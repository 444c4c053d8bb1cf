//! `vigil verify`: offline-capable, scriptable chain verification.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;
use vigil_core::text::hex;

use clap::{Args, ValueEnum};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::revocation::OcspError;
use vigil_core::{input, CrlLoad, Depth, RevocationPolicy, Usage, Verdict, VerifyOptions};
use vigil_runtime::{Clock, Engine, EngineConfig, FetchConfig, MemoryStore};

use crate::UsageError;

/// Raw flags of `vigil verify`, per the contract in ARCHITECTURE.md.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The certificate to verify (PEM or DER); further certificates in the
    /// same PEM file are used as untrusted intermediates.
    #[arg(value_name = "LEAF")]
    leaf: PathBuf,
    /// Trust anchors (PEM bundle, DER, or a directory), repeatable.
    #[arg(long, value_name = "FILE", required = true)]
    anchor: Vec<PathBuf>,
    /// Untrusted intermediates (PEM bundle or DER), repeatable.
    #[arg(long, value_name = "FILE")]
    intermediate: Vec<PathBuf>,
    /// CRLs (PEM or DER), repeatable.
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// DER OCSP responses to use as if stapled, repeatable.
    #[arg(long = "ocsp-response", value_name = "FILE")]
    ocsp_response: Vec<PathBuf>,
    /// Validation time, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Required extended key usage.
    #[arg(long, value_enum, default_value_t = UsageArg::Any)]
    usage: UsageArg,
    /// Expected peer name (DNS name or IP address).
    #[arg(long, value_name = "DNS-or-IP")]
    name: Option<String>,
    /// Revocation policy: off, prefer (soft-fail) or require (hard-fail).
    #[arg(long, value_enum, default_value_t = PolicyArg::Require)]
    revocation: PolicyArg,
    /// Which certificates revocation covers.
    #[arg(long, value_enum, default_value_t = DepthArg::Chain)]
    depth: DepthArg,
    /// Never fetch; use only the given files and the cache.
    #[arg(long)]
    offline: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    fetch: crate::fetch_args::FetchArgs,
}

/// `--usage`: the extended key usage required.
#[derive(Clone, Copy, Debug, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UsageArg {
    Client,
    Server,
    Any,
}

impl UsageArg {
    /// The core's usage.
    pub(crate) fn usage(self) -> Usage {
        match self {
            Self::Client => Usage::Client,
            Self::Server => Usage::Server,
            Self::Any => Usage::Any,
        }
    }
}

/// `--revocation`: the revocation policy.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum PolicyArg {
    Off,
    Prefer,
    Require,
}

impl PolicyArg {
    /// The core's policy.
    pub(crate) fn policy(self) -> RevocationPolicy {
        match self {
            Self::Off => RevocationPolicy::Off,
            Self::Prefer => RevocationPolicy::Prefer,
            Self::Require => RevocationPolicy::Require,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DepthArg {
    Leaf,
    Chain,
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

pub(crate) fn run(args: VerifyArgs) -> Result<ExitCode, UsageError> {
    let at = match &args.at {
        Some(text) => parse_time(text)?,
        None => SystemTime::now(),
    };
    let mut anchors = Vec::new();
    for path in &args.anchor {
        anchors.extend(input::load_certificates(path)?);
    }
    let mut chain = input::load_certificates(&args.leaf)?;
    for path in &args.intermediate {
        chain.extend(input::load_certificates(path)?);
    }
    // Without --offline, what the chain's certificates name (CRL
    // distribution points, OCSP responders) is fetched when the given files
    // do not already answer; --offline uses only the files.
    let engine = Engine::open(
        anchors,
        Arc::new(MemoryStore::new()),
        EngineConfig::default()
            .with_offline(args.offline)
            .with_fetch(
                args.fetch.apply(
                    FetchConfig::default()
                        .with_connect_timeout(Duration::from_secs(5))
                        .with_total_timeout(Duration::from_secs(10))
                        .with_retries(1),
                ),
            ),
        Arc::new(FixedClock(at)),
    )
    .map_err(|e| UsageError(e.to_string()))?;
    for ca in chain.iter().skip(1) {
        engine.add_ca_certificate(ca)?;
    }
    for path in &args.crl {
        let bytes = input::read_file(path)?;
        let source = path.display().to_string();
        for der in input::parse_crls(&bytes, &source)? {
            match engine.add_crl(&der) {
                Ok(CrlLoad::Rollback { stored, offered }) => eprintln!(
                    "vigil: warning: {source}: CRL number {} is older than the loaded {} of the same CRL; ignored",
                    offered.as_deref().map_or("(none)".into(), hex),
                    stored.as_deref().map_or("(none)".into(), hex),
                ),
                Ok(_) => {}
                Err(e) => return Err(UsageError(format!("{source}: {e}"))),
            }
        }
    }
    for path in &args.ocsp_response {
        let bytes = input::read_file(path)?;
        let source = path.display().to_string();
        match engine.add_ocsp_response(&bytes) {
            Ok(_) => {}
            // A well-formed answer that carries no status (tryLater, ...)
            // is no revocation data; the verdict says what is missing.
            Err(e @ (OcspError::NotSuccessful { .. } | OcspError::UnsupportedResponseType)) => {
                eprintln!("vigil: warning: {source}: {e}; ignored");
            }
            Err(e) => return Err(UsageError(format!("{source}: {e}"))),
        }
    }
    let options = VerifyOptions::new(args.usage.usage())
        .with_name(args.name.clone())
        .with_policy(args.revocation.policy())
        .with_depth(match args.depth {
            DepthArg::Leaf => Depth::Leaf,
            DepthArg::Chain => Depth::Chain,
        });
    if let Some(name) = &options.name {
        if vigil_core::check_peer_name(name).is_err() {
            return Err(UsageError(format!(
                "--name: '{name}' is not a valid DNS name or IP address"
            )));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the I/O runtime: {e}")))?;
    let verdict = runtime.block_on(engine.verify(&chain, &options));
    match args.format {
        Format::Json => println!("{}", verdict.to_json()),
        Format::Text => print!("{}", render_text(&verdict)),
    }
    Ok(if verdict.is_accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The validation time as the engine's clock.
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// RFC 3339 to a time.
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, UsageError> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        UsageError(format!(
            "--at: '{text}' is not an RFC 3339 time such as 2026-01-31T12:00:00Z ({e})"
        ))
    })?;
    Ok(SystemTime::from(t))
}

/// A short human summary of a verdict.
pub(crate) fn render_text(v: &Verdict) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let decision = if v.is_accepted() {
        "ACCEPTED"
    } else {
        "REJECTED"
    };
    let status = serde_json::to_value(v.status)
        .ok()
        .and_then(|s| s.as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = writeln!(out, "{decision}: {status} ({})", v.reason);
    let _ = writeln!(out, "  {}", v.detail);
    if !v.chain.is_empty() {
        let names: Vec<&str> = v.chain.iter().map(|c| c.subject.as_str()).collect();
        let _ = writeln!(out, "  chain: {}", names.join("  <-  "));
    }
    for r in &v.revocation {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|s| s.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = write!(
            out,
            "  revocation: {} [serial {}]: {status}",
            r.subject,
            vigil_core::text::hex(&r.serial)
        );
        if let Some(reason) = &r.reason {
            let _ = write!(out, " ({reason})");
        }
        let source = serde_json::to_value(r.source)
            .ok()
            .and_then(|s| s.as_str().map(str::to_owned))
            .unwrap_or_default();
        match r.next_update {
            Some(next) => {
                let next = vigil_core::text::rfc3339(next);
                let _ = write!(out, " via {source}, next update {next}");
            }
            None if source != "none" => {
                let _ = write!(out, " via {source}");
            }
            None => {}
        }
        out.push('\n');
    }
    if let Some(until) = v.valid_until {
        let until = vigil_core::text::rfc3339(until);
        let _ = writeln!(out, "  valid until: {until}");
    }
    out
}
