//! `vigil drill`: proves, with real TLS connections and a real CRL/OCSP
//! responder, that revoking a certificate tears its connections down, and
//! measures how fast.
//!
//! Self-contained by default (fixture PKI, responder, an mTLS echo server on
//! vigil-rustls, N clients, all on 127.0.0.1); `--sidecar URL` drills a
//! running `vigil serve` through its HTTP API and event stream instead.
//!
//! Exit status: 0 when every scenario passed; 1 when a revoked connection
//! survived, an unrevoked one was closed (collateral), or
//! `--max-teardown-ms` was exceeded; 2 when the drill could not run.

mod fleet;
mod local;
mod progress;
mod report;
mod sidecar;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::UsageError;
pub(crate) use report::Report;

/// `vigil drill` arguments.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct DrillArgs {
    /// Client connections per scenario.
    #[arg(long, default_value_t = 100)]
    pub(crate) connections: usize,
    /// Fraction of the connections whose certificate is revoked (or, for
    /// `expire`, short-lived; for `revoke-intermediate`, under the revoked
    /// intermediate).
    #[arg(long, default_value_t = 0.1)]
    pub(crate) revoke_fraction: f64,
    /// How revocations are published and read.
    #[arg(long, value_enum, default_value_t = SourceArg::Both)]
    pub(crate) source: SourceArg,
    /// Which scenario to run.
    #[arg(long, value_enum, default_value_t = ScenarioArg::All)]
    pub(crate) scenario: ScenarioArg,
    /// Seed for choosing which connections are revoked (default: random,
    /// printed in the report).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Refresh revocation data on this schedule (seconds) instead of
    /// triggering a refresh right after publication.
    #[arg(long)]
    pub(crate) refresh_interval: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub(crate) format: FormatArg,
    /// Fail when any teardown takes longer than this (milliseconds, from
    /// publication to the client seeing the close).
    #[arg(long)]
    pub(crate) max_teardown_ms: Option<f64>,
    /// Drill a running `vigil serve` at this URL instead of an in-process
    /// server; several URLs (comma-separated) drill a fleet: connections
    /// are registered on every node, the revocation or deny goes through
    /// the first, and each node's teardowns are reported (a `node` column)
    /// with a `fleet` row (the last node's close per connection).
    #[arg(long, value_name = "URL[,URL...]", conflicts_with = "fleet")]
    pub(crate) sidecar: Option<String>,
    /// Drill a fleet of N local `vigil serve --cluster` nodes on a local
    /// `nats-server -js` (started and stopped by the drill; nats-server
    /// must be on the PATH).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=32))]
    pub(crate) fleet: Option<u16>,
    /// Drill through a real `vigil proxy` (this binary) in front of a
    /// plain echo backend: the clients connect to the proxy, and a
    /// connection counts as torn down only when its backend leg is closed
    /// too. Every scenario, deny included (responder-down with the
    /// proxy's --clock-skew 0).
    #[arg(long, conflicts_with_all = ["sidecar", "fleet"])]
    pub(crate) proxy: bool,
    /// Bearer token for the sidecar's mutating endpoints (default:
    /// `VIGIL_API_TOKEN`).
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// With --sidecar: where to write the drill's fixture root, which the
    /// sidecar must trust (`vigil serve --anchor FILE`). The drill waits
    /// until the sidecar accepts a chain under it.
    #[arg(long, default_value = "vigil-drill-anchor.pem")]
    pub(crate) anchor_out: PathBuf,
    /// With --sidecar: how long to wait for the sidecar to trust the
    /// drill's anchor (seconds).
    #[arg(long, default_value_t = 120)]
    pub(crate) wait_sidecar: u64,
    /// How long to wait for the connections that must go (seconds, after
    /// publication or the deadline; plus --refresh-interval).
    #[arg(long, default_value_t = 15)]
    pub(crate) wait_secs: u64,
    /// Internal: run the clients described in FILE and report on stdout
    /// (used by the drill itself when the open-file limit is too low to
    /// hold both ends of every connection in one process).
    #[arg(long, hide = true)]
    pub(crate) client_worker: Option<PathBuf>,
    /// Run the in-process server without connection tracking, to show that
    /// the drill fails when nothing tears connections down.
    #[arg(long, hide = true)]
    pub(crate) broken_server: bool,
}

/// `--source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SourceArg {
    /// CRLs only.
    Crl,
    /// OCSP only.
    Ocsp,
    /// Both (OCSP first, CRL as fallback).
    Both,
}

impl SourceArg {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Crl => "crl",
            Self::Ocsp => "ocsp",
            Self::Both => "both",
        }
    }
}

/// `--scenario`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScenarioArg {
    /// Revoke a fraction of the leaves.
    RevokeLeaf,
    /// Revoke an intermediate CA.
    RevokeIntermediate,
    /// Short-lived certificates expire while connected.
    Expire,
    /// The responder stops answering until the data passes nextUpdate.
    ResponderDown,
    /// The operator denies a fraction of the leaves (through one node with
    /// --sidecar/--fleet).
    Deny,
    /// Every scenario in turn (deny too through a fleet or the proxy;
    /// no responder-down on a fleet).
    All,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// A table.
    Text,
    /// JSON (the contract shape).
    Json,
}

/// One scenario to run, with the policy it runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    RevokeLeaf,
    RevokeIntermediate,
    Expire,
    /// `true`: under `require` (connections go); `false`: under `prefer`.
    ResponderDown {
        require: bool,
    },
    /// The leaves are put on the deny list (not a contract scenario name:
    /// an extension, as `deny`).
    Deny,
}

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::RevokeLeaf => "revoke-leaf",
            Self::RevokeIntermediate => "revoke-intermediate",
            Self::Expire => "expire",
            Self::ResponderDown { .. } => "responder-down",
            Self::Deny => "deny",
        }
    }
}

/// The scenarios `arg` names; `All` is every contract scenario,
/// responder-down only with `responder_down`, then deny with `deny`.
fn scenarios(arg: ScenarioArg, deny: bool, responder_down: bool) -> Vec<Scenario> {
    match arg {
        ScenarioArg::Deny => vec![Scenario::Deny],
        ScenarioArg::All => {
            let mut list = vec![
                Scenario::RevokeLeaf,
                Scenario::RevokeIntermediate,
                Scenario::Expire,
            ];
            if responder_down {
                list.push(Scenario::ResponderDown { require: true });
                list.push(Scenario::ResponderDown { require: false });
            }
            if deny {
                list.push(Scenario::Deny);
            }
            list
        }
        ScenarioArg::RevokeLeaf => vec![Scenario::RevokeLeaf],
        ScenarioArg::RevokeIntermediate => vec![Scenario::RevokeIntermediate],
        ScenarioArg::Expire => vec![Scenario::Expire],
        ScenarioArg::ResponderDown => vec![
            Scenario::ResponderDown { require: true },
            Scenario::ResponderDown { require: false },
        ],
    }
}

/// Runs the drill.
pub(crate) fn run(args: DrillArgs) -> Result<ExitCode, UsageError> {
    if let Some(path) = &args.client_worker {
        return local::run_worker(path)
            .map(|()| ExitCode::SUCCESS)
            .map_err(UsageError);
    }
    if args.connections == 0 {
        return Err(UsageError("--connections must be at least 1".into()));
    }
    if !(args.revoke_fraction > 0.0 && args.revoke_fraction <= 1.0) {
        return Err(UsageError("--revoke-fraction must be in (0, 1]".to_owned()));
    }
    if args.refresh_interval == Some(0) {
        return Err(UsageError("--refresh-interval must be at least 1".into()));
    }
    if args.max_teardown_ms.is_some_and(|m| m.is_nan() || m <= 0.0) {
        return Err(UsageError("--max-teardown-ms must be positive".into()));
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    let progress = progress::Progress::new(args.format == FormatArg::Text);
    // A fleet drill (--fleet, or several --sidecar URLs) also denies
    // through one node by default; a single sidecar keeps the contract's
    // scenario list unless --scenario deny.
    let fleet = args.fleet.is_some() || args.sidecar.as_deref().is_some_and(|s| s.contains(','));
    if args.proxy && args.source != SourceArg::Both {
        return Err(UsageError(
            "--proxy reads both CRLs and OCSP, as `vigil proxy` does: --source both".into(),
        ));
    }
    // Through the proxy, responder-down runs as in process (the drill
    // starts it with --clock-skew 0) and deny through its admin API.
    let list = scenarios(args.scenario, fleet || args.proxy, !fleet);
    let mut report = Report::new(seed, args.max_teardown_ms);
    let outcome = runtime.block_on(async {
        if let Some(n) = args.fleet {
            fleet::run(&args, n, seed, &list, &progress, &mut report).await
        } else if let Some(url) = args.sidecar.clone() {
            let urls: Vec<String> = url
                .split(',')
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect();
            sidecar::run(&args, &urls, None, seed, &list, &progress, &mut report).await
        } else {
            local::raise_fd_limit(args.connections, &progress);
            for (i, scenario) in list.iter().enumerate() {
                let result =
                    local::run(&args, *scenario, seed.wrapping_add(i as u64), &progress).await?;
                report.push(result);
            }
            Ok(())
        }
    });
    if let Err(e) = outcome {
        progress.finish();
        return Err(UsageError(format!("drill could not run: {e}")));
    }
    progress.finish();
    report.finish();
    match args.format {
        FormatArg::Json => println!("{}", report.to_json()),
        FormatArg::Text => print!("{}", report.to_table()),
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Collects the closes reported on `rx` (mapped to a connection index and
/// the moment it closed) until every doomed connection closed, then 300 ms
/// more to catch any collateral close, or until `give_up`.
pub(crate) async fn await_closes<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    index_of: impl Fn(T) -> Option<(usize, std::time::Instant)>,
    doomed: &std::collections::HashSet<usize>,
    closed: &mut std::collections::HashMap<usize, std::time::Instant>,
    give_up: std::time::Instant,
    progress: &progress::Progress,
    label: &str,
) {
    let record = |message: T, closed: &mut std::collections::HashMap<_, _>| {
        if let Some((i, at)) = index_of(message) {
            closed.entry(i).or_insert(at);
        }
    };
    let give_up = tokio::time::Instant::from_std(give_up);
    loop {
        let done = doomed.iter().filter(|i| closed.contains_key(i)).count();
        progress.update(&format!("{label}: {done}/{} torn down", doomed.len()));
        if !doomed.is_empty() && done == doomed.len() {
            let grace = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
            while let Ok(Some(message)) = tokio::time::timeout_at(grace, rx.recv()).await {
                record(message, closed);
            }
            return;
        }
        match tokio::time::timeout_at(give_up, rx.recv()).await {
            Ok(Some(message)) => record(message, closed),
            Ok(None) | Err(_) => return,
        }
    }
}
