//! `vigil proxy`: mutual TLS in front of an unchanged TCP service (server
//! mode), or out to a remote one (client mode), closing each connection
//! the moment its peer's certificate stops being trusted: both legs, with
//! close_notify on the TLS one and a teardown event on the admin API.
//!
//! The engine, store, refresh scheduler, deny list, policy and fleet mode
//! are `vigil serve`'s, started by the same code ([`vigil_sidecar::Server`]);
//! each proxied connection is tracked as a live connection of that app
//! ([`vigil_sidecar::Live`]), so `/v1/connections` lists it and
//! `/v1/events` announces its teardown. The admin API (`--admin`) is the
//! sidecar's router with the connection list read-only.
//!
//! Exit status: 0 after a clean shutdown, 2 when the settings are unusable
//! at start, 1 when the proxy fails after starting.

mod allow;
mod args;
mod metrics;
mod pp2;
mod route;
mod settings;
mod splice;
mod staple;
mod tls;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vigil_rustls::{VigilClientVerifier, VigilServerVerifier};
use vigil_sidecar::Server;

use crate::UsageError;
use allow::AllowList;
pub(crate) use args::ProxyArgs;
use route::{Running, Shared, Tls};
pub(crate) use settings::FileProxy;
use settings::{Mode, ProxySettings, Route};

/// How long open connections may go on after SIGTERM before they are
/// closed (close_notify and FIN, as for a teardown).
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How often the certificate files are looked at.
const CERT_POLL: Duration = Duration::from_secs(2);

/// Runs the proxy until SIGTERM/SIGINT.
pub(crate) fn run(args: ProxyArgs) -> Result<ExitCode, UsageError> {
    let settings = ProxySettings::resolve(args)?;
    let runtime = crate::serve::start(&settings.shared, "vigil-proxy")?;
    runtime.block_on(proxy(settings))
}

async fn proxy(settings: ProxySettings) -> Result<ExitCode, UsageError> {
    let policy = settings.shared.policy;
    let max = fit_fd_limit(
        settings.shared.max_connections,
        settings.max_connections_set,
    );
    let proxy_metrics = Arc::new(metrics::ProxyMetrics::default());
    let mut config = settings.shared.clone().serve_config();
    let rendered = Arc::clone(&proxy_metrics);
    config.sidecar = config
        .sidecar
        .with_connections_read_only(true)
        .with_extra_metrics(Arc::new(move |out: &mut String| rendered.render(out)));
    let fetcher = vigil_runtime::Fetcher::new(config.fetch.clone())
        .map_err(|e| UsageError(format!("cannot start the fetcher: {e}")))?;
    let server = if settings.admin {
        Server::start(config).await?
    } else {
        Server::start_without_api(config).await?
    };
    let live = server.live();
    let engine = live.engine().clone();

    // Every route is loaded and bound before any accepts: a bad one stops
    // the start (exit 2).
    let mut bound = Vec::new();
    for route in &settings.routes {
        let identity = tls::Identity::load(&route.cert, &route.key).map_err(UsageError)?;
        let rules: tls::Rules = Arc::new(ArcSwap::from_pointee(
            AllowList::parse(&route.allow).map_err(UsageError)?,
        ));
        let tls = match route.mode {
            Mode::Server => {
                let verifier = VigilClientVerifier::new(engine.clone()).with_policy(policy);
                let server_config =
                    tls::server_config(verifier, Arc::clone(&rules), Arc::clone(&identity))
                        .map_err(UsageError)?;
                let target = if route.target_tls {
                    Some(ArcSwap::from_pointee(
                        target_connector(route, &engine).map_err(UsageError)?,
                    ))
                } else {
                    None
                };
                Tls::Server {
                    acceptor: TlsAcceptor::from(Arc::new(server_config)),
                    target,
                }
            }
            Mode::Client => {
                let verifier = VigilServerVerifier::new(engine.clone()).with_policy(policy);
                let client_config =
                    tls::client_config(verifier, Arc::clone(&rules), Arc::clone(&identity))
                        .map_err(UsageError)?;
                Tls::Client {
                    connector: TlsConnector::from(Arc::new(client_config)),
                }
            }
        };
        let listener = tokio::net::TcpListener::bind(route.listen)
            .await
            .map_err(|e| UsageError(format!("listen {}: {e}", route.listen)))?;
        let (rules_changed, _) = watch::channel(0u64);
        let local = listener
            .local_addr()
            .map_err(|e| UsageError(format!("listen {}: {e}", route.listen)))?;
        let running = Arc::new(Running {
            route: Route {
                listen: local,
                ..route.clone()
            },
            configured: route.listen,
            counters: proxy_metrics.route(local.to_string()),
            identity,
            rules,
            rules_changed,
            tls,
        });
        bound.push((running, listener));
    }

    let (stop_tx, stop) = watch::channel(false);
    let (force_tx, force) = watch::channel(false);
    let shared = Arc::new(Shared {
        live,
        limit: Arc::new(Semaphore::new(max)),
        max,
        handshake_timeout: settings.handshake_timeout,
        idle_timeout: settings.idle_timeout,
        stop,
        force,
        metrics: proxy_metrics,
    });
    let mut routes = Vec::new();
    for (running, listener) in bound {
        let local = listener
            .local_addr()
            .map_err(|e| UsageError(format!("listen {}: {e}", running.route.listen)))?;
        tracing::info!(
            listen = %local,
            target = %running.route.target,
            mode = ?running.route.mode,
            "vigil proxy accepting"
        );
        println!("listening on {local}");
        if running.route.mode == Mode::Server {
            tokio::spawn(staple::staple_loop(
                Arc::clone(&running.identity),
                fetcher.clone(),
                local.to_string(),
            ));
        }
        routes.push(Arc::clone(&running));
        tokio::spawn(route::accept_loop(running, listener, Arc::clone(&shared)));
    }
    if settings.admin {
        println!("admin on {}", server.url());
    }
    let _ = std::io::stdout().flush();
    let reloader = tokio::spawn(reload_loop(
        routes,
        settings.config.clone(),
        engine.clone(),
        settings.shared.anchors.clone(),
    ));

    let drain = {
        let shared = Arc::clone(&shared);
        async move {
            crate::serve::wait_for_signal().await;
            tracing::info!("stopping: no new connections; draining");
            let _ = stop_tx.send(true);
            if !drained(&shared, DRAIN_DEADLINE).await {
                let open = shared.max - shared.limit.available_permits();
                tracing::info!(open, "drain deadline passed; closing what is left");
                let _ = force_tx.send(true);
                drained(&shared, Duration::from_secs(2)).await;
            }
        }
    };
    let result = server.run(drain).await;
    reloader.abort();
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("vigil: error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Descriptors kept free beyond two per connection: listeners, the store,
/// fetches, the admin API.
const FD_RESERVE: u64 = 256;

/// Two descriptors per connection (client and backend legs) and a margin:
/// the soft limit is raised as far as the hard limit allows (further when
/// privileged). Still short: a cap the operator set is kept and said at
/// start rather than found out under load (an accept that fails backs off
/// and retries); the default cap is lowered to fit. Returns the cap.
fn fit_fd_limit(max_connections: usize, set: bool) -> usize {
    let want = (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(FD_RESERVE);
    let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return max_connections;
    };
    if soft >= want {
        return max_connections;
    }
    let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, want, want.max(hard))
        .or_else(|_| rlimit::setrlimit(rlimit::Resource::NOFILE, hard.min(want), hard));
    let now = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(soft, |(s, _)| s);
    if now >= want {
        return max_connections;
    }
    if set {
        tracing::warn!(
            limit = now,
            max_connections,
            "the open-file limit holds fewer than two descriptors per allowed connection; \
             lower --max-connections or raise the limit"
        );
        return max_connections;
    }
    // The default cap, lowered to what the descriptors allow: refused at
    // the cap, cleanly, rather than failing accept() with EMFILE.
    let fitted = usize::try_from(now.saturating_sub(FD_RESERVE) / 2)
        .unwrap_or(max_connections)
        .clamp(1, max_connections);
    tracing::info!(
        limit = now,
        max_connections = fitted,
        "max-connections fitted to the open-file limit (two descriptors per connection)"
    );
    fitted
}

/// Waits until no connection is open, `deadline` at most.
async fn drained(shared: &Shared, deadline: Duration) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    while shared.limit.available_permits() < shared.max {
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// SIGHUP: certificates, trust anchors and allow rules again; and a
/// changed certificate file on its own.
async fn reload_loop(
    routes: Vec<Arc<Running>>,
    config: Option<std::path::PathBuf>,
    engine: vigil_runtime::Engine,
    anchors: Vec<std::path::PathBuf>,
) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = match hup.as_mut() {
            Some(hup) => tokio::select! {
                _ = hup.recv() => true,
                _ = tokio::time::sleep(CERT_POLL) => false,
            },
            None => {
                tokio::time::sleep(CERT_POLL).await;
                false
            }
        };
        #[cfg(not(unix))]
        let forced = {
            tokio::time::sleep(CERT_POLL).await;
            false
        };
        if forced {
            tracing::info!("SIGHUP: reloading certificates, trust anchors and allow rules");
        }
        for running in &routes {
            match running.identity.reload(forced) {
                Ok(true) => tracing::info!(
                    listen = %running.route.listen,
                    cert = %running.identity.cert_path().display(),
                    "certificate reloaded; new handshakes use it"
                ),
                Ok(false) => {}
                Err(e) => tracing::error!(
                    listen = %running.route.listen,
                    error = %e,
                    "certificate not reloaded; the one in use stays"
                ),
            }
        }
        if forced {
            crate::serve::reload_anchors(&engine, &anchors);
            reload_target_anchors(&routes, &engine);
            if let Some(config) = &config {
                reload_rules(&routes, config);
            }
        }
    }
}

/// The connector of a `--target-tls` route: trusting its `--target-ca`
/// file as it is now, or the engine's anchors.
fn target_connector(route: &Route, engine: &vigil_runtime::Engine) -> Result<TlsConnector, String> {
    let anchors = match &route.target_ca {
        Some(path) => {
            vigil_core::input::load_certificates(path).map_err(|e| format!("target-ca {e}"))?
        }
        None => engine.anchors(),
    };
    Ok(TlsConnector::from(Arc::new(tls::target_config(anchors)?)))
}

/// SIGHUP: the anchors of TLS to the targets follow their `--target-ca`
/// files, or the reloaded trust anchors; new backend connections use them.
fn reload_target_anchors(routes: &[Arc<Running>], engine: &vigil_runtime::Engine) {
    for running in routes {
        let Tls::Server {
            target: Some(current),
            ..
        } = &running.tls
        else {
            continue;
        };
        match target_connector(&running.route, engine) {
            Ok(connector) => {
                current.store(Arc::new(connector));
                tracing::info!(listen = %running.route.listen, "target anchors reloaded; new backend connections use them");
            }
            Err(e) => tracing::error!(
                listen = %running.route.listen,
                error = %e,
                "target anchors not reloaded; the ones in use stay"
            ),
        }
    }
}

fn reload_rules(routes: &[Arc<Running>], config: &std::path::Path) {
    let tables = match settings::reload_routes(config) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "allow rules not reloaded; the ones in use stay");
            return;
        }
    };
    for table in tables {
        let Some(running) = routes.iter().find(|r| r.route.table == table.table) else {
            tracing::warn!(listen = %table.listen, "a new [[proxy]] table needs a restart");
            continue;
        };
        if running.configured != table.listen || running.route.target != table.target {
            tracing::warn!(
                listen = %table.listen,
                target = %table.target,
                "a [[proxy]] table's listen or target changed: that needs a restart; its allow rules \
                 are not reloaded"
            );
            continue;
        }
        match AllowList::parse(&table.allow) {
            Ok(list) => {
                running.rules.store(Arc::new(list));
                running.rules_changed.send_modify(|g| *g += 1);
                tracing::info!(listen = %running.route.listen, "allow rules reloaded; open connections checked again");
            }
            Err(e) => {
                tracing::error!(listen = %table.listen, error = %e, "allow rules not reloaded")
            }
        }
    }
}
