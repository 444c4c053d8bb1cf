//! `vigil serve`: the sidecar ([`vigil_sidecar`]). This module reads the
//! settings (flags, `VIGIL_*` environment, `--config` file), sets up logging
//! and the runtime, prints `listening on http://ADDR` once the listener is
//! bound, reads its trust anchors again on SIGHUP, and stops the sidecar
//! on SIGTERM or SIGINT.
//!
//! Exit status: 0 after a clean shutdown, 2 when the settings, anchors,
//! data directory, TLS files or listen address are unusable at start, 1
//! when the sidecar fails after starting.

mod args;
mod cluster;
pub(crate) mod config;
pub(crate) mod file;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use vigil_sidecar::Server;

use crate::UsageError;
pub(crate) use args::{CommonArgs, ServeArgs};
pub(crate) use config::Settings;

/// Runs the sidecar until SIGTERM/SIGINT.
pub(crate) fn run(args: ServeArgs) -> Result<ExitCode, UsageError> {
    let settings = Settings::resolve(args)?;
    let runtime = start(&settings, "vigil-serve")?;
    runtime.block_on(serve(settings))
}

/// What `vigil serve` and `vigil proxy` do before their work: logging, the
/// warning about a token on the command line, and the runtime.
pub(crate) fn start(
    settings: &Settings,
    thread_name: &str,
) -> Result<tokio::runtime::Runtime, UsageError> {
    init_logging(settings.log_level);
    if settings.token_on_command_line {
        tracing::warn!(
            "--api-token is visible to every local user (ps, /proc); prefer --api-token-file \
             FILE or VIGIL_API_TOKEN"
        );
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(thread_name)
        .build()
        .map_err(|e| UsageError(format!("cannot start the runtime: {e}")))
}

fn init_logging(level: args::LogLevel) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level.level())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn serve(settings: Settings) -> Result<ExitCode, UsageError> {
    let anchors = settings.anchors.clone();
    let server = Server::start(settings.serve_config()).await?;
    println!("listening on {}", server.url());
    let _ = std::io::stdout().flush();
    let reloader = tokio::spawn(anchors_on_sighup(server.live().engine().clone(), anchors));
    let result = server.run(wait_for_signal()).await;
    reloader.abort();
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("vigil: error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Reads the trust anchors again on every SIGHUP.
async fn anchors_on_sighup(engine: vigil_runtime::Engine, paths: Vec<PathBuf>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the trust anchors");
            reload_anchors(&engine, &paths);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (engine, paths);
    }
}

/// Replaces the engine's trust anchors with what `paths` hold now (the
/// anchor is an input of path validation, RFC 5280 §6.1.1 (d)): the
/// connections whose path ends at an anchor no longer listed are torn down
/// as `untrusted`, and new ones under it are refused. A file that does not
/// load, or a set without a certificate, changes nothing.
pub(crate) fn reload_anchors(engine: &vigil_runtime::Engine, paths: &[PathBuf]) {
    let anchors = match vigil_sidecar::load_anchors(paths) {
        Ok(anchors) => anchors,
        Err(e) => {
            tracing::error!(error = %e, "trust anchors not reloaded; the ones in use stay");
            return;
        }
    };
    if anchors.is_empty() {
        tracing::error!("trust anchors not reloaded: the files hold none; the ones in use stay");
        return;
    }
    match engine.set_anchors(anchors) {
        Ok((added, removed)) => tracing::info!(
            added,
            removed,
            "trust anchors reloaded; connections under a removed anchor are closed"
        ),
        Err(e) => {
            tracing::error!(error = %e, "trust anchors not reloaded; the ones in use stay")
        }
    }
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
