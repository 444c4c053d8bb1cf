//! The Vigil sidecar: an HTTP API (ARCHITECTURE.md, HTTP API) over one
//! engine: verify chains, track registered connections, announce on
//! `/v1/events` which must be torn down, deny certificates at once.
//!
//! Two ways in:
//! - [`app`] builds the router over an [`Engine`] the caller already has
//!   (and the store it opened it with); serve it with [`serve`] (deadlines
//!   for slow clients, graceful drain) or with `axum::serve`, and end with
//!   [`Sidecar::shutdown`] and [`Sidecar::close`].
//! - [`Server`] is the whole of `vigil serve`: settings are checked,
//!   anchors loaded, the store opened and the engine built, the listener
//!   bound ([`Server::start`]; the binary prints `listening on
//!   http://ADDR` then), and the API served until told to stop
//!   ([`Server::run`]).
//!
//! Once the app is built, persisted connections are restored in the
//! background (`/readyz` is 503 until they are) and every revocation
//! source refreshed once, so that whatever was revoked while the sidecar was
//! down is announced.
//!
//! Shutdown: stop accepting, end the event streams, let requests in flight
//! finish ([`DRAIN_DEADLINE`] at most), write and flush the store.
//!
//! Slow clients ([`serve`]): a request's head must arrive within
//! [`SidecarConfig::header_read_timeout`] (30 s by default; an idle
//! keep-alive connection is closed after as long), and its body within
//! [`SidecarConfig::body_read_timeout`] (30 s; 408 after). Responses are
//! not timed, so `/v1/events` streams last as long as the client stays.
//! Over TLS the handshake has 10 s.

mod api;
mod chain;
mod connections;
mod error;
mod events;
mod handlers;
mod metrics;
mod openapi;
mod persist;
mod record;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_core::{CertificateDer, RevocationPolicy, Status, Verdict, VerifyOptions};
use vigil_runtime::{Engine, EngineConfig, SledStore, Store, SystemClock};

use connections::Connections;
use events::Hub;
use persist::Writer;

/// How long requests in flight may take to finish at shutdown.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Default of [`SidecarConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// Default of [`SidecarConfig::max_subscribers`].
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 256;
/// Default of [`SidecarConfig::max_deny_rules`].
pub const DEFAULT_MAX_DENY_RULES: usize = 10_000;

/// How the API behaves. [`Default`] is what `vigil serve` uses when nothing
/// is configured.
#[derive(Clone)]
pub struct SidecarConfig {
    /// Revocation policy of `/v1/verify` and of registered connections
    /// (default `require`).
    pub policy: RevocationPolicy,
    /// Bearer token every `/v1/*` route requires (reads included);
    /// `None`: no token is asked for. `/healthz`, `/readyz` and
    /// `/openapi.json` stay open; `/metrics` too unless
    /// [`SidecarConfig::metrics_auth`].
    pub api_token: Option<String>,
    /// `/metrics` requires the token too (default off).
    pub metrics_auth: bool,
    /// Refuse requests whose `Host` is not a loopback name or address
    /// (`localhost`, `127.0.0.0/8`, `[::1]`, any port) with 421: the
    /// DNS-rebinding defence of a loopback bind (default on; [`Server`]
    /// turns it off when it binds beyond loopback).
    pub loopback_hosts_only: bool,
    /// Most registered connections; beyond, `POST /v1/connections` is 429
    /// (default 100000).
    pub max_connections: usize,
    /// Most `/v1/events` subscribers at once; beyond, 429 (default 256).
    pub max_subscribers: usize,
    /// Most deny rules; beyond, `POST /v1/deny` of a new key is 429
    /// (default 10000).
    pub max_deny_rules: usize,
    /// Largest request body accepted, bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Time between keep-alive comments on `/v1/events` (default 15 s).
    pub sse_keep_alive: Duration,
    /// Events kept for `Last-Event-ID` resumption (default 8192).
    pub event_backlog: usize,
    /// Time a client has to send a request's head, and how long an idle
    /// keep-alive connection is kept (default 30 s). Applied by [`serve`].
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once handlers start
    /// reading it (default 30 s); after it the request gets 408.
    pub body_read_timeout: Duration,
    /// Adds `POST /bench/echo`, a trivial handler behind the same stack, as
    /// the ceiling for load benchmarks (default off).
    pub bench_echo: bool,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        Self {
            policy: RevocationPolicy::Require,
            api_token: None,
            metrics_auth: false,
            loopback_hosts_only: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
            max_deny_rules: DEFAULT_MAX_DENY_RULES,
            max_body_bytes: 1024 * 1024,
            sse_keep_alive: Duration::from_secs(15),
            event_backlog: 8192,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            bench_echo: false,
        }
    }
}

impl std::fmt::Debug for SidecarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarConfig")
            .field("policy", &self.policy)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("metrics_auth", &self.metrics_auth)
            .field("loopback_hosts_only", &self.loopback_hosts_only)
            .field("max_connections", &self.max_connections)
            .field("max_subscribers", &self.max_subscribers)
            .field("max_deny_rules", &self.max_deny_rules)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("sse_keep_alive", &self.sse_keep_alive)
            .field("event_backlog", &self.event_backlog)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("bench_echo", &self.bench_echo)
            .finish()
    }
}

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

/// What every handler shares.
pub(crate) struct App {
    engine: Engine,
    policy: RevocationPolicy,
    conns: Arc<Connections>,
    hub: Arc<Hub>,
    metrics: metrics::Metrics,
    /// SHA-256 of the API token, when one is configured.
    token_digest: Option<[u8; 32]>,
    metrics_auth: bool,
    loopback_hosts_only: bool,
    max_deny_rules: usize,
    /// Serialises deny-list changes, so the cap check and the insertion
    /// are one step.
    deny_lock: tokio::sync::Mutex<()>,
    max_body_bytes: usize,
    body_read_timeout: Duration,
    header_read_timeout: Duration,
    keep_alive: Duration,
    shutdown: watch::Receiver<bool>,
    restored: AtomicBool,
    anchors: usize,
    openapi: String,
    rendered: Rendered,
}

/// Verdicts already serialized: the engine's verdict cache hands out the
/// same `Arc<Verdict>` for repeated verifications, so its JSON is written
/// once. Keyed by the verdict's address and held by a `Weak`, which keeps
/// the address from being reused while the entry exists.
#[derive(Default)]
pub(crate) struct Rendered(
    std::sync::RwLock<
        std::collections::HashMap<usize, (std::sync::Weak<Verdict>, axum::body::Bytes)>,
    >,
);

const RENDERED_CAPACITY: usize = 1024;

impl Rendered {
    /// The JSON of `verdict`.
    pub(crate) fn get(&self, verdict: &Arc<Verdict>) -> axum::body::Bytes {
        use std::sync::PoisonError;
        let key = Arc::as_ptr(verdict) as usize;
        if let Some((weak, bytes)) = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            if weak.upgrade().is_some_and(|v| Arc::ptr_eq(&v, verdict)) {
                return bytes.clone();
            }
        }
        let bytes = axum::body::Bytes::from(verdict.to_json());
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= RENDERED_CAPACITY {
            map.clear();
        }
        map.insert(key, (Arc::downgrade(verdict), bytes.clone()));
        bytes
    }
}

/// The handlers' state.
pub(crate) type AppState = Arc<App>;

/// The background side of an [`app`]: connection leases, teardown
/// announcements, the restore of persisted connections, and the store
/// writer. Dropping it stops the background tasks without flushing; call
/// [`Sidecar::close`] for a clean stop.
pub struct Sidecar {
    app: AppState,
    store: Arc<dyn Store>,
    writer: Writer,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    teardowns: Option<JoinHandle<()>>,
}

/// Builds the API over `engine`. `store` is the store `engine` was opened
/// with: registered connections are persisted there and restored from it
/// (in the background; `/readyz` is 503 until then). The engine's refresh
/// scheduler is not started here: run [`Engine::spawn_scheduler`] once per
/// engine, as [`Server`] does.
///
/// Must be called within a Tokio runtime (it spawns the background tasks).
pub fn app(engine: Engine, store: Arc<dyn Store>, config: SidecarConfig) -> (Router, Sidecar) {
    let hub = Arc::new(Hub::new(config.event_backlog, config.max_subscribers));
    let writer = Writer::spawn(Arc::clone(&store));
    let (conns, torn) = Connections::new(
        &engine,
        config.policy,
        Arc::clone(&hub),
        writer.clone(),
        config.max_connections,
    );
    let (stop, shutdown) = watch::channel(false);
    let app = Arc::new(App {
        anchors: engine.anchors().len(),
        engine,
        policy: config.policy,
        conns: Arc::clone(&conns),
        hub,
        metrics: metrics::Metrics::new(),
        token_digest: config
            .api_token
            .as_deref()
            .map(|t| vigil_core::sha256(t.as_bytes())),
        metrics_auth: config.metrics_auth,
        loopback_hosts_only: config.loopback_hosts_only,
        max_deny_rules: config.max_deny_rules,
        deny_lock: tokio::sync::Mutex::new(()),
        max_body_bytes: config.max_body_bytes,
        body_read_timeout: config.body_read_timeout,
        header_read_timeout: config.header_read_timeout,
        keep_alive: config.sse_keep_alive,
        shutdown,
        restored: AtomicBool::new(false),
        openapi: openapi::document(config.metrics_auth).to_string(),
        rendered: Rendered::default(),
    });

    let mut tasks = conns.spawn_background();
    let teardowns = tokio::spawn(Arc::clone(&conns).run_teardowns(torn));
    {
        let app = Arc::clone(&app);
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let (restored, refused) = app.conns.restore(store).await;
            app.restored.store(true, Ordering::Release);
            tracing::info!(restored, refused, "persisted connections restored");
            // What was revoked while the sidecar was down.
            let refreshed = app.engine.refresh_all().await;
            tracing::info!(sources = refreshed.len(), "revocation sources refreshed");
        }));
    }
    let router = api::router(Arc::clone(&app), config.bench_echo);
    let sidecar = Sidecar {
        app,
        store,
        writer,
        stop,
        tasks,
        teardowns: Some(teardowns),
    };
    (router, sidecar)
}

impl Sidecar {
    /// Whether the persisted connections have been restored.
    pub fn is_restored(&self) -> bool {
        self.app.restored.load(Ordering::Acquire)
    }

    /// Starts the shutdown: the event streams end and [`serve`] stops
    /// accepting and drains. Idempotent.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops the background tasks, writes what is queued and flushes the
    /// store. Call it once the server has stopped.
    pub async fn close(mut self) -> Result<(), Error> {
        self.shutdown();
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        if let Some(teardowns) = self.teardowns.take() {
            teardowns.abort();
            let _ = teardowns.await;
        }
        self.writer.close().await;
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::new(format!("store flush failed: {e}"))),
            Err(e) => Err(Error::new(format!("store flush failed: {e}"))),
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(self.teardowns.as_ref()) {
            task.abort();
        }
    }
}

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

/// What `vigil serve` resolves from its flags, environment and file.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: the sled store (created when missing).
    pub data_dir: PathBuf,
    /// Trust anchor files (PEM bundle, DER or a directory).
    pub anchors: Vec<PathBuf>,
    /// Serve over TLS with this certificate chain and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How revocation data is fetched (destination rules, limits).
    pub fetch: vigil_runtime::FetchConfig,
    /// How the API behaves.
    pub sidecar: SidecarConfig,
    /// Serve a non-loopback address without an API token (otherwise
    /// [`Server::start`] refuses to).
    pub insecure_no_auth: bool,
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
    listener: Bound,
    local: SocketAddr,
    policy: RevocationPolicy,
}

impl Server {
    /// Loads the anchors, opens the store and the engine, loads the TLS
    /// files, binds the listener, builds the app and starts the refresh
    /// scheduler. Every failure here is the settings' (`vigil serve` exits
    /// 2).
    pub async fn start(config: ServeConfig) -> Result<Self, Error> {
        let mut anchors: Vec<CertificateDer<'static>> = Vec::new();
        for path in &config.anchors {
            anchors.extend(
                vigil_core::input::load_certificates(path)
                    .map_err(|e| Error::new(e.to_string()))?,
            );
        }
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
            EngineConfig {
                fetch: config.fetch.clone(),
                ..EngineConfig::default()
            },
            Arc::new(SystemClock),
        )
        .map_err(|e| Error::new(format!("cannot start the engine: {e}")))?;

        let tls = match &config.tls {
            Some((cert, key)) => Some(tls::server_config(cert, key)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::new(format!("listen {}: {e}", config.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::new(format!("listen {}: {e}", config.listen)))?;
        let loopback = local.ip().is_loopback();
        if !loopback && config.sidecar.api_token.is_none() {
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
        let (router, mut sidecar) = app(engine, store, sidecar_config);
        sidecar.tasks.insert(0, scheduler);
        let listener = match tls {
            None => Bound::Plain(listener),
            Some(tls) => Bound::Tls(
                tls::TlsListener::new(listener, tls)
                    .map_err(|e| Error::new(format!("listen {local}: {e}")))?,
            ),
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

    /// The API's base URL: `http://ADDR`, or `https://ADDR` over TLS.
    pub fn url(&self) -> String {
        let scheme = match self.listener {
            Bound::Plain(_) => "http",
            Bound::Tls(_) => "https",
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
        let tls = matches!(listener, Bound::Tls(_));
        tracing::info!(address = %local, tls, policy = ?policy, "vigil serve started");
        let served = {
            let signal = async {
                shutdown.await;
                tracing::info!("shutting down");
                sidecar.shutdown();
            };
            let serving = async {
                match listener {
                    Bound::Plain(listener) => {
                        use axum::serve::ListenerExt;
                        let listener = listener.tap_io(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        });
                        serve(listener, router, &sidecar).await
                    }
                    Bound::Tls(listener) => serve(listener, router, &sidecar).await,
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

/// Verifies with the data held; fetches first only when that leaves the
/// revocation status unknown on a path that validates to an anchor (so an
/// untrusted chain never makes the sidecar fetch the URLs it names).
pub(crate) async fn verify_chain(
    engine: &Engine,
    chain: &[CertificateDer<'_>],
    options: &VerifyOptions,
) -> Arc<Verdict> {
    let verdict = engine.verify_cached(chain, options);
    if verdict.status == Status::Unknown && options.policy != RevocationPolicy::Off {
        return engine.verify(chain, options).await;
    }
    verdict
}

/// `/readyz`: the trust store is loaded, persisted connections are
/// restored, every stored record (deny rules, revocation facts,
/// registrations) could be read, and (under `require`) the revocation data held is usable: no
/// CRL past its nextUpdate or never fetched, and not every OCSP answer
/// unusable.
pub(crate) fn readiness(app: &App) -> Result<Value, String> {
    if app.anchors == 0 {
        return Err("no trust anchor is loaded".into());
    }
    if !app.restored.load(Ordering::Acquire) {
        return Err("restoring persisted connections".into());
    }
    // Records that could not be read at start: failing open on them
    // (a deny rule, a revocation fact, a registration silently gone) is
    // what this refuses; they stay on disk for the operator.
    let mut problems = app.engine.load_problems();
    problems.extend(app.conns.problems());
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        return Err(format!(
            "{} stored record(s) could not be loaded: {}",
            problems.len(),
            shown.join("; ")
        ));
    }
    // A store that refuses writes loses what the engine learns (a
    // remembered revocation among it): not ready until restarted on a
    // working store.
    let store_errors = app.engine.store_errors();
    if store_errors > 0 {
        return Err(format!(
            "{store_errors} store write(s) failed; what was learned may not survive a restart"
        ));
    }
    let sources = app.engine.sources();
    if app.policy == RevocationPolicy::Require {
        let now = record::now_ms() / 1000;
        let usable = |s: &vigil_runtime::SourceState| {
            s.next_update
                .as_deref()
                .and_then(metrics::parse_rfc3339)
                .map_or(s.this_update.is_some(), |next| next > now)
        };
        let stale: Vec<&str> = sources
            .iter()
            .filter(|s| s.kind == "crl" && !usable(s))
            .map(|s| s.url.as_str())
            .collect();
        if !stale.is_empty() {
            return Err(format!(
                "revocation data unusable (missing or past nextUpdate): {}",
                stale.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            ));
        }
        let ocsp: Vec<_> = sources.iter().filter(|s| s.kind == "ocsp").collect();
        if !ocsp.is_empty() && !ocsp.iter().any(|s| usable(s)) {
            return Err("no OCSP answer held is usable".into());
        }
    }
    Ok(json!({
        "ready": true,
        "anchors": app.anchors,
        "connections": app.conns.len(),
        "sources": sources.len(),
    }))
}
