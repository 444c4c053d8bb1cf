//! Registered connections: tracked by the engine's trackers (one per
//! usage), persisted so they outlive the sidecar, leased so a crashed caller
//! does not leak them, and announced on `/v1/events` when they must go.
//!
//! Registrations of the same chain for the same usage share one tracked
//! peer: they stand or fall together, so the engine verifies and indexes
//! the chain once however many connections a client opens.
//!
//! Teardown reaches the API through each peer's own signal
//! ([`vigil_core::TeardownSignal::on_fire`]): no event can be lost to a slow
//! broadcast, and none can race the insertion of the id mapping.
//!
//! Lock order: the registrations lock is taken before any tracker or
//! registry lock, never the other way round (signal callbacks only send on
//! a channel).

mod restore;
mod teardown;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use vigil_core::{
    CertificateDer, ConnectionId, RevocationPolicy, TeardownEvent, Verdict, VerifyOptions,
};
use vigil_runtime::{ConnectionEvent, Engine, Tracker, TrackerConfig};

use super::events::Hub;
use super::persist::{durable, Writer};
use super::record::{
    ca_key, lease_key, now_ms, rfc3339_ms, ApiId, ConnectionView, Record, UsageKind,
};

/// Longest lease, seconds (30 days).
pub(crate) const MAX_LEASE_SECS: u32 = 30 * 24 * 3600;
/// Torn-down connections remembered for `GET /v1/connections/{id}`.
const TOMBSTONES: usize = 16 * 1024;
/// How often leases are checked.
const LEASE_TICK: Duration = Duration::from_millis(100);

/// A tracked chain: (usage index, SHA-256 over the chain's certificate
/// digests).
type PeerKey = (usize, [u8; 32]);

/// What a peer's signal sends when it fires.
type Torn = (PeerKey, ConnectionId, TeardownEvent);

/// One tracked chain and the registrations resting on it. Its leaf's
/// subject and serial are the registry's (see [`Connections::view`]).
struct Peer {
    conn: ConnectionId,
    members: Members,
}

/// The registrations of one peer.
type Members = vigil_core::IdSet<ApiId>;

struct Reg {
    peer: PeerKey,
    labels: BTreeMap<String, String>,
    registered_at: i64,
    lease: Option<Lease>,
    /// The lease length a restart gives it (None also when unsure, so the
    /// next renewal writes its length).
    stored_secs: Option<u32>,
    /// A [`lease_key`] entry exists for it in the store.
    lease_key: bool,
    /// A connection this process holds ([`Connections::register_live`]):
    /// never stored; told here when it must go.
    live: Option<oneshot::Sender<TeardownEvent>>,
}

#[derive(Clone, Copy)]
struct Lease {
    secs: u32,
    expires_ms: i64,
}

#[derive(Default)]
struct Maps {
    active: BTreeMap<ApiId, Reg>,
    peers: HashMap<PeerKey, Peer>,
    /// (usage index, tracker connection id) -> peer, for degraded notices.
    by_conn: HashMap<(usize, u64), PeerKey>,
    leases: BTreeSet<(i64, ApiId)>,
    tombstones: HashMap<ApiId, ConnectionView>,
    tomb_order: VecDeque<ApiId>,
    /// CA certificates already in the store.
    stored_cas: HashSet<[u8; 32]>,
}

/// What a registration came to.
pub(crate) enum Registered {
    /// Tracked (and durable).
    Accepted {
        id: ApiId,
        verdict: Arc<Verdict>,
        lease_expires_at: Option<String>,
    },
    /// Not trusted: nothing was tracked or stored.
    Rejected(Arc<Verdict>),
}

/// Why a live registration was refused.
pub(crate) enum LiveRefused {
    /// The chain is not trusted (its verdict).
    Rejected(Arc<Verdict>),
    /// The cap on registrations is reached.
    TooMany(usize),
}

/// Why a registration, removal or renewal failed.
pub(crate) enum ConnError {
    Unknown,
    NoLease,
    /// The cap on registrations is reached.
    TooMany(usize),
    /// The connection is held by this process (a proxied one): only its
    /// owner ends it.
    Live,
    Store(String),
}

/// Counters, for metrics.
#[derive(Default)]
pub(crate) struct ConnCounters {
    pub(crate) registered: AtomicU64,
    pub(crate) removed: AtomicU64,
    pub(crate) lease_expired: AtomicU64,
    pub(crate) restored: AtomicU64,
    pub(crate) restore_refused: AtomicU64,
    /// Teardowns announced, by reason (revoked, expired, unverifiable,
    /// untrusted, denied).
    pub(crate) teardowns: [AtomicU64; 5],
}

/// Registered connections.
pub(crate) struct Connections {
    engine: Engine,
    trackers: [Tracker; 3],
    maps: RwLock<Maps>,
    writer: Writer,
    hub: Arc<Hub>,
    torn: mpsc::UnboundedSender<Torn>,
    pub(crate) counters: ConnCounters,
    /// Most registrations (leased or not): the bound on this map, since a
    /// registration without a lease stays until removed or torn down.
    max: usize,
    /// Stored records that could not be restored (see [`Connections::problems`]).
    problems: std::sync::Mutex<Vec<String>>,
}

/// The fields of a registration besides its chain.
struct NewReg {
    id: ApiId,
    usage: UsageKind,
    labels: BTreeMap<String, String>,
    registered_at: i64,
    lease: Option<Lease>,
    /// A [`lease_key`] entry exists for it in the store.
    lease_key: bool,
    /// See [`Reg::live`].
    live: Option<oneshot::Sender<TeardownEvent>>,
}

impl Connections {
    /// One tracker per usage over `engine`, all under `policy`; returns the
    /// receiver of teardowns for [`Connections::run_teardowns`].
    pub(crate) fn new(
        engine: &Engine,
        policy: RevocationPolicy,
        hub: Arc<Hub>,
        writer: Writer,
        max: usize,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Torn>) {
        let trackers = UsageKind::ALL.map(|usage| {
            Tracker::new(
                engine,
                TrackerConfig::default()
                    .with_options(VerifyOptions::new(usage.usage()).with_policy(policy))
                    // Teardowns travel by signal; the broadcast carries only
                    // degraded notices here, so it can be small.
                    .with_event_capacity(4096),
            )
        });
        let (torn, rx) = mpsc::unbounded_channel();
        let this = Arc::new(Self {
            engine: engine.clone(),
            trackers,
            maps: RwLock::new(Maps::default()),
            writer,
            hub,
            torn,
            counters: ConnCounters::default(),
            max,
            problems: std::sync::Mutex::new(Vec::new()),
        });
        (this, rx)
    }

    /// Starts the trackers' deadline loops, the degraded-notice relays and
    /// the lease sweeper.
    pub(crate) fn spawn_background(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for (usage, tracker) in self.trackers.iter().enumerate() {
            tasks.push(tracker.spawn_expiry(Duration::from_secs(30)));
            let mut rx = tracker.subscribe();
            let this = Arc::clone(self);
            tasks.push(tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(ConnectionEvent::Degraded(notice)) => this.on_degraded(usage, notice),
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "degraded notices dropped");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            }));
        }
        let this = Arc::clone(self);
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_TICK).await;
                this.expire_leases(now_ms());
            }
        }));
        tasks
    }

    /// Announces teardowns until every sender is gone.
    pub(crate) async fn run_teardowns(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Torn>) {
        while let Some((key, conn, event)) = rx.recv().await {
            self.on_teardown(key, conn, &event);
        }
    }

    /// Verifies and tracks a connection, then makes it durable.
    pub(crate) async fn register(
        &self,
        chain: Vec<CertificateDer<'static>>,
        usage: UsageKind,
        labels: BTreeMap<String, String>,
        lease_secs: Option<u32>,
    ) -> Result<Registered, ConnError> {
        // Checked before the work, and again under the lock.
        if self.len() >= self.max {
            return Err(ConnError::TooMany(self.max));
        }
        let tracker = &self.trackers[usage.index()];
        let verdict = super::verify_chain(&self.engine, &chain, tracker.options()).await;
        if !verdict.is_accepted() {
            return Ok(Registered::Rejected(verdict));
        }
        let registered_at = now_ms();
        let record = Record::new(
            usage,
            &chain,
            labels.clone(),
            lease_secs,
            registered_at / 1000,
        );
        let lease = lease_secs.map(|secs| Lease {
            secs,
            expires_ms: registered_at.saturating_add(i64::from(secs) * 1000),
        });
        let mut id = ApiId::random();
        let cas: Vec<([u8; 32], Vec<u8>)> = chain
            .iter()
            .skip(1)
            .map(|c| (vigil_core::sha256(c), c.to_vec()))
            .collect();
        let reg = NewReg {
            id,
            usage,
            labels,
            registered_at,
            lease,
            lease_key: false,
            live: None,
        };
        let ack = {
            let mut maps = self.write();
            if maps.active.len() >= self.max {
                return Err(ConnError::TooMany(self.max));
            }
            while maps.active.contains_key(&id) || maps.tombstones.contains_key(&id) {
                id = ApiId::random();
            }
            let reg = NewReg { id, ..reg };
            if let Err(refused) = self.attach(&mut maps, chain, reg) {
                return Ok(Registered::Rejected(refused));
            }
            // CA certificates first, then the record: queued under the lock,
            // so a removal of this id (teardown, lease) can only follow.
            for (digest, der) in cas {
                if maps.stored_cas.insert(digest) {
                    drop(self.writer.put(ca_key(&digest), der));
                }
            }
            self.writer.put(id.key(), record.encode())
        };
        if let Err(e) = durable(ack).await {
            self.forget(id);
            return Err(ConnError::Store(e));
        }
        self.counters.registered.fetch_add(1, Ordering::Relaxed);
        Ok(Registered::Accepted {
            id,
            verdict,
            lease_expires_at: lease.map(|l| rfc3339_ms(l.expires_ms)),
        })
    }

    /// Verifies and tracks a connection this process holds (a proxied
    /// one): listed and announced like a registered one, never stored, no
    /// lease. The receiver gets the teardown event when its peer must go;
    /// [`Connections::forget_live`] ends it otherwise.
    pub(crate) async fn register_live(
        &self,
        chain: Vec<CertificateDer<'static>>,
        usage: UsageKind,
        labels: BTreeMap<String, String>,
    ) -> Result<(ApiId, Arc<Verdict>, oneshot::Receiver<TeardownEvent>), LiveRefused> {
        if self.len() >= self.max {
            return Err(LiveRefused::TooMany(self.max));
        }
        let tracker = &self.trackers[usage.index()];
        let verdict = super::verify_chain(&self.engine, &chain, tracker.options()).await;
        if !verdict.is_accepted() {
            return Err(LiveRefused::Rejected(verdict));
        }
        let (tx, rx) = oneshot::channel();
        let mut maps = self.write();
        if maps.active.len() >= self.max {
            return Err(LiveRefused::TooMany(self.max));
        }
        let mut id = ApiId::random();
        while maps.active.contains_key(&id) || maps.tombstones.contains_key(&id) {
            id = ApiId::random();
        }
        let reg = NewReg {
            id,
            usage,
            labels,
            registered_at: now_ms(),
            lease: None,
            lease_key: false,
            live: Some(tx),
        };
        self.attach(&mut maps, chain, reg)
            .map_err(LiveRefused::Rejected)?;
        self.counters.registered.fetch_add(1, Ordering::Relaxed);
        Ok((id, verdict, rx))
    }

    /// Forgets a live connection its owner closed (nothing is announced).
    pub(crate) fn forget_live(&self, id: ApiId) {
        let mut maps = self.write();
        if maps.active.get(&id).is_some_and(|r| r.live.is_some()) {
            if let Some(reg) = maps.active.remove(&id) {
                self.detach(&mut maps, id, &reg);
                self.counters.removed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds registration `reg` to the peer of its chain, tracking the chain
    /// first when no registration holds it yet. Err: the tracker refused the
    /// chain (its verdict).
    fn attach(
        &self,
        maps: &mut Maps,
        chain: Vec<CertificateDer<'static>>,
        reg: NewReg,
    ) -> Result<(), Arc<Verdict>> {
        let key = peer_key(reg.usage, &chain);
        if !maps.peers.contains_key(&key) {
            let tracker = &self.trackers[reg.usage.index()];
            // Tracked against current data, under the lock: a degraded
            // notice for it waits for the mapping.
            let tracked = tracker.track(chain, BTreeMap::new());
            if tracked.signal.is_fired() {
                return Err(tracked.verdict);
            }
            maps.by_conn.insert((key.0, tracked.id.0), key);
            maps.peers.insert(
                key,
                Peer {
                    conn: tracked.id,
                    members: Members::None,
                },
            );
            let torn = self.torn.clone();
            let conn = tracked.id;
            // Runs at once if the signal fired meanwhile; the channel is
            // unbounded, so this never blocks the registry.
            tracked.signal.on_fire(Box::new(move |event| {
                let _ = torn.send((key, conn, event.clone()));
            }));
        }
        if let Some(peer) = maps.peers.get_mut(&key) {
            peer.members.insert(reg.id);
        }
        if let Some(l) = reg.lease {
            maps.leases.insert((l.expires_ms, reg.id));
        }
        maps.active.insert(
            reg.id,
            Reg {
                peer: key,
                labels: reg.labels,
                registered_at: reg.registered_at,
                lease: reg.lease,
                stored_secs: reg.lease.map(|l| l.secs),
                lease_key: reg.lease_key,
                live: reg.live,
            },
        );
        Ok(())
    }

    /// One connection: active, or recently torn down.
    pub(crate) fn get(&self, id: ApiId) -> Option<ConnectionView> {
        let maps = self.read();
        match maps.active.get(&id) {
            Some(reg) => Some(self.view(&maps, id, reg)),
            None => maps.tombstones.get(&id).cloned(),
        }
    }

    /// Active connections in id order after `after`, at most `limit`, with
    /// the label `filter` if given; the id to continue after; the total.
    pub(crate) fn list(
        &self,
        after: Option<ApiId>,
        limit: usize,
        filter: Option<(&str, &str)>,
    ) -> (Vec<ConnectionView>, Option<String>, usize) {
        let maps = self.read();
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut next = None;
        for (id, reg) in maps.active.range((start, std::ops::Bound::Unbounded)) {
            if let Some((k, v)) = filter {
                if reg.labels.get(k).map(String::as_str) != Some(v) {
                    continue;
                }
            }
            if out.len() == limit {
                next = out.last().map(|v: &ConnectionView| v.id.clone());
                break;
            }
            out.push(self.view(&maps, *id, reg));
        }
        (out, next, maps.active.len())
    }

    /// Forgets a connection the caller closed; durable when it returns.
    pub(crate) async fn remove(&self, id: ApiId) -> Result<(), ConnError> {
        let ack = {
            let mut maps = self.write();
            if maps.active.get(&id).is_some_and(|r| r.live.is_some()) {
                // Held by this process: its owner ends it.
                return Err(ConnError::Live);
            }
            if let Some(reg) = maps.active.remove(&id) {
                self.detach(&mut maps, id, &reg);
                if reg.lease_key {
                    self.writer.delete_soon(lease_key(id));
                }
                self.writer.delete(id.key())
            } else if maps.tombstones.remove(&id).is_some() {
                maps.tomb_order.retain(|t| *t != id);
                self.counters.removed.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            } else {
                return Err(ConnError::Unknown);
            }
        };
        self.counters.removed.fetch_add(1, Ordering::Relaxed);
        durable(ack).await.map_err(ConnError::Store)
    }

    /// Renews a lease from now, for `secs` or the lease's own length. A
    /// length other than the one a restart would give is made durable
    /// before it returns, so the renewed length outlives the sidecar.
    pub(crate) async fn renew(
        &self,
        id: ApiId,
        secs: Option<u32>,
    ) -> Result<ConnectionView, ConnError> {
        let (view, ack) = {
            let mut maps = self.write();
            let Some(reg) = maps.active.get(&id) else {
                return Err(ConnError::Unknown);
            };
            let Some(secs) = secs.or(reg.lease.map(|l| l.secs)) else {
                return Err(ConnError::NoLease);
            };
            let old = reg.lease;
            let persist = reg.stored_secs != Some(secs);
            let lease = Lease {
                secs,
                expires_ms: now_ms().saturating_add(i64::from(secs) * 1000),
            };
            if let Some(old) = old {
                maps.leases.remove(&(old.expires_ms, id));
            }
            maps.leases.insert((lease.expires_ms, id));
            if let Some(reg) = maps.active.get_mut(&id) {
                reg.lease = Some(lease);
                if persist {
                    reg.stored_secs = Some(secs);
                    reg.lease_key = true;
                }
            }
            // Queued under the lock: a removal of this id can only follow.
            let ack = persist.then(|| self.writer.put(lease_key(id), secs.to_be_bytes().to_vec()));
            let reg = maps.active.get(&id).ok_or(ConnError::Unknown)?;
            (self.view(&maps, id, reg), ack)
        };
        if let Some(ack) = ack {
            if let Err(e) = durable(ack).await {
                // Unsure what the store holds: the next renewal writes.
                if let Some(reg) = self.write().active.get_mut(&id) {
                    reg.stored_secs = None;
                }
                return Err(ConnError::Store(e));
            }
        }
        Ok(view)
    }

    /// Active connections.
    pub(crate) fn len(&self) -> usize {
        self.read().active.len()
    }

    /// Stored registrations (or their parts) that could not be restored:
    /// they stay in the store and `/readyz` reports them.
    pub(crate) fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn problem(&self, text: String) {
        tracing::error!(problem = %text, "stored connection data cannot be restored");
        let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded: the first ones name the trouble well enough.
        if problems.len() < 1000 {
            problems.push(text);
        }
    }

    /// Distinct chains tracked (registrations of one chain share one).
    pub(crate) fn chains(&self) -> usize {
        self.read().peers.len()
    }

    /// Undoes a registration whose record could not be stored.
    fn forget(&self, id: ApiId) {
        let mut maps = self.write();
        if let Some(reg) = maps.active.remove(&id) {
            self.detach(&mut maps, id, &reg);
        }
    }

    /// Drops `id` (already out of `active`) from its lease and its peer; the
    /// last registration of a peer untracks its chain.
    fn detach(&self, maps: &mut Maps, id: ApiId, reg: &Reg) {
        if let Some(l) = reg.lease {
            maps.leases.remove(&(l.expires_ms, id));
        }
        let empty = maps.peers.get_mut(&reg.peer).is_some_and(|peer| {
            peer.members.remove(id);
            peer.members.is_empty()
        });
        if empty {
            if let Some(peer) = maps.peers.remove(&reg.peer) {
                maps.by_conn.remove(&(reg.peer.0, peer.conn.0));
                self.trackers[reg.peer.0].untrack(peer.conn);
            }
        }
    }

    fn view(&self, maps: &Maps, id: ApiId, reg: &Reg) -> ConnectionView {
        let peer = maps.peers.get(&reg.peer);
        let registry = self.trackers[reg.peer.0].registry();
        let (subject, serial) = peer.and_then(|p| registry.leaf(p.conn)).unwrap_or_default();
        let valid_until = peer
            .and_then(|p| registry.valid_until(p.conn))
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .filter(|s| *s < i64::MAX / 2)
            .map(vigil_core::text::rfc3339);
        ConnectionView {
            id: id.to_string(),
            state: "active",
            usage: UsageKind::ALL[reg.peer.0],
            labels: reg.labels.clone(),
            registered_at: rfc3339_ms(reg.registered_at),
            lease_secs: reg.lease.map(|l| l.secs),
            lease_expires_at: reg.lease.map(|l| rfc3339_ms(l.expires_ms)),
            valid_until,
            subject,
            serial,
            teardown: None,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The peer of `chain` for `usage`: SHA-256 over the certificates' digests.
fn peer_key(usage: UsageKind, chain: &[CertificateDer<'_>]) -> PeerKey {
    let digests: Vec<u8> = chain.iter().flat_map(|c| vigil_core::sha256(c)).collect();
    (usage.index(), vigil_core::sha256(&digests))
}
