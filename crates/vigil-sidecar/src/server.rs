//! The server loop: [`serve`] (HTTP/1.1 with read deadlines and a graceful
//! drain) and [`Server`], the whole of `vigil serve` from settings to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use vigil_core::{CertificateDer, RevocationPolicy};
use vigil_runtime::{Engine, EngineConfig, SledStore, Store, SystemClock};

use crate::{app, tls, ServeConfig, Sidecar};

#[cfg(doc)]
use crate::SidecarConfig;

/// How long requests in flight may take to finish at shutdown.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// A failure to start or to stop cleanly; its text names the setting or
/// the step (`vigil serve` prints it after `vigil: error: `).
#[derive(Debug)]
pub struct Error {
    message: String,
}

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Serves `router` (from [`app`]) on `listener` over HTTP/1.1 until
/// [`Sidecar::shutdown`]; then stops accepting and lets requests in flight
/// finish, [`DRAIN_DEADLINE`] at most. A client that does not send a
/// request's head within [`SidecarConfig::header_read_timeout`] is
/// disconnected (an idle keep-alive connection too).
pub async fn serve<L>(mut listener: L, router: Router, sidecar: &Sidecar) -> std::io::Result<()>
where
    L: Listener,
{
    let mut shutdown = sidecar.app.shutdown.clone();
    let header_read_timeout = sidecar.app.header_read_timeout;
    let graceful = GracefulShutdown::new();
    loop {
        let (io, _peer) = tokio::select! {
            pair = listener.accept() => pair,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain deadline; stopping anyway");
    }
    Ok(())
}

enum Bound {
    Plain(tokio::net::TcpListener),
    Tls(tls::TlsListener),
}

/// A started sidecar: engine open, listener bound, app built. Nothing is
/// answered before [`Server::run`].
pub struct Server {
    router: Router,
    sidecar: Sidecar,
    listener: Option<Bound>,
    local: SocketAddr,
    policy: RevocationPolicy,
}

/// The certificates of every anchor file (PEM bundle, DER or a directory),
/// in order: what [`Server::start`] trusts, and what `vigil serve` reloads
/// on SIGHUP.
pub fn load_anchors(
    paths: &[std::path::PathBuf],
) -> Result<Vec<CertificateDer<'static>>, vigil_core::input::InputError> {
    let mut anchors = Vec::new();
    for path in paths {
        anchors.extend(vigil_core::input::load_certificates(path)?);
    }
    Ok(anchors)
}

impl Server {
    /// Loads the anchors, opens the store and the engine, loads the TLS
    /// files, binds the listener, builds the app and starts the refresh
    /// scheduler. Every failure here is the settings' (`vigil serve` exits
    /// 2).
    pub async fn start(config: ServeConfig) -> Result<Self, Error> {
        Self::open(config, true).await
    }

    /// As [`Server::start`], but binds nothing: the app runs (engine,
    /// scheduler, trackers, store, fleet) for in-process owners of
    /// connections ([`Server::live`]), and [`Server::run`] only waits for
    /// the shutdown. `vigil proxy` without `--admin` runs so.
    pub async fn start_without_api(config: ServeConfig) -> Result<Self, Error> {
        Self::open(config, false).await
    }

    async fn open(config: ServeConfig, bind: bool) -> Result<Self, Error> {
        let anchors = load_anchors(&config.anchors).map_err(|e| Error::new(e.to_string()))?;
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| Error::new(format!("data-dir {}: {e}", data_dir.display())))?;
        let store: Arc<dyn Store> = Arc::new(
            tokio::task::spawn_blocking(move || SledStore::open(&data_dir))
                .await
                .map_err(|e| Error::new(e.to_string()))?
                .map_err(|e| Error::new(format!("data-dir {}: {e}", config.data_dir.display())))?,
        );
        let engine = Engine::open(
            anchors,
            Arc::clone(&store),
            EngineConfig::default()
                .with_fetch(config.fetch.clone())
                .with_refresh(config.refresh)
                .with_verifier(config.verifier),
            Arc::new(SystemClock),
        )
        .map_err(|e| Error::new(format!("cannot start the engine: {e}")))?;

        let tls = match &config.tls {
            Some((cert, key)) => Some(tls::server_config(cert, key)?),
            None => None,
        };
        let listener = if bind {
            Some(
                tokio::net::TcpListener::bind(config.listen)
                    .await
                    .map_err(|e| Error::new(format!("listen {}: {e}", config.listen)))?,
            )
        } else {
            None
        };
        let local = match &listener {
            Some(l) => l
                .local_addr()
                .map_err(|e| Error::new(format!("listen {}: {e}", config.listen)))?,
            None => config.listen,
        };
        let loopback = local.ip().is_loopback();
        if bind && !loopback && config.sidecar.api_token.is_none() {
            if !config.insecure_no_auth {
                return Err(Error::new(format!(
                    "listen {local}: a non-loopback address needs an API token \
                     (--api-token-file FILE or VIGIL_API_TOKEN); --insecure-no-auth serves it \
                     without one"
                )));
            }
            tracing::warn!(
                address = %local,
                "listening beyond loopback without an API token (--insecure-no-auth): anyone \
                 who can reach it may read, register, deny and refresh"
            );
        }

        let policy = config.sidecar.policy;
        let scheduler = engine.spawn_scheduler();
        let mut sidecar_config = config.sidecar;
        // Beyond loopback the Host is whatever name reaches this machine;
        // the token is the defence there (ARCHITECTURE.md, HTTP API).
        sidecar_config.loopback_hosts_only = loopback;
        if let Some(cluster) = config.cluster {
            let mut cluster = cluster;
            cluster.max_rules = sidecar_config.max_deny_rules;
            let started =
                vigil_cluster::Cluster::start(engine.clone(), cluster).map_err(Error::new)?;
            tracing::info!(node = started.node(), fleet = started.fleet(), "fleet mode");
            sidecar_config.cluster = Some(started);
        }
        let (router, mut sidecar) = app(engine, store, sidecar_config);
        sidecar.tasks.insert(0, scheduler);
        let listener = match (listener, tls) {
            (None, _) => None,
            (Some(listener), None) => Some(Bound::Plain(listener)),
            (Some(listener), Some(tls)) => Some(Bound::Tls(
                tls::TlsListener::new(listener, tls)
                    .map_err(|e| Error::new(format!("listen {local}: {e}")))?,
            )),
        };
        Ok(Self {
            router,
            sidecar,
            listener,
            local,
            policy,
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Connections this process holds itself (see [`crate::Live`]).
    pub fn live(&self) -> crate::Live {
        self.sidecar.live()
    }

    /// The API's base URL: `http://ADDR`, or `https://ADDR` over TLS.
    pub fn url(&self) -> String {
        let scheme = match self.listener {
            Some(Bound::Tls(_)) => "https",
            _ => "http",
        };
        format!("{scheme}://{}", self.local)
    }

    /// Serves until `shutdown` completes, then drains ([`serve`]), stops
    /// the background tasks and flushes the store. An error here is a
    /// failure after start (`vigil serve` exits 1).
    pub async fn run<F>(self, shutdown: F) -> Result<(), Error>
    where
        F: Future<Output = ()>,
    {
        let Self {
            router,
            sidecar,
            listener,
            local,
            policy,
        } = self;
        let tls = matches!(listener, Some(Bound::Tls(_)));
        if listener.is_some() {
            tracing::info!(address = %local, tls, policy = ?policy, "vigil serve started");
        } else {
            tracing::info!(policy = ?policy, "engine started (no API listener)");
        }
        let served = {
            let signal = async {
                shutdown.await;
                tracing::info!("shutting down");
                sidecar.shutdown();
            };
            let serving = async {
                match listener {
                    Some(Bound::Plain(listener)) => {
                        use axum::serve::ListenerExt;
                        let listener = listener.tap_io(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        });
                        serve(listener, router, &sidecar).await
                    }
                    Some(Bound::Tls(listener)) => serve(listener, router, &sidecar).await,
                    None => {
                        let mut stop = sidecar.app.shutdown.clone();
                        let _ = stop.wait_for(|s| *s).await;
                        Ok(())
                    }
                }
            };
            tokio::pin!(serving);
            tokio::select! {
                result = &mut serving => result,
                () = signal => serving.await,
            }
        };
        let closed = sidecar.close().await;
        match (served, closed) {
            (Ok(()), Ok(())) => {
                tracing::info!("stopped cleanly");
                Ok(())
            }
            (Err(e), _) => Err(Error::new(format!("the server failed: {e}"))),
            (_, Err(e)) => Err(e),
        }
    }
}
