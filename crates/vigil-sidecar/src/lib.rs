//! `vigil serve`: the sidecar. An HTTP API (ARCHITECTURE.md, HTTP API) over
//! one engine: verify chains, track registered connections, announce on
//! `/v1/events` which must be torn down, deny certificates at once.
//!
//! Start-up: settings are checked, anchors loaded, the store opened and the
//! engine built (all failures exit 2). The listener is bound and its address
//! printed on stdout (`listening on http://ADDR`); then persisted
//! connections are restored in the background (`/readyz` is 503 until they
//! are) and every revocation source refreshed once, so that whatever was
//! revoked while the sidecar was down is announced.
//!
//! Shutdown on SIGTERM or SIGINT: stop accepting, end the event streams,
//! let requests in flight finish (10 s at most), write and flush the store.

mod api;
mod chain;
mod config;
mod connections;
mod error;
mod events;
mod handlers;
mod metrics;
mod openapi;
mod persist;
mod record;
mod tls;

use std::future::IntoFuture as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use vigil_core::{CertificateDer, RevocationPolicy, Status, Verdict, VerifyOptions};
use vigil_runtime::{Engine, EngineConfig, SledStore, Store, SystemClock};

use crate::UsageError;
pub(crate) use config::ServeArgs;
use config::Settings;
use connections::Connections;
use events::Hub;
use persist::Writer;

/// How long requests in flight may take to finish at shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// What every handler shares.
pub(crate) struct App {
    engine: Engine,
    policy: RevocationPolicy,
    conns: Arc<Connections>,
    hub: Arc<Hub>,
    metrics: metrics::Metrics,
    /// SHA-256 of the API token, when one is configured.
    token_digest: Option<[u8; 32]>,
    max_body_bytes: usize,
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

/// Runs the sidecar until SIGTERM/SIGINT.
pub(crate) fn run(args: ServeArgs) -> Result<ExitCode, UsageError> {
    let settings = Settings::resolve(args)?;
    init_logging(settings.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vigil-serve")
        .build()
        .map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(settings))
}

fn init_logging(level: config::LogLevel) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level.level())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn serve(settings: Settings) -> Result<ExitCode, UsageError> {
    let mut anchors: Vec<CertificateDer<'static>> = Vec::new();
    for path in &settings.anchors {
        anchors.extend(vigil_core::input::load_certificates(path)?);
    }
    let data_dir = settings.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| UsageError(format!("data-dir {}: {e}", data_dir.display())))?;
    let store: Arc<dyn Store> = Arc::new(
        tokio::task::spawn_blocking(move || SledStore::open(&data_dir))
            .await
            .map_err(|e| UsageError(e.to_string()))?
            .map_err(|e| UsageError(format!("data-dir {}: {e}", settings.data_dir.display())))?,
    );
    let anchor_count = anchors.len();
    let engine = Engine::open(
        anchors,
        Arc::clone(&store),
        EngineConfig::default(),
        Arc::new(SystemClock),
    )
    .map_err(|e| UsageError(format!("cannot start the engine: {e}")))?;

    let tls = match &settings.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| UsageError(format!("listen {}: {e}", settings.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| UsageError(format!("listen {}: {e}", settings.listen)))?;
    if !local.ip().is_loopback() && settings.api_token.is_none() {
        tracing::warn!(
            address = %local,
            "listening beyond loopback without --api-token: anyone who can reach it may \
             register, deny and refresh"
        );
    }

    let hub = Arc::new(Hub::new(settings.event_backlog));
    let writer = Writer::spawn(Arc::clone(&store));
    let (conns, torn) =
        Connections::new(&engine, settings.policy, Arc::clone(&hub), writer.clone());
    let (stop, shutdown) = watch::channel(false);
    let app = Arc::new(App {
        engine: engine.clone(),
        policy: settings.policy,
        conns: Arc::clone(&conns),
        hub,
        metrics: metrics::Metrics::new(),
        token_digest: settings
            .api_token
            .as_deref()
            .map(|t| vigil_core::sha256(t.as_bytes())),
        max_body_bytes: settings.max_body_bytes,
        keep_alive: settings.keep_alive,
        shutdown,
        restored: AtomicBool::new(false),
        anchors: anchor_count,
        openapi: openapi::document().to_string(),
        rendered: Rendered::default(),
    });

    let mut tasks = vec![engine.spawn_scheduler()];
    tasks.extend(conns.spawn_background());
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

    let router = api::router(Arc::clone(&app), settings.bench_echo);
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{local}");
    let _ = std::io::stdout().flush();
    tracing::info!(address = %local, tls = tls.is_some(), policy = ?settings.policy, "vigil serve started");

    let signal = async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    };
    let mut shutdown_seen = app.shutdown.clone();
    let served = match tls {
        None => {
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let server = axum::serve(listener, router).with_graceful_shutdown(signal);
            drain(server.into_future(), &mut shutdown_seen).await
        }
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)
                .map_err(|e| UsageError(format!("listen {local}: {e}")))?;
            let server = axum::serve(listener, router).with_graceful_shutdown(signal);
            drain(server.into_future(), &mut shutdown_seen).await
        }
    };

    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    teardowns.abort();
    let _ = teardowns.await;
    writer.close().await;
    let store_flushed = tokio::task::spawn_blocking(move || store.flush()).await;
    match (served, store_flushed) {
        (Ok(()), Ok(Ok(()))) => {
            tracing::info!("stopped cleanly");
            Ok(ExitCode::SUCCESS)
        }
        (Err(e), _) => {
            eprintln!("vigil: error: the server failed: {e}");
            Ok(ExitCode::from(1))
        }
        (_, Ok(Err(e))) => {
            eprintln!("vigil: error: store flush failed: {e}");
            Ok(ExitCode::from(1))
        }
        (_, Err(e)) => {
            eprintln!("vigil: error: store flush failed: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Runs the server; once shutdown is signalled, gives requests in flight
/// [`DRAIN_DEADLINE`] to finish.
async fn drain<F>(server: F, shutdown: &mut watch::Receiver<bool>) -> std::io::Result<()>
where
    F: std::future::Future<Output = std::io::Result<()>>,
{
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        _ = shutdown.wait_for(|s| *s) => {}
    }
    match tokio::time::timeout(DRAIN_DEADLINE, server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("requests still in flight after the drain deadline; stopping anyway");
            Ok(())
        }
    }
}

async fn wait_for_signal() {
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
/// restored, and (under `require`) the revocation data held is usable: no
/// CRL past its nextUpdate or never fetched, and not every OCSP answer
/// unusable.
pub(crate) fn readiness(app: &App) -> Result<Value, String> {
    if app.anchors == 0 {
        return Err("no trust anchor is loaded".into());
    }
    if !app.restored.load(Ordering::Acquire) {
        return Err("restoring persisted connections".into());
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
