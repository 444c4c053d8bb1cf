//! Live connections tied to the engine: a [`Tracker`] owns a connection
//! [`Registry`] and keeps it current with everything the engine learns.
//!
//! * Revocation data: every CRL the engine loads (refresh scheduler,
//!   prefetch, [`Engine::add_crl`]) and every OCSP answer (fetched or
//!   stapled) re-checks exactly the connections resting on a certificate it
//!   is about ([`Registry::on_crl`], [`Registry::on_certificate_data`]).
//! * Trust store: removing an anchor ([`Engine::remove_anchor`],
//!   [`Engine::set_anchors`]) tears down the connections whose path ends at
//!   it.
//! * Time: [`Tracker::spawn_expiry`] re-verifies each connection when its
//!   verdict lapses (a notAfter, or revocation data reaching nextUpdate that
//!   nothing refreshed).
//!
//! Teardown events go to each connection's own [`TeardownSignal`] and to
//! every subscriber ([`Tracker::subscribe`]). In [`Enforcement::DryRun`] the
//! events are emitted and counted, and the stream adapters leave the
//! connections open.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, Notify};
use vigil_core::{
    CertificateDer, ConnectionId, DegradedNotice, Registry, RevocationPolicy, Snapshot, Status,
    TeardownEvent, TeardownReason, TeardownSignal, Verdict, VerifyOptions,
};

use crate::engine::{Change, Observer};
use crate::Engine;

/// Whether teardown decisions close connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Close connections whose peer is no longer trusted (the default).
    #[default]
    Enforce,
    /// Emit and count teardown events, leave the connections open: for a
    /// safe rollout.
    DryRun,
}

impl std::str::FromStr for Enforcement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Self::Enforce),
            "dry-run" => Ok(Self::DryRun),
            other => Err(format!(
                "unknown enforcement mode '{other}' (expected enforce or dry-run)"
            )),
        }
    }
}

/// Tracker settings.
///
/// Built from [`Default`] with the `with_*` setters; the fields are public
/// to read. More fields may come, so other crates cannot build it as a
/// struct literal.
///
/// ```
/// use vigil_core::{Usage, VerifyOptions};
/// use vigil_runtime::{Enforcement, TrackerConfig};
///
/// let config = TrackerConfig::default()
///     .with_options(VerifyOptions::new(Usage::Client))
///     .with_enforcement(Enforcement::DryRun);
/// assert_eq!(config.event_capacity, 65_536);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TrackerConfig {
    /// The options connections are verified and re-verified with (usage:
    /// `client` for a server tracking its clients).
    pub options: VerifyOptions,
    /// Enforce or dry-run.
    pub enforcement: Enforcement,
    /// Events a slow subscriber may fall behind by before it misses some
    /// (it is then told how many, see [`broadcast::error::RecvError`]).
    pub event_capacity: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            options: VerifyOptions::default(),
            enforcement: Enforcement::Enforce,
            event_capacity: 65_536,
        }
    }
}

impl TrackerConfig {
    /// Sets the options connections are verified and re-verified with
    /// (default [`VerifyOptions::default`]: any usage, `require`, the whole
    /// chain).
    #[must_use]
    pub fn with_options(mut self, options: VerifyOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets whether teardown decisions close connections (default
    /// [`Enforcement::Enforce`]).
    #[must_use]
    pub fn with_enforcement(mut self, enforcement: Enforcement) -> Self {
        self.enforcement = enforcement;
        self
    }

    /// Sets how many events a slow subscriber may fall behind by (default
    /// 65,536).
    #[must_use]
    pub fn with_event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events;
        self
    }
}

/// What subscribers receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionEvent {
    /// A connection's peer is no longer trusted.
    Teardown {
        /// The event (the `teardown` contract shape).
        #[serde(flatten)]
        event: TeardownEvent,
        /// True when the tracker runs in dry-run: the connection was left
        /// open.
        dry_run: bool,
    },
    /// A connection is kept although its revocation status is unknown
    /// (soft-fail under `prefer`).
    Degraded(DegradedNotice),
}

/// Counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrackerMetrics {
    /// Connections tracked now.
    pub open: u64,
    /// Connections tracked since start.
    pub tracked: u64,
    /// Of those, on a resumed TLS session.
    pub resumed: u64,
    /// Connections refused when tracked (their chain was no longer trusted,
    /// e.g. a session resumed after revocation).
    pub refused: u64,
    /// Connections an adapter saw but could not track (no peer
    /// certificate): blind spots.
    pub untracked: u64,
    /// Connections closed normally.
    pub closed: u64,
    /// Teardowns by reason, after tracking.
    pub revoked: u64,
    /// Expired.
    pub expired: u64,
    /// Unverifiable.
    pub unverifiable: u64,
    /// Untrusted.
    pub untrusted: u64,
    /// Denied.
    pub denied: u64,
    /// Teardowns left open because of dry-run.
    pub dry_run: u64,
    /// Degraded notices.
    pub degraded: u64,
}

#[derive(Default)]
struct Counters {
    tracked: AtomicU64,
    resumed: AtomicU64,
    refused: AtomicU64,
    untracked: AtomicU64,
    closed: AtomicU64,
    reasons: [AtomicU64; 5],
    dry_run: AtomicU64,
    degraded: AtomicU64,
}

/// One tracked connection, as returned by [`Tracker::track`].
#[derive(Debug)]
pub struct Tracked {
    /// The registry's id for it: what [`Tracker::untrack`] and
    /// [`Tracker::tear_down`] take, and the `connection_id` of its events
    /// (unique for the life of the tracker, never reused).
    pub id: ConnectionId,
    /// Fires when it must go (already fired when it was refused).
    pub signal: TeardownSignal,
    /// The verdict it was tracked with.
    pub verdict: Arc<Verdict>,
}

/// A connection registry kept current by the engine; cheap to clone.
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<TrackerInner>,
}

struct TrackerInner {
    engine: Engine,
    registry: Registry,
    options: VerifyOptions,
    enforcement: Enforcement,
    events: broadcast::Sender<ConnectionEvent>,
    counters: Counters,
    /// Woken when a connection with a possibly earlier deadline is tracked.
    deadlines: Arc<Notify>,
}

impl Tracker {
    /// A tracker over `engine`: from now on every data change the engine
    /// sees re-checks the connections concerned.
    pub fn new(engine: &Engine, config: TrackerConfig) -> Self {
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let inner = Arc::new(TrackerInner {
            engine: engine.clone(),
            registry: Registry::new(config.options.clone()),
            options: config.options,
            enforcement: config.enforcement,
            events,
            counters: Counters::default(),
            deadlines: Arc::new(Notify::new()),
        });
        let observer: Arc<dyn Observer> = inner.clone();
        engine.observe(Arc::downgrade(&observer));
        Self { inner }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The registry (for look-ups and stats).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Enforce or dry-run.
    pub fn enforcement(&self) -> Enforcement {
        self.inner.enforcement
    }

    /// The options connections are verified with.
    pub fn options(&self) -> &VerifyOptions {
        &self.inner.options
    }

    /// Receives every teardown event and degraded notice from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.events.subscribe()
    }

    /// Tracks a connection authenticated by `chain` (leaf first, as the
    /// peer presented it), verifying it against current data first: a
    /// handshake that did not call the verifier (a resumed TLS session) is
    /// checked here. A chain no longer trusted is not tracked; its signal
    /// comes back fired, with the event.
    pub fn track(
        &self,
        chain: Vec<CertificateDer<'static>>,
        labels: BTreeMap<String, String>,
    ) -> Tracked {
        let verdict = self.inner.engine.verify_cached(&chain, &self.inner.options);
        self.track_with(chain, labels, verdict)
    }

    /// [`Tracker::track`], fetching first when the cached verdict lacks
    /// revocation data (as a handshake would).
    pub async fn track_fetching(
        &self,
        chain: Vec<CertificateDer<'static>>,
        labels: BTreeMap<String, String>,
    ) -> Tracked {
        let options = &self.inner.options;
        let mut verdict = self.inner.engine.verify_cached(&chain, options);
        if verdict.status == Status::Unknown && options.policy != RevocationPolicy::Off {
            verdict = self.inner.engine.verify(&chain, options).await;
        }
        self.track_with(chain, labels, verdict)
    }

    fn track_with(
        &self,
        chain: Vec<CertificateDer<'static>>,
        labels: BTreeMap<String, String>,
        verdict: Arc<Verdict>,
    ) -> Tracked {
        let c = &self.inner.counters;
        if labels.get("handshake").map(String::as_str) == Some("resumed") {
            c.resumed.fetch_add(1, Ordering::Relaxed);
        }
        let at = self.inner.engine.now();
        // Only an accepted verification yields the proof the registry
        // tracks; any other verdict gets a signal already fired.
        let (id, signal) = match verdict.accepted_path() {
            Some(accepted) => self.inner.registry.track(chain, labels, &accepted, at),
            None => self.inner.registry.refuse(&verdict, at),
        };
        match signal.event() {
            Some(event) => {
                c.refused.fetch_add(1, Ordering::Relaxed);
                self.inner.send(ConnectionEvent::Teardown {
                    event,
                    dry_run: self.inner.enforcement == Enforcement::DryRun,
                });
            }
            None => {
                c.tracked.fetch_add(1, Ordering::Relaxed);
                self.inner.deadlines.notify_one();
            }
        }
        self.inner.drain_notices();
        Tracked {
            id,
            signal,
            verdict,
        }
    }

    /// Forgets a connection closed normally. Returns whether it was tracked.
    pub fn untrack(&self, id: ConnectionId) -> bool {
        let was = self.inner.registry.untrack(id);
        if was {
            self.inner.counters.closed.fetch_add(1, Ordering::Relaxed);
        }
        was
    }

    /// Counts a connection an adapter saw but could not track.
    pub fn count_untracked(&self) {
        self.inner
            .counters
            .untracked
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Tears one connection down for a reason decided outside validation
    /// (e.g. an operator's deny).
    pub fn tear_down(
        &self,
        id: ConnectionId,
        reason: TeardownReason,
        detail: &str,
    ) -> Option<TeardownEvent> {
        let at = self.inner.engine.now();
        let _delivering = Delivering::begin();
        let event = self.inner.registry.tear_down_one(id, reason, detail, at)?;
        self.inner.publish(vec![event.clone()]);
        Some(event)
    }

    /// Re-verifies the connections whose deadline has passed, now.
    pub fn expire_now(&self) -> Vec<TeardownEvent> {
        let at = self.inner.engine.now();
        let _delivering = Delivering::begin();
        let events = self
            .inner
            .engine
            .with_verifier(|v| self.inner.registry.expire_due(v, at));
        self.inner.publish(events.clone());
        events
    }

    /// Re-verifies every tracked connection now (a full verification each).
    pub fn reverify_all(&self) -> Vec<TeardownEvent> {
        let at = self.inner.engine.now();
        let _delivering = Delivering::begin();
        let events = self
            .inner
            .engine
            .with_verifier(|v| self.inner.registry.reverify_all(v, at));
        self.inner.publish(events.clone());
        events
    }

    /// Runs the deadline loop until the tracker is dropped or the handle
    /// aborted: each connection is re-verified when its verdict lapses
    /// (notAfter; nextUpdate of its revocation data). Sleeps until the
    /// earliest deadline, at most `max_sleep` (the engine's clock may be
    /// moved by tests and drills).
    pub fn spawn_expiry(&self, max_sleep: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<TrackerInner> = Arc::downgrade(&self.inner);
        let wake = Arc::clone(&self.inner.deadlines);
        tokio::spawn(async move {
            loop {
                let notified = wake.notified();
                let wait = {
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    let tracker = Tracker { inner };
                    // A full re-verification per lapsed connection: many
                    // may lapse at once (one nextUpdate), so off the async
                    // workers.
                    let expiring = tracker.clone();
                    if tokio::task::spawn_blocking(move || expiring.expire_now())
                        .await
                        .is_err()
                    {
                        tracing::error!("re-checking lapsed connections panicked");
                    }
                    let now = tracker.inner.engine.now();
                    tracker
                        .inner
                        .registry
                        .next_deadline()
                        .map_or(max_sleep, |at| {
                            at.duration_since(now).unwrap_or_default().min(max_sleep)
                        })
                };
                // A deadline already due still waits a little, so a clock
                // that does not move cannot spin this loop.
                let wait = wait.max(Duration::from_millis(5));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = notified => {}
                }
            }
        })
    }

    /// Counters and the number of connections open now.
    pub fn metrics(&self) -> TrackerMetrics {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TrackerMetrics {
            open: self.inner.registry.len() as u64,
            tracked: get(&c.tracked),
            resumed: get(&c.resumed),
            refused: get(&c.refused),
            untracked: get(&c.untracked),
            closed: get(&c.closed),
            revoked: get(&c.reasons[0]),
            expired: get(&c.reasons[1]),
            unverifiable: get(&c.reasons[2]),
            untrusted: get(&c.reasons[3]),
            denied: get(&c.reasons[4]),
            dry_run: get(&c.dry_run),
            degraded: get(&c.degraded),
        }
    }
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("enforcement", &self.inner.enforcement)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

impl TrackerInner {
    fn send(&self, event: ConnectionEvent) {
        // No subscriber is fine: the signals carry the teardown anyway.
        let _ = self.events.send(event);
    }

    fn publish(&self, events: Vec<TeardownEvent>) {
        let dry_run = self.enforcement == Enforcement::DryRun;
        for event in events {
            self.counters.reasons[event.reason.index()].fetch_add(1, Ordering::Relaxed);
            if dry_run {
                self.counters.dry_run.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    connection = %event.connection_id,
                    reason = %event.reason,
                    serial = %vigil_core::text::hex(&event.serial),
                    "dry-run: connection would be torn down"
                );
            } else {
                tracing::info!(
                    connection = %event.connection_id,
                    reason = %event.reason,
                    serial = %vigil_core::text::hex(&event.serial),
                    "connection torn down"
                );
            }
            self.send(ConnectionEvent::Teardown { event, dry_run });
        }
        self.drain_notices();
        // The events are out: now free the torn-down records, off this
        // thread when a runtime can take it (freeing a thousand records
        // and their certificates takes a millisecond or more).
        let dead = self.registry.take_reclaimable();
        if dead.len() >= RECLAIM_ELSEWHERE {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn_blocking(move || drop(dead));
                return;
            }
        }
        drop(dead);
    }

    fn drain_notices(&self) {
        for notice in self.registry.take_notices() {
            self.counters.degraded.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                connection = %notice.connection_id,
                serial = %vigil_core::text::hex(&notice.serial),
                detail = %notice.detail,
                "connection kept with unknown revocation status (prefer)"
            );
            self.send(ConnectionEvent::Degraded(notice));
        }
    }
}

thread_local! {
    /// Wakers held back while a tracker delivers teardowns on this thread
    /// (see [`wake_after_delivery`]).
    static DEFERRED: std::cell::RefCell<Option<Vec<std::task::Waker>>> =
        const { std::cell::RefCell::new(None) };
}

/// Wakes `waker` once the teardowns being delivered on this thread are out
/// (every connection concerned signalled, every event published), or at
/// once when none are being delivered. For teardown callbacks (see
/// [`vigil_core::TeardownSignal::on_fire`]) that wake a connection's task:
/// the tasks then run after the whole batch is signalled instead of
/// competing with the signalling for the CPU.
pub fn wake_after_delivery(waker: std::task::Waker) {
    let now = DEFERRED.with(|deferred| match deferred.borrow_mut().as_mut() {
        Some(held) => {
            held.push(waker);
            None
        }
        None => Some(waker),
    });
    if let Some(waker) = now {
        waker.wake();
    }
}

/// Holds back [`wake_after_delivery`] wakes on this thread until dropped
/// (also on panic), then wakes them. Nests.
struct Delivering {
    outer: Option<Vec<std::task::Waker>>,
}

impl Delivering {
    fn begin() -> Self {
        let outer = DEFERRED.with(|deferred| deferred.borrow_mut().replace(Vec::new()));
        Self { outer }
    }
}

impl Drop for Delivering {
    fn drop(&mut self) {
        let held = DEFERRED
            .with(|deferred| std::mem::replace(&mut *deferred.borrow_mut(), self.outer.take()));
        for waker in held.into_iter().flatten() {
            wake_after_delivery(waker);
        }
    }
}

/// Torn-down records freed on a blocking thread rather than inline from
/// this many.
const RECLAIM_ELSEWHERE: usize = 64;

impl Observer for TrackerInner {
    fn on_change(&self, verifier: &Snapshot, change: &Change<'_>, at: std::time::SystemTime) {
        if self.registry.is_empty() {
            return;
        }
        let _delivering = Delivering::begin();
        let events = match change {
            Change::Crl(der) => self.registry.on_crl(verifier, der, at),
            Change::Certificate(der) => self.registry.on_certificate_data(verifier, der, at),
            Change::Unscoped => self.registry.reverify_all(verifier, at),
            Change::AnchorRemoved(digest) => self.registry.on_anchor_removed(digest, at),
            Change::Denied(key) => {
                let ids = self.registry.matching(key);
                self.registry.reverify(verifier, &ids, at)
            }
        };
        self.publish(events);
    }
}

#[cfg(test)]
mod tests {
    use super::{wake_after_delivery, Delivering, Enforcement, TrackerConfig, VerifyOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    #[test]
    fn each_tracker_config_setter_sets_its_own_field() {
        let options = VerifyOptions::new(vigil_core::Usage::Client);
        let built = TrackerConfig::default()
            .with_options(options.clone())
            .with_enforcement(Enforcement::DryRun)
            .with_event_capacity(1);
        assert_eq!(built.options, options);
        assert_eq!(built.enforcement, Enforcement::DryRun);
        assert_eq!(built.event_capacity, 1);
    }

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wakes_wait_for_the_delivery_and_none_is_lost() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = || Waker::from(Arc::clone(&count));
        // No delivery under way: at once.
        wake_after_delivery(waker());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        {
            let _outer = Delivering::begin();
            wake_after_delivery(waker());
            {
                let _inner = Delivering::begin();
                wake_after_delivery(waker());
            }
            // The inner delivery's wakes join the outer one's.
            assert_eq!(count.0.load(Ordering::SeqCst), 1);
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
        // A delivery that panics still wakes what it held.
        let caught = std::panic::catch_unwind(|| {
            let _delivering = Delivering::begin();
            wake_after_delivery(waker());
            panic!("observer failed");
        });
        assert!(caught.is_err());
        assert_eq!(count.0.load(Ordering::SeqCst), 4);
        wake_after_delivery(waker());
        assert_eq!(count.0.load(Ordering::SeqCst), 5);
    }
}
