//! `vigil`: verify certificate chains against CA chains and revocation data
//! (`verify`), check a certificate's revocation status live (`check`), run
//! the sidecar (`serve`) and its container health probe (`health`), deny
//! certificates through it (`deny`), and run the revocation drill
//! (`drill`), print the fleet's events (`watch`) and proxy mutual TLS for
//! unchanged services (`proxy`). Contracts: ARCHITECTURE.md.
//!
//! Exit status: 0 accepted, 1 rejected, 2 usage or unreadable/malformed input.

#![forbid(unsafe_code)]

mod check;
mod deny;
mod drill;
mod fetch_args;
mod proxy;
mod serve;
mod verify;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Vigil: mutual-TLS certificate verification with live revocation.
#[derive(Parser, Debug)]
#[command(name = "vigil", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify a certificate chain against trust anchors and revocation data.
    Verify(verify::VerifyArgs),
    /// Check one certificate's revocation status live, at the CRL
    /// distribution points and OCSP responders it names.
    Check(check::CheckArgs),
    /// Prove that revoking a certificate tears its connections down, and
    /// measure how fast (self-contained, or against a running sidecar).
    Drill(drill::DrillArgs),
    /// Run the sidecar: the HTTP API that verifies chains, tracks
    /// connections and announces teardowns (see `vigil serve --help`).
    Serve(Box<serve::ServeArgs>),
    /// Deny a certificate now on a running sidecar, list or lift denials.
    Deny(deny::DenyArgs),
    /// Probe a running sidecar's /healthz (or /readyz): exit 0 when healthy.
    Health(deny::HealthArgs),
    /// Print the fleet's teardown events live (fleet mode, NATS).
    Watch(watch::WatchArgs),
    /// Terminate mutual TLS in front of any TCP service (or originate it,
    /// --client), closing connections whose peer stops being trusted.
    Proxy(Box<proxy::ProxyArgs>),
}

/// A failure that is the input's or the caller's fault: exit status 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl<E: std::fmt::Display> From<E> for UsageError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    let result = match cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Check(args) => check::run(args),
        Command::Drill(args) => drill::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Deny(args) => deny::run(args),
        Command::Health(args) => deny::run_health(args),
        Command::Watch(args) => watch::run(args),
        Command::Proxy(args) => proxy::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("vigil: error: {message}");
            ExitCode::from(2)
        }
    }
}
