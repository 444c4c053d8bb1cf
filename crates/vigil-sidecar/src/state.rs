//! The state every handler shares ([`App`]), the background side of an
//! app ([`Sidecar`]), and the checks that read that state (verification,
//! readiness).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_core::{CertificateDer, RevocationPolicy, Status, Verdict, VerifyOptions};
use vigil_runtime::{Engine, Store};

use crate::connections::Connections;
use crate::events::Hub;
use crate::persist::Writer;
use crate::{api, metrics, openapi, record, Error, Live, SidecarConfig};

#[cfg(doc)]
use crate::{serve, Server};

/// What every handler shares.
pub(crate) struct App {
    pub(crate) engine: Engine,
    pub(crate) policy: RevocationPolicy,
    pub(crate) conns: Arc<Connections>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) metrics: metrics::Metrics,
    /// SHA-256 of the API token, when one is configured.
    pub(crate) token_digest: Option<[u8; 32]>,
    pub(crate) metrics_auth: bool,
    pub(crate) loopback_hosts_only: bool,
    pub(crate) max_deny_rules: usize,
    /// Serialises deny-list changes, so the cap check and the insertion
    /// are one step.
    pub(crate) deny_lock: tokio::sync::Mutex<()>,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_read_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) keep_alive: Duration,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) restored: AtomicBool,
    pub(crate) anchors: usize,
    pub(crate) openapi: String,
    pub(crate) rendered: Rendered,
    pub(crate) memo: super::memo::RequestMemo,
    /// Fleet mode.
    pub(crate) cluster: Option<vigil_cluster::Cluster>,
    /// Connections are listed, not registered or removed through the API.
    pub(crate) connections_read_only: bool,
    pub(crate) extra_metrics: Option<crate::ExtraMetrics>,
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
    pub(crate) app: AppState,
    store: Arc<dyn Store>,
    writer: Writer,
    stop: watch::Sender<bool>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
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
    let hub = Arc::new(Hub::new(
        config.event_backlog,
        config.max_subscribers,
        config.cluster.clone(),
    ));
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
        memo: Default::default(),
        cluster: config.cluster.clone(),
        connections_read_only: config.connections_read_only,
        extra_metrics: config.extra_metrics.clone(),
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
    /// A handle for connections this process holds itself (see [`Live`]).
    pub fn live(&self) -> Live {
        Live::new(Arc::clone(&self.app))
    }

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
        if let Some(cluster) = &self.app.cluster {
            cluster.close();
        }
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
    if let Some(cluster) = &app.cluster {
        if !cluster.is_ready() {
            return Err("catching up the fleet's deny rules from NATS".into());
        }
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
    let mut body = json!({
        "ready": true,
        "anchors": app.anchors,
        "connections": app.conns.len(),
        "sources": sources.len(),
    });
    if let Some(cluster) = &app.cluster {
        body["cluster"] = cluster_json(cluster);
    }
    Ok(body)
}

/// The fleet's state as `/readyz` shows it.
pub(crate) fn cluster_json(cluster: &vigil_cluster::Cluster) -> Value {
    serde_json::to_value(cluster.status()).unwrap_or(Value::Null)
}
