//! `vigil watch --cluster URLS`: prints the fleet's events live, as they
//! are published on `<fleet>.events.<node>`.
//!
//! Text: one line per event (time, node, event, reason, connection,
//! subject). `--format json`: the event JSON (with `event` and `node`),
//! one per line. Prints `watching fleet NAME` on stderr once subscribed.
//!
//! Exit status: 0 after `--count` events (or SIGINT/SIGTERM), 1 when NATS
//! cannot be reached, 2 usage.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use crate::verify::Format;
use crate::UsageError;

/// Raw flags of `vigil watch`.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  vigil watch --cluster nats://127.0.0.1:4222
  vigil watch --cluster nats://n1:4222,nats://n2:4222 --fleet prod --format json
Exit status: 0 after --count events or a signal, 1 NATS unreachable, 2 usage.")]
pub(crate) struct WatchArgs {
    /// NATS servers, nats://HOST:PORT (or tls://), comma-separated.
    #[arg(
        long,
        env = "VIGIL_CLUSTER",
        value_name = "URLS",
        value_delimiter = ',',
        required = true
    )]
    cluster: Vec<String>,
    /// The fleet's name [default: vigil].
    #[arg(
        long,
        env = "VIGIL_FLEET",
        value_name = "NAME",
        default_value = "vigil"
    )]
    fleet: String,
    /// A NATS `.creds` file.
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// CA certificates (PEM) for tls:// servers.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

pub(crate) fn run(args: WatchArgs) -> Result<ExitCode, UsageError> {
    let mut config = vigil_cluster::ClusterConfig::new(args.cluster, "watch".into());
    config.fleet = args.fleet;
    config.tls_ca = args.tls_ca;
    if let Some(creds) = args.credentials {
        config.auth = vigil_cluster::Auth::CredentialsFile(creds);
    }
    config.validate().map_err(UsageError)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let mut watch = match vigil_cluster::EventWatch::connect(&config).await {
            Ok(w) => w,
            Err(e) => {
                eprintln!("vigil: error: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        eprintln!(
            "watching fleet {} on {}",
            config.fleet,
            config.servers.join(",")
        );
        let mut seen = 0u64;
        loop {
            let event = tokio::select! {
                event = watch.next() => event,
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            };
            let Some(event) = event else {
                eprintln!("vigil: error: the connection to NATS was closed");
                return Ok(ExitCode::from(1));
            };
            let line = render(&event, args.format);
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return Ok(ExitCode::SUCCESS);
            }
            seen += 1;
            if args.count.is_some_and(|n| seen >= n) {
                return Ok(ExitCode::SUCCESS);
            }
        }
    })
}

fn render(event: &vigil_cluster::FleetEvent, format: Format) -> String {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    match format {
        Format::Json => {
            let mut out = serde_json::Map::new();
            out.insert("event".into(), Value::String(event.name.to_owned()));
            if let Value::Object(map) = data {
                out.extend(map);
            }
            Value::Object(out).to_string()
        }
        Format::Text => {
            let field = |k: &str| {
                data.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("-")
                    .to_owned()
            };
            // Control characters from the bus are not written to a terminal.
            let clean = |s: String| {
                s.chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect::<String>()
            };
            clean(format!(
                "{} {} {} {} {} {}",
                field("at"),
                event.node,
                event.name,
                field("reason"),
                field("connection_id"),
                field("subject"),
            ))
        }
    }
}
