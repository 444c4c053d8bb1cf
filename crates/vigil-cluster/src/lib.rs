//! Fleet mode on NATS JetStream: one deny, every node; the fleet's
//! teardown events in one place.
//!
//! A [`Cluster`] runs beside one engine (`vigil serve --cluster`):
//! - **Deny rules** live in a JetStream KV bucket, `<fleet>_deny`, one key
//!   per rule. Every node watches it and applies what changes; a rule set
//!   or lifted on any node is written there ([`Cluster::deny`],
//!   [`Cluster::lift`]). A node that restarts or reconnects catches up from
//!   the bucket before it reports ready ([`Cluster::is_ready`]); the local
//!   store keeps the last known rules, so a node that starts while NATS is
//!   down still enforces them. See `deny.rs` for how the fleet converges.
//! - **Fleet events**: every event this node announces is also published
//!   on `<fleet>.events.<node>` (the contract's event JSON plus `node`);
//!   [`Cluster::subscribe`] and [`EventWatch`] receive the whole fleet's.
//!
//! **The bus is not trusted.** Whoever can publish on NATS could write any
//! record; so every record is checked before it is used (size, fleet, key
//! form and place, and with a verify key configured an operator's Ed25519
//! signature, also on lifts), a refused record changes nothing, and a
//! record older than what a node holds is never taken. NATS is never in
//! the path of a verification: when it is unreachable, nodes keep
//! verifying, fetching and enforcing the rules they hold, and catch up
//! when it is back.

mod config;
mod deny;
mod events;
mod kv;
mod record;
mod revocation;
mod signing;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::task::JoinHandle;
use vigil_core::{DenyKey, DenyRule};
use vigil_runtime::Engine;

pub use config::{default_node_id, Auth, ClusterConfig};
pub use events::{with_node, EventWatch, FleetEvent};
pub use signing::{SigningKey, VerifyKey};

use deny::{Applied, DenySync};

/// Shortest and longest wait between attempts to reach NATS.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long catching up from the bucket may wait for the next entry.
const CATCH_UP_STEP: Duration = Duration::from_secs(10);

/// A failure of a fleet operation.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The fleet requires signed deny records and this node has no
    /// signing key.
    #[error("this fleet requires signed deny rules and this node has no signing key (cluster.deny_signing_key)")]
    CannotSign,
    /// The local store refused the change.
    #[error("store: {0}")]
    Store(String),
}

/// Connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Not yet connected.
    Connecting = 0,
    /// Connected and caught up.
    Connected = 1,
    /// Cut off from NATS; working on what is held.
    Disconnected = 2,
}

impl State {
    /// Its name in `/readyz` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
        }
    }
}

/// Counters and state shared by a cluster's tasks.
#[derive(Default)]
pub(crate) struct Shared {
    state: AtomicU8,
    ready: AtomicBool,
    synced: AtomicBool,
    ever_connected: AtomicBool,
    pub(crate) refused: AtomicU64,
    pub(crate) applied: AtomicU64,
    written: AtomicU64,
    write_failures: AtomicU64,
    disconnects: AtomicU64,
    resyncs: AtomicU64,
    pub(crate) events_published: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) shared_published: AtomicU64,
    pub(crate) shared_taken: AtomicU64,
    pub(crate) shared_refused: AtomicU64,
    pub(crate) leases_taken: AtomicU64,
    pub(crate) fetches_saved: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            1 => State::Connected,
            2 => State::Disconnected,
            _ => State::Connecting,
        }
    }

    fn error(&self, e: impl Into<String>) {
        let e = e.into();
        tracing::warn!(error = %e, "cluster");
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(e);
    }
}

/// What [`Cluster::status`] reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterStatus {
    /// `connecting`, `connected` or `disconnected`.
    pub state: &'static str,
    /// Whether the deny rules were caught up from the bucket since the
    /// last (re)connection.
    pub synced: bool,
    /// The fleet.
    pub fleet: String,
    /// This node.
    pub node: String,
    /// Whether deny records must be signed.
    pub signed: bool,
    /// The last failure talking to NATS.
    pub last_error: Option<String>,
    /// Deny records from the bus refused (forged, unsigned, malformed,
    /// over the cap).
    pub refused: u64,
    /// Deny records from the bus applied.
    pub applied: u64,
    /// Deny records this node wrote to the bus.
    pub written: u64,
    /// Writes to the bus that failed (retried on the next resync).
    pub write_failures: u64,
    /// Times the connection to NATS was lost.
    pub disconnects: u64,
    /// Catch-ups from the bucket.
    pub resyncs: u64,
    /// Events this node published on the bus.
    pub events_published: u64,
    /// Events not published (bus unreachable or too slow).
    pub events_dropped: u64,
    /// CRLs and OCSP answers this node fetched from a CA and published.
    pub revocation_published: u64,
    /// CRLs and OCSP answers taken from the bus (checked, newer than held).
    pub revocation_taken: u64,
    /// CRLs and OCSP answers from the bus refused (forged, stale, rolled
    /// back, over the size cap).
    pub revocation_refused: u64,
    /// Fetch leases this node took (it asked the CA).
    pub fetch_leases: u64,
    /// Refreshes that did not ask the CA: another node had, in this window.
    pub fetches_saved: u64,
}

/// Fleet mode beside one engine. Cheap to clone; stops when the last
/// clone is dropped or [`Cluster::close`] is called.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClusterConfig,
    shared: Arc<Shared>,
    deny: DenySync,
    bucket: Mutex<Option<async_nats::jetstream::kv::Store>>,
    /// Asks the session to catch up again (reconnected, or a write failed).
    wake: Notify,
    events: mpsc::Sender<(&'static str, String)>,
    fleet: broadcast::Sender<FleetEvent>,
    exchange: Arc<revocation::FleetExchange>,
    engine: Engine,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Cluster {
    /// Starts fleet mode for `engine`: connects in the background (and
    /// keeps trying), catches up the deny rules, then follows them. Must
    /// be called within a Tokio runtime.
    pub fn start(engine: Engine, config: ClusterConfig) -> Result<Self, String> {
        config.validate()?;
        let shared = Arc::new(Shared::default());
        let deny = DenySync::new(engine.clone(), &config, Arc::clone(&shared));
        let exchange = Arc::new(revocation::FleetExchange::new(
            config.node_id.clone(),
            config.fetch_lease,
            config.max_shared_bytes,
            Arc::clone(&shared),
        ));
        if !engine.set_exchange(exchange.clone()) {
            return Err("this engine already shares its revocation data with a fleet".into());
        }
        let (events_tx, events_rx) = mpsc::channel(events::QUEUE);
        let (fleet, _) = broadcast::channel(events::FLEET_CAPACITY);
        let inner = Arc::new(Inner {
            config,
            shared,
            deny,
            bucket: Mutex::new(None),
            wake: Notify::new(),
            events: events_tx,
            fleet,
            exchange,
            engine,
            tasks: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(run(Arc::downgrade(&inner), events_rx));
        inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        Ok(Self { inner })
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.inner.config.node_id
    }

    /// The fleet's name.
    pub fn fleet(&self) -> &str {
        &self.inner.config.fleet
    }

    /// Ready: the deny rules were caught up from the bucket, or NATS could
    /// not be reached at the first attempt (the node then works on the
    /// rules it holds; NATS is never needed to verify).
    pub fn is_ready(&self) -> bool {
        self.inner.shared.ready.load(Ordering::Acquire)
    }

    /// State and counters.
    pub fn status(&self) -> ClusterStatus {
        let s = &self.inner.shared;
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClusterStatus {
            state: s.state().as_str(),
            synced: s.synced.load(Ordering::Acquire),
            fleet: self.inner.config.fleet.clone(),
            node: self.inner.config.node_id.clone(),
            signed: self.inner.deny.signed(),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            refused: n(&s.refused),
            applied: n(&s.applied),
            written: n(&s.written),
            write_failures: n(&s.write_failures),
            disconnects: n(&s.disconnects),
            resyncs: n(&s.resyncs),
            events_published: n(&s.events_published),
            events_dropped: n(&s.events_dropped),
            revocation_published: n(&s.shared_published),
            revocation_taken: n(&s.shared_taken),
            revocation_refused: n(&s.shared_refused),
            fetch_leases: n(&s.leases_taken),
            fetches_saved: n(&s.fetches_saved),
        }
    }

    /// Sets `rule` on this node at once (tearing down what it matches
    /// here) and writes it to the bucket for the fleet. Returns whether
    /// this node's list changed. When NATS cannot be reached the rule is
    /// held here and written when it is back. Also returns the rule as
    /// held: with who set it (`set_by`, else this node) and when.
    pub async fn deny(&self, rule: DenyRule) -> Result<(bool, DenyRule), ClusterError> {
        let (changed, held, kv, sealed) = self.inner.deny.set_local(rule).await?;
        self.inner.write(&kv, sealed).await;
        Ok((changed, held))
    }

    /// Lifts the rule with `key` on this node and in the bucket. Returns
    /// whether this node held it.
    pub async fn lift(&self, key: &DenyKey) -> Result<bool, ClusterError> {
        let (lifted, write) = self.inner.deny.lift_local(key).await?;
        if let Some((kv, sealed)) = write {
            self.inner.write(&kv, sealed).await;
        }
        Ok(lifted)
    }

    /// Publishes an event (the contract's JSON) to the fleet; never waits:
    /// when the queue is full the event is dropped and counted.
    /// `data` should carry `node` already ([`with_node`]); the receivers
    /// set it from the subject anyway.
    pub fn publish_event(&self, name: &'static str, data: String) {
        if self.inner.events.try_send((name, data)).is_err() {
            self.inner
                .shared
                .events_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The fleet's events (every node's, this one's included) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FleetEvent> {
        self.inner.fleet.subscribe()
    }

    /// Stops the background tasks.
    pub fn close(&self) {
        for task in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Inner {
    /// Writes `sealed` under `kv`; a failure is counted and the session
    /// asked to catch up (which writes back what the bucket lacks).
    async fn write(&self, kv: &str, sealed: Bytes) {
        let bucket = self
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(bucket) = bucket else {
            // Not connected yet: the catch-up writes it.
            return;
        };
        match tokio::time::timeout(self.config.request_timeout, bucket.put(kv, sealed)).await {
            Ok(Ok(_)) => {
                self.shared.written.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => self.write_failed(e.to_string()),
            Err(_) => self.write_failed("timed out".into()),
        }
    }

    fn write_failed(&self, e: String) {
        self.shared.write_failures.fetch_add(1, Ordering::Relaxed);
        self.shared.error(format!("writing a deny record: {e}"));
        self.wake.notify_one();
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Connects to NATS (in the client: reconnects with backoff forever).
pub(crate) async fn connect(
    config: &ClusterConfig,
    on_event: Option<(Arc<Shared>, std::sync::Weak<Inner>)>,
) -> Result<async_nats::Client, String> {
    let mut options = match &config.auth {
        Auth::None => async_nats::ConnectOptions::new(),
        Auth::CredentialsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("cluster credentials {}: {e}", path.display()))?,
        Auth::Nkey(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
        Auth::UserPassword { user, password } => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        Auth::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
    };
    options = options
        .name(format!("vigil {}", config.node_id))
        .connection_timeout(config.connect_timeout)
        .request_timeout(Some(config.request_timeout))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            let step = BACKOFF_MIN.saturating_mul(1 << attempts.min(5));
            step.min(BACKOFF_MAX / 2)
        });
    if let Some(ca) = &config.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((shared, inner)) = on_event {
        options = options.event_callback(move |event| {
            let shared = Arc::clone(&shared);
            let inner = inner.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        // Revocation data is fetched alone until the
                        // session is back.
                        if let Some(inner) = inner.upgrade() {
                            inner.exchange.disconnected();
                        }
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        shared.synced.store(false, Ordering::Release);
                        shared.set_state(State::Disconnected);
                        shared.error("disconnected from NATS");
                    }
                    async_nats::Event::Connected => {
                        // Reconnected: catch up on what changed meanwhile.
                        if shared.ever_connected.swap(true, Ordering::AcqRel) {
                            if let Some(inner) = inner.upgrade() {
                                inner.wake.notify_one();
                            }
                        }
                    }
                    other => tracing::debug!(event = %other, "NATS"),
                }
            }
        });
    }
    options
        .connect(config.servers.clone())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", config.servers.join(",")))
}

/// The background side: connect (retrying), then sessions forever.
async fn run(inner: std::sync::Weak<Inner>, events_rx: mpsc::Receiver<(&'static str, String)>) {
    let mut delay = BACKOFF_MIN;
    let client = loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let shared = Arc::clone(&strong.shared);
        let config = strong.config.clone();
        drop(strong);
        match connect(&config, Some((Arc::clone(&shared), inner.clone()))).await {
            Ok(client) => break client,
            Err(e) => {
                shared.error(e);
                shared.set_state(State::Disconnected);
                // NATS is never needed to verify: after the first failed
                // attempt the node is ready on the rules it holds.
                shared.ready.store(true, Ordering::Release);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF_MAX);
            }
        }
    };
    {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        strong.shared.ever_connected.store(true, Ordering::Release);
        let publisher = tokio::spawn(events::publish(
            client.clone(),
            strong.config.fleet.clone(),
            strong.config.node_id.clone(),
            events_rx,
            Arc::clone(&strong.shared),
        ));
        let subscriber = tokio::spawn(events::forward(
            client.clone(),
            strong.config.fleet.clone(),
            strong.fleet.clone(),
            Arc::clone(&strong.shared),
        ));
        let mut tasks = strong.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.push(publisher);
        tasks.push(subscriber);
    }
    let js = jetstream::new(client);
    let mut delay = BACKOFF_MIN;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let failures = strong.shared.write_failures.load(Ordering::Relaxed);
        match session(&strong, &js).await {
            Ok(()) => {
                // Asked to catch up again: after a reconnection at once;
                // after failed writes, backing off while they keep failing.
                if strong.shared.write_failures.load(Ordering::Relaxed) > failures {
                    drop(strong);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(BACKOFF_MAX);
                } else {
                    delay = BACKOFF_MIN;
                }
            }
            Err(e) => {
                strong.shared.synced.store(false, Ordering::Release);
                strong.shared.error(e);
                drop(strong);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One session: open the bucket, catch up, then follow it until asked to
/// catch up again (`Ok`) or the watch fails (`Err`).
async fn session(inner: &Arc<Inner>, js: &jetstream::Context) -> Result<(), String> {
    let timeout = inner.config.request_timeout * 2;
    let timed = |what: &'static str| move |_| format!("{what}: timed out");
    let bucket = tokio::time::timeout(
        timeout,
        kv::deny_bucket(js, &inner.config.fleet, inner.config.replicas),
    )
    .await
    .map_err(timed("opening the deny bucket"))??;
    *inner.bucket.lock().unwrap_or_else(PoisonError::into_inner) = Some(bucket.clone());
    // Revocation data is shared beside the deny rules, on its own: its
    // store being out of reach (a JetStream outage) never holds the deny
    // rules back, and the node fetches alone meanwhile.
    // Opened here first, so that the node shares from the moment it is
    // ready; when that fails, the task keeps trying.
    let opened = tokio::time::timeout(
        timeout,
        inner
            .exchange
            .open(js, &inner.config.fleet, inner.config.replicas),
    )
    .await;
    let first = match opened {
        Ok(Ok(handles)) => Some(handles),
        Ok(Err(e)) => {
            inner.shared.error(e);
            None
        }
        Err(_) => {
            inner
                .shared
                .error("opening the revocation store: timed out");
            None
        }
    };
    let _revocation = AbortOnDrop(tokio::spawn(share_revocation(
        Arc::clone(inner),
        js.clone(),
        first,
    )));
    let mut watch = tokio::time::timeout(timeout, bucket.watch_with_history(">"))
        .await
        .map_err(timed("watching the deny bucket"))?
        .map_err(|e| format!("watching the deny bucket: {e}"))?;
    let status = tokio::time::timeout(timeout, bucket.status())
        .await
        .map_err(timed("deny bucket status"))?
        .map_err(|e| format!("deny bucket status: {e}"))?;
    // Catch up: the watch (deliver policy last-per-subject) first delivers
    // the latest entry of every key; the last of those has nothing pending
    // behind it. (`watch_all` would deliver only new entries.)
    let mut seen = HashSet::new();
    let mut caught_up = status.info.state.messages == 0;
    while !caught_up {
        let entry = tokio::time::timeout(CATCH_UP_STEP, watch.next())
            .await
            .map_err(timed("catching up the deny bucket"))?
            .ok_or("the deny bucket's watch ended")?
            .map_err(|e| format!("catching up the deny bucket: {e}"))?;
        seen.insert(entry.key.clone());
        caught_up = entry.delta == 0;
        if follow(inner, &entry).await == Applied::Refused {
            // The latest is refused (forged, unsigned): the newest record
            // of its history that passes is what holds.
            from_history(inner, &bucket, &entry.key, entry.revision).await;
        }
    }
    // What this node holds and the bucket lacks: set here while NATS was
    // out of reach, or before fleet mode.
    for kv in inner.deny.unseen_rules(&seen) {
        if let Some(sealed) = inner.deny.write_back(&kv) {
            inner.write(&kv, sealed).await;
        }
    }
    inner.shared.resyncs.fetch_add(1, Ordering::Relaxed);
    inner.shared.synced.store(true, Ordering::Release);
    inner.shared.set_state(State::Connected);
    inner.shared.ready.store(true, Ordering::Release);
    tracing::info!(keys = seen.len(), "deny rules caught up from the fleet");
    loop {
        tokio::select! {
            entry = watch.next() => match entry {
                Some(Ok(entry)) => { follow(inner, &entry).await; }
                Some(Err(e)) => return Err(format!("following the deny bucket: {e}")),
                None => return Err("the deny bucket's watch ended".into()),
            },
            () = inner.wake.notified() => return Ok(()),
        }
    }
}

/// Opens the revocation store and follows it, again after every failure
/// (backing off); fetching is left to the node alone meanwhile.
async fn share_revocation(
    inner: Arc<Inner>,
    js: jetstream::Context,
    mut first: Option<revocation::Handles>,
) {
    let timeout = inner.config.request_timeout * 2;
    let mut delay = BACKOFF_MIN;
    loop {
        let opened = match first.take() {
            Some(handles) => Ok(Ok(handles)),
            None => {
                tokio::time::timeout(
                    timeout,
                    inner
                        .exchange
                        .open(&js, &inner.config.fleet, inner.config.replicas),
                )
                .await
            }
        };
        let outcome = match opened {
            Ok(Ok(handles)) => {
                delay = BACKOFF_MIN;
                Arc::clone(&inner.exchange)
                    .follow(inner.engine.clone(), handles)
                    .await
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err("opening the revocation store: timed out".into()),
        };
        inner.exchange.disconnected();
        if let Err(e) = outcome {
            inner.shared.error(e);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// Applies one entry; writes back what this node holds when the bucket's
/// is older.
async fn follow(inner: &Inner, entry: &async_nats::jetstream::kv::Entry) -> Applied {
    let applied = inner.deny.apply(entry).await;
    if applied == Applied::Older {
        if let Some(sealed) = inner.deny.write_back(&entry.key) {
            inner.write(&entry.key, sealed).await;
        }
    }
    applied
}

/// Applies the newest record of `key`'s history before `revision` that
/// passes the checks, if any (the bucket keeps [`kv::HISTORY`] revisions).
async fn from_history(
    inner: &Inner,
    bucket: &async_nats::jetstream::kv::Store,
    key: &str,
    revision: u64,
) {
    let timeout = inner.config.request_timeout * 2;
    let Ok(Ok(mut history)) = tokio::time::timeout(timeout, bucket.history(key)).await else {
        return;
    };
    let mut older = Vec::new();
    while let Ok(Some(Ok(entry))) = tokio::time::timeout(timeout, history.next()).await {
        if entry.revision < revision {
            older.push(entry);
        }
        if older.len() > kv::HISTORY as usize {
            break;
        }
    }
    for entry in older.iter().rev() {
        if inner.deny.apply(entry).await != Applied::Refused {
            return;
        }
    }
}

/// A task aborted when this is dropped (a session's helpers end with it).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
