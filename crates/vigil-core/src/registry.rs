//! The live-connection index: which connections rest on which certificates,
//! and, when data changes, which of them must go and why.
//!
//! Sans-IO like the rest of the core: nothing here sleeps, spawns or reads
//! the clock. The runtime calls an entry point when something changed (a
//! CRL or OCSP answer was loaded, an anchor removed, a deadline reached);
//! the entry point returns the teardown events and fires the signals of the
//! connections concerned, and of no other.
//!
//! Indexes (each a hash look-up, never a scan of all connections):
//! - (issuer name key, serial) of every non-anchor certificate of the
//!   validated path -> connection ids: one revocation (RFC 5280 §5.3, RFC
//!   6960 §2.2) finds its connections directly;
//! - issuer name key -> serials: a new CRL (RFC 5280 §5.1) is matched
//!   against it, iterating whichever side is smaller (the CRL's entries or
//!   the issuer's tracked serials, looked up in the CRL's hash index), and
//!   only the connections with a listed certificate are re-checked;
//! - issuer name DER -> name key, for the issuers of tracked certificates:
//!   [`Registry::on_revoked`] does not parse a known issuer name again;
//! - SHA-256 of every CA certificate of the path (anchor included) -> ids;
//! - (valid_until, id), ordered: the connections whose verdict lapses first.

use std::collections::{BTreeMap, BTreeSet};

// hashbrown's seeded foldhash: several times faster than SipHash on the
// name keys and digests these maps are keyed by, still randomly seeded.
use hashbrown::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use serde::Serialize;

use crate::cert::{sha256, CertInfo};
use crate::options::VerifyOptions;
use crate::revocation::{ParsedCrl, Reason, VerifiedCrl};
use crate::snapshot::{unix_secs, Snapshot};
use crate::text::hex;
use crate::verdict::{AcceptedPath, ReasonCode, Verdict};

/// Identifies one tracked connection for the life of its [`Registry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a connection must go. The strings are the contract of the
/// `teardown` event (`revoked|expired|unverifiable|untrusted|denied`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TeardownReason {
    /// A certificate of the path is revoked.
    Revoked,
    /// A certificate of the path is past its notAfter (or before notBefore).
    Expired,
    /// The revocation status can no longer be determined, under `require`.
    Unverifiable,
    /// The path no longer ends at a trusted anchor, or no longer validates.
    Untrusted,
    /// A certificate of the path is on the operator's deny list.
    Denied,
}

impl TeardownReason {
    /// Every reason, in the order of [`TeardownReason::index`].
    pub const ALL: [Self; 5] = [
        Self::Revoked,
        Self::Expired,
        Self::Unverifiable,
        Self::Untrusted,
        Self::Denied,
    ];

    /// Its position in [`TeardownReason::ALL`] (e.g. for per-reason
    /// counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The contract string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Unverifiable => "unverifiable",
            Self::Untrusted => "untrusted",
            Self::Denied => "denied",
        }
    }

    /// The teardown reason for a verdict's reason code.
    pub fn from_code(code: ReasonCode) -> Self {
        match code {
            ReasonCode::Revoked => Self::Revoked,
            ReasonCode::Denied => Self::Denied,
            ReasonCode::Expired | ReasonCode::NotYetValid => Self::Expired,
            c if c.is_unknown_status() => Self::Unverifiable,
            _ => Self::Untrusted,
        }
    }
}

impl std::fmt::Display for TeardownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One connection torn down: the `teardown` event of the SSE stream, plus
/// the subject of the certificate concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TeardownEvent {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Why it must go: revoked, denied, expired, unverifiable (its
    /// revocation data lapsed and could not be renewed) or untrusted (its
    /// path no longer validates); the `reason` of the contract's event.
    pub reason: TeardownReason,
    /// Serial of the certificate concerned (INTEGER content octets);
    /// lowercase hex in JSON.
    #[serde(serialize_with = "crate::text::ser::hex")]
    pub serial: Vec<u8>,
    /// Subject DN of the certificate concerned.
    pub subject: String,
    /// One human-readable sentence.
    pub detail: String,
    /// When the registry decided, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "crate::text::ser::rfc3339")]
    pub at: i64,
}

/// A connection kept open although its revocation status could not be
/// determined: the verdict soft-failed under `prefer`. Reported once when a
/// connection becomes degraded (at tracking or at a re-check), so operators
/// see what `require` would have closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DegradedNotice {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Serial of the certificate whose status is unknown; lowercase hex in
    /// JSON.
    #[serde(serialize_with = "crate::text::ser::hex")]
    pub serial: Vec<u8>,
    /// Its subject DN.
    pub subject: String,
    /// The verdict's sentence.
    pub detail: String,
    /// When the registry decided, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "crate::text::ser::rfc3339")]
    pub at: i64,
}

/// How long a connection kept on a soft-failed verdict whose data is
/// already past its nextUpdate waits before it is re-checked by time alone
/// (new data re-checks it at once).
const SOFT_FAIL_RECHECK_SECS: i64 = 10;

/// Position in the path, reason and sentence of a failed re-check.
type Failure = (usize, ReasonCode, String);

type Callback = Box<dyn FnOnce(&TeardownEvent) + Send>;

#[derive(Default)]
struct SignalState {
    /// Boxed: most signals never fire, and every tracked connection has one.
    event: Option<Box<TeardownEvent>>,
    callbacks: Vec<Callback>,
}

/// The teardown signal of one connection: fired at most once, with the
/// event that explains it. Clones share the state. The core never blocks
/// on it; the runtime bridges it with [`TeardownSignal::on_fire`] (e.g. to a
/// tokio oneshot) or polls [`TeardownSignal::is_fired`].
#[derive(Clone, Default)]
pub struct TeardownSignal {
    state: Arc<Mutex<SignalState>>,
}

impl TeardownSignal {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        // A callback that panicked must not stop the teardown of others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the connection must go.
    pub fn is_fired(&self) -> bool {
        self.lock().event.is_some()
    }

    /// The event, once fired.
    pub fn event(&self) -> Option<TeardownEvent> {
        self.lock().event.as_deref().cloned()
    }

    /// Runs `callback` once when the signal fires; at once (on this thread)
    /// if it already has.
    pub fn on_fire(&self, callback: Box<dyn FnOnce(&TeardownEvent) + Send>) {
        let mut state = self.lock();
        match state.event.clone() {
            Some(event) => {
                drop(state);
                callback(&event);
            }
            None => {
                // Usually the only one: no room for more.
                state.callbacks.reserve_exact(1);
                state.callbacks.push(callback);
            }
        }
    }

    /// Fires with `event` unless already fired; runs the callbacks outside
    /// the lock. Returns whether this call fired it.
    fn fire(&self, event: &TeardownEvent) -> bool {
        let callbacks = {
            let mut state = self.lock();
            if state.event.is_some() {
                return false;
            }
            state.event = Some(Box::new(event.clone()));
            std::mem::take(&mut state.callbacks)
        };
        for callback in callbacks {
            callback(event);
        }
        true
    }
}

impl std::fmt::Debug for TeardownSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeardownSignal")
            .field("event", &self.event())
            .finish_non_exhaustive()
    }
}

/// Sizes of the registry's maps, to check that closed connections leave
/// nothing behind and to estimate memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Tracked connections.
    pub connections: usize,
    /// Issuer names in the (issuer, serial) index.
    pub issuers: usize,
    /// (issuer, serial) pairs indexed.
    pub certificates: usize,
    /// CA certificates indexed.
    pub cas: usize,
    /// Deadlines queued.
    pub deadlines: usize,
    /// Parsed certificates shared between connections.
    pub parsed: usize,
    /// Trust anchors the tracked paths end at, and issuers whose CRL
    /// distribution points are kept once for all their certificates.
    pub shared: usize,
    /// Estimated heap bytes of the index structures (maps, sets, per
    /// connection records; parsed certificates and DER excluded).
    pub index_bytes: usize,
}

/// Records of torn-down connections, freed on drop (see
/// [`Registry::take_reclaimable`]).
pub struct Reclaimable(Vec<Conn>);

impl Reclaimable {
    /// How many records.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Reclaimable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Reclaimable").field(&self.0.len()).finish()
    }
}

/// The live-connection index. `Sync`: one registry serves every connection.
pub struct Registry {
    options: VerifyOptions,
    inner: Mutex<Inner>,
    /// Records of connections torn down, freed by [`Registry::reclaim`] (or
    /// before the next teardown) rather than between signalling and
    /// returning the events.
    graveyard: Mutex<Vec<Conn>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    conns: HashMap<u64, Conn>,
    /// issuer name key -> serial -> ids.
    by_cert: HashMap<Arc<[u8]>, Serials>,
    /// issuer name DER (as the certificates encode it) -> name key, for the
    /// issuers present in `by_cert`.
    issuer_keys: HashMap<Vec<u8>, Arc<[u8]>>,
    by_ca: HashMap<[u8; 32], HashSet<u64>>,
    deadlines: BTreeSet<(i64, u64)>,
    /// Parsed certificates (with their DER) by SHA-256, shared by the
    /// connections using them, with the number of those connections.
    parsed: HashMap<[u8; 32], (Arc<CertInfo>, usize)>,
    /// Trust anchors of tracked paths by SHA-256, shared and counted
    /// likewise.
    anchors: HashMap<[u8; 32], (Arc<Anchor>, usize)>,
    /// issuer name key (the one `by_cert` holds) -> what the certificates
    /// of that issuer usually have in common, kept once for all of them.
    issuers: HashMap<Arc<[u8]>, IssuerShared>,
    /// Connections that became degraded since the last
    /// [`Registry::take_notices`].
    notices: Vec<DegradedNotice>,
}

/// What the tracked certificates of one issuer share (see
/// [`Inner::share`]).
struct IssuerShared {
    name: Arc<str>,
    dps: Option<Arc<[crate::cert::DistributionPoint]>>,
}

/// A trust anchor a tracked path ends at.
struct Anchor {
    sha256: [u8; 32],
    subject: String,
    serial: Vec<u8>,
}

/// One tracked connection. Its certificates are shared with the other
/// connections using them: a connection costs its index entries, this
/// record and its leaf (parsed, with its DER), not copies of its CAs.
struct Conn {
    /// Kept for the runtime's events and metrics (see [`Registry::labels`]).
    labels: BTreeMap<String, String>,
    /// The validated path without its anchor, leaf first; with
    /// [`Conn::extras`], the chain a full re-verification starts from.
    path: Vec<Arc<CertInfo>>,
    /// Certificates presented besides the path and its anchor (rare: e.g.
    /// a cross-certificate), kept so that a re-verification sees the chain
    /// as presented.
    extras: Box<[CertificateDer<'static>]>,
    anchor: Arc<Anchor>,
    valid_until: i64,
    /// Kept on a soft-failed (unknown status) verdict.
    degraded: bool,
    signal: TeardownSignal,
}

/// The tracked serials of one issuer, each with its connections.
type Serials = HashMap<Box<[u8]>, Ids>;

/// The connections holding one certificate.
type Ids = crate::IdSet<u64>;

/// A connection whose revocation status is re-checked: id, validated path
/// (without anchor) and anchor digest, copied out of the lock.
type PathCandidate = (u64, Vec<Arc<CertInfo>>, [u8; 32]);

/// A connection picked for re-checking, copied out of the lock.
struct Candidate {
    id: u64,
    path: Vec<Arc<CertInfo>>,
    anchor: [u8; 32],
    extras: Box<[CertificateDer<'static>]>,
}

/// How connections are checked again.
#[derive(Clone, Copy)]
enum Recheck {
    /// Verified again in full, path building included (the trust store or
    /// the data changed in ways a path may depend on).
    Full,
    /// Their verdict lapsed with time: the validated path is judged again.
    Lapsed,
}

impl Candidate {
    /// The chain to verify again: the validated path (leaf first), then
    /// the other certificates presented.
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.path
            .iter()
            .map(|c| CertificateDer::from(c.der.to_vec()))
            .chain(self.extras.iter().cloned())
            .collect()
    }
}

impl Registry {
    /// An empty registry; connections are re-verified with `options` (the
    /// options they were first verified with).
    pub fn new(options: VerifyOptions) -> Self {
        Self {
            options,
            inner: Mutex::new(Inner::default()),
            graveyard: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frees the records of connections torn down so far. Teardown leaves
    /// them for later so that freeing does not delay the events; the
    /// runtime calls this once the events are delivered (it also happens at
    /// the start of the next teardown).
    pub fn reclaim(&self) {
        drop(self.take_reclaimable());
    }

    /// The records of connections torn down so far, taken out of the
    /// registry: they are freed when the value is dropped, e.g. on another
    /// thread than the one delivering the events.
    pub fn take_reclaimable(&self) -> Reclaimable {
        Reclaimable(std::mem::take(
            &mut *self.graveyard.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }

    fn bury(&self, mut dead: Vec<Conn>) {
        self.graveyard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&mut dead);
    }

    /// Tracks a connection authenticated by `chain` (as presented, leaf
    /// first) whose verification was accepted: `accepted` is the proof,
    /// which only the verifier makes ([`Verdict::accepted_path`]), and the
    /// path it holds is what the connection is indexed by. A chain whose
    /// leaf is not the proof's is never tracked: the signal comes back
    /// already fired, so a caller cannot keep such a connection open by
    /// mistake. A rejected verdict has no proof: see [`Registry::refuse`].
    pub fn track(
        &self,
        chain: Vec<CertificateDer<'static>>,
        labels: BTreeMap<String, String>,
        accepted: &AcceptedPath,
        at: SystemTime,
    ) -> (ConnectionId, TeardownSignal) {
        let verdict = accepted.verdict();
        let mut inner = self.lock();
        let Some((path, anchor, extras)) = inner.resolve_path(&chain, accepted) else {
            drop(inner);
            return self.refuse_with(
                verdict,
                TeardownReason::Untrusted,
                "the verdict's path does not match the presented chain".into(),
                at,
            );
        };
        inner.next += 1;
        let id = inner.next;
        let signal = TeardownSignal::default();
        let valid_until = accepted.valid_until();
        for cert in &path {
            if !inner.issuer_keys.contains_key(cert.issuer_der()) {
                inner
                    .issuer_keys
                    .insert(cert.issuer_der().to_vec(), cert.issuer_key.clone());
            }
            inner
                .by_cert
                .entry(cert.issuer_key.clone())
                .or_default()
                .entry(Box::from(cert.serial()))
                .or_default()
                .insert(id);
        }
        for ca in path.iter().skip(1).map(|c| c.sha256).chain([anchor.sha256]) {
            inner.by_ca.entry(ca).or_default().insert(id);
        }
        let now = unix_secs(at);
        let degraded = accepted.degraded();
        let valid_until = if valid_until <= now {
            now + SOFT_FAIL_RECHECK_SECS
        } else {
            valid_until
        };
        if degraded {
            let notice = degraded_notice(ConnectionId(id), verdict, &path, at);
            inner.notices.push(notice);
        }
        inner.deadlines.insert((valid_until, id));
        inner.conns.insert(
            id,
            Conn {
                labels,
                path,
                extras,
                anchor,
                valid_until,
                degraded,
                signal: signal.clone(),
            },
        );
        (ConnectionId(id), signal)
    }

    /// For a connection whose verification was not accepted: it is never
    /// tracked, but gets an id and a signal that comes back already fired
    /// with the event saying why (the reason of `verdict`), as a tracked
    /// connection torn down would.
    pub fn refuse(&self, verdict: &Verdict, at: SystemTime) -> (ConnectionId, TeardownSignal) {
        let reason = if verdict.is_accepted() {
            // Accepted, yet not tracked: the caller had no proof.
            TeardownReason::Untrusted
        } else {
            TeardownReason::from_code(verdict.reason)
        };
        self.refuse_with(verdict, reason, verdict.detail.clone(), at)
    }

    fn refuse_with(
        &self,
        verdict: &Verdict,
        reason: TeardownReason,
        detail: String,
        at: SystemTime,
    ) -> (ConnectionId, TeardownSignal) {
        let id = {
            let mut inner = self.lock();
            inner.next += 1;
            ConnectionId(inner.next)
        };
        let (serial, subject) = verdict
            .chain
            .first()
            .map(|c| (c.serial.clone(), c.subject.clone()))
            .unwrap_or_default();
        let signal = TeardownSignal::default();
        signal.fire(&TeardownEvent {
            connection_id: id,
            reason,
            serial,
            subject,
            detail,
            at: unix_secs(at),
        });
        (id, signal)
    }

    /// Forgets a connection closed normally; no trace of it remains.
    /// Returns whether it was tracked.
    pub fn untrack(&self, id: ConnectionId) -> bool {
        self.lock().remove(id.0).is_some()
    }

    /// Whether the connection is tracked (open and not torn down).
    pub fn contains(&self, id: ConnectionId) -> bool {
        self.lock().conns.contains_key(&id.0)
    }

    /// The labels the connection was tracked with.
    pub fn labels(&self, id: ConnectionId) -> Option<BTreeMap<String, String>> {
        self.lock().conns.get(&id.0).map(|c| c.labels.clone())
    }

    /// The subject and serial (INTEGER content octets) of the
    /// connection's leaf.
    pub fn leaf(&self, id: ConnectionId) -> Option<(String, Vec<u8>)> {
        let inner = self.lock();
        let leaf = inner.conns.get(&id.0)?.path.first()?;
        Some((leaf.subject.clone(), leaf.serial().to_vec()))
    }

    /// When the connection must next be re-verified (earliest notAfter or
    /// revocation nextUpdate of its verdict).
    pub fn valid_until(&self, id: ConnectionId) -> Option<SystemTime> {
        self.lock()
            .conns
            .get(&id.0)
            .map(|c| system_time(c.valid_until))
    }

    /// The earliest deadline of all tracked connections: when the runtime
    /// should call [`Registry::expire_due`] next.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.lock()
            .deadlines
            .first()
            .map(|(secs, _)| system_time(*secs))
    }

    /// Number of tracked connections.
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Whether no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sizes of the internal maps.
    pub fn stats(&self) -> RegistryStats {
        self.lock().stats()
    }

    /// The connections that became degraded (kept on unknown revocation
    /// status under `prefer`) since the last call, oldest first.
    pub fn take_notices(&self) -> Vec<DegradedNotice> {
        std::mem::take(&mut self.lock().notices)
    }

    /// The connections currently kept on unknown revocation status.
    pub fn degraded(&self) -> Vec<ConnectionId> {
        let mut ids: Vec<ConnectionId> = self
            .lock()
            .conns
            .iter()
            .filter(|(_, c)| c.degraded)
            .map(|(id, _)| ConnectionId(*id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The connections with a certificate of their path (anchor excluded)
    /// that `rule` matches: a scan of the tracked paths, for the rare
    /// operator action.
    pub fn matching(&self, rule: &crate::DenyKey) -> Vec<ConnectionId> {
        let rule = crate::deny::Matcher::new(rule);
        let inner = self.lock();
        let mut ids: Vec<ConnectionId> = inner
            .conns
            .iter()
            .filter(|(_, conn)| conn.path.iter().any(|c| rule.matches(c)))
            .map(|(id, _)| ConnectionId(*id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Revocation data about one certificate (DER) changed in `verifier`,
    /// e.g. an OCSP answer about it was fetched or stapled: re-checks the
    /// connections whose path holds a certificate with its issuer and
    /// serial, and only those.
    pub fn on_certificate_data(
        &self,
        verifier: &Snapshot,
        cert_der: &[u8],
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        let Ok(info) = CertInfo::parse(cert_der) else {
            return Vec::new();
        };
        self.on_revocation_data(verifier, info.issuer_der(), Some(info.serial()), at)
    }

    /// A verified revocation of the certificate (`issuer` name DER,
    /// `serial` minimal INTEGER content octets) — e.g. from a stapled OCSP
    /// answer or a remembered fact. One index look-up; the caller vouches
    /// that the revocation was verified. The issuer name is parsed only
    /// when no tracked certificate names its issuer with these exact bytes.
    pub fn on_revoked(
        &self,
        issuer: &[u8],
        serial: &[u8],
        reason: Option<Reason>,
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        {
            let inner = self.lock();
            if let Some(key) = inner.issuer_keys.get(issuer).cloned() {
                return self.revoke_locked(inner, &key, serial, reason, at);
            }
        }
        // Not as tracked certificates encode it; it may still be the same
        // name under RFC 5280 §7.1 comparison.
        self.on_revoked_key(&crate::name::name_key(issuer), serial, reason, at)
    }

    fn on_revoked_key(
        &self,
        issuer_key: &[u8],
        serial: &[u8],
        reason: Option<Reason>,
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        self.reclaim();
        self.revoke_locked(self.lock(), issuer_key, serial, reason, at)
    }

    /// [`Registry::on_revoked_key`] under the lock, which it releases before
    /// firing the signals.
    fn revoke_locked(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        issuer_key: &[u8],
        serial: &[u8],
        reason: Option<Reason>,
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        let ids: Vec<u64> = match inner
            .by_cert
            .get(issuer_key)
            .and_then(|serials| serials.get(serial))
        {
            Some(ids) => ids.iter().collect(),
            None => return Vec::new(),
        };
        let when = unix_secs(at);
        let mut fired = Vec::with_capacity(ids.len());
        let mut dead = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(conn) = inner.remove(id) else {
                continue;
            };
            // The index says the path has it; the leaf is a fallback only.
            let Some(cert) = conn
                .path
                .iter()
                .find(|c| *c.issuer_key == *issuer_key && c.serial() == serial)
                .or_else(|| conn.path.first())
            else {
                continue;
            };
            let event = TeardownEvent {
                connection_id: ConnectionId(id),
                reason: TeardownReason::Revoked,
                serial: cert.serial().to_vec(),
                subject: cert.subject.clone(),
                detail: format!(
                    "certificate {} (serial {}) was revoked ({})",
                    cert.subject,
                    hex(cert.serial()),
                    reason.map_or("unspecified", Reason::as_str)
                ),
                at: when,
            };
            fired.push((conn.signal.clone(), event));
            dead.push(conn);
        }
        drop(inner);
        // Signal first; free the records later.
        let events = fire_all(fired);
        self.bury(dead);
        events
    }

    /// A CRL was loaded into `verifier`: re-checks the revocation status of
    /// the connections with a certificate the CRL lists, and only those.
    /// The paths are not validated again (nothing about them changed); each
    /// certificate's status is looked up in the verifier's data (RFC 5280
    /// §6.3.3).
    ///
    /// The CRL's entries are matched against the (issuer, serial) index,
    /// iterating the smaller side: its entries, or the tracked serials of
    /// its issuer looked up in its hash index. A certificate it does not
    /// list keeps its status when the CRL is complete, supported and current
    /// and lists no CA or OCSP responder certificate the verifier knows (it
    /// then replaces an issue of the same scope or adds coverage). Otherwise
    /// — a delta CRL, unsupported content, not current, a listed CA or
    /// responder, or a CRL the verifier did not load — every connection
    /// with a certificate issued under the CRL issuer's name is re-checked,
    /// as [`Registry::on_revocation_data`] does. A connection whose status
    /// lapses from good to unknown with time (data past nextUpdate) is
    /// [`Registry::expire_due`]'s: its deadline is that nextUpdate.
    pub fn on_crl(
        &self,
        verifier: &Snapshot,
        crl_der: &[u8],
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        let Ok(parsed) = ParsedCrl::from_der(crl_der) else {
            return Vec::new();
        };
        let issues = verifier.loaded_issues(&parsed);
        let now = unix_secs(at);
        if issues.is_empty()
            || issues
                .iter()
                .any(|crl| verifier.crl_reaches_unlisted(crl, now))
        {
            return self.on_revocation_data(verifier, parsed.issuer(), None, at);
        }
        let candidates = {
            let inner = self.lock();
            let mut ids = Vec::new();
            for crl in &issues {
                inner.listed_in(crl, &mut ids);
            }
            ids.sort_unstable();
            ids.dedup();
            inner.path_candidates(ids)
        };
        self.recheck_revocation(verifier, candidates, at)
    }

    /// Revocation data about certificates of `issuer` (name DER) changed in
    /// `verifier` — a CRL (`serial` None: every certificate of the issuer)
    /// or an OCSP answer (`serial` given). Re-checks the connections
    /// concerned; the others are not touched.
    pub fn on_revocation_data(
        &self,
        verifier: &Snapshot,
        issuer: &[u8],
        serial: Option<&[u8]>,
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        let key = crate::name::name_key(issuer);
        let candidates = {
            let inner = self.lock();
            let mut ids: Vec<u64> = match (inner.by_cert.get(key.as_slice()), serial) {
                (None, _) => Vec::new(),
                (Some(serials), Some(serial)) => serials
                    .get(serial)
                    .map(|s| s.iter().collect())
                    .unwrap_or_default(),
                (Some(serials), None) => serials.values().flat_map(Ids::iter).collect(),
            };
            ids.sort_unstable();
            ids.dedup();
            inner.path_candidates(ids)
        };
        self.recheck_revocation(verifier, candidates, at)
    }

    /// Re-checks the revocation status of the candidates' paths; those that
    /// fail (or whose anchor is gone) are torn down.
    fn recheck_revocation(
        &self,
        verifier: &Snapshot,
        candidates: Vec<PathCandidate>,
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        let mut verdicts = Vec::new();
        for (id, mut path, anchor) in candidates {
            let Some(anchor) = verifier.trust().anchor_by_sha256(&anchor) else {
                verdicts.push((id, None));
                continue;
            };
            path.push(anchor.clone());
            if let Some(failure) = verifier.revocation_failure(&path, &self.options, at) {
                verdicts.push((id, Some(failure)));
            }
        }
        self.tear_down(verdicts, at)
    }

    /// Re-verifies the given connections fully (path and revocation, as at
    /// the handshake) with `verifier` at `at`. Those still accepted stay,
    /// with their new deadline; the others go.
    pub fn reverify(
        &self,
        verifier: &Snapshot,
        ids: &[ConnectionId],
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        let candidates = self.lock().candidates(ids.iter().map(|id| id.0).collect());
        self.reverify_candidates(verifier, candidates, at, Recheck::Full)
    }

    /// Re-verifies every tracked connection (e.g. after a trust-store
    /// reload). Costs a full verification per connection.
    pub fn reverify_all(&self, verifier: &Snapshot, at: SystemTime) -> Vec<TeardownEvent> {
        let candidates = {
            let inner = self.lock();
            let ids = inner.conns.keys().copied().collect();
            inner.candidates(ids)
        };
        self.reverify_candidates(verifier, candidates, at, Recheck::Full)
    }

    /// Re-checks the connections whose deadline (`valid_until`: a
    /// notAfter or a nextUpdate) has passed at `at`: an expired certificate
    /// ends the connection as `expired`; stale revocation data that nothing
    /// refreshed ends it as `unverifiable` under `require`. The validated
    /// paths are judged again (validity, anchor, deny list, revocation)
    /// without being built or their signatures checked again, which time
    /// does not change; a path that expired while other certificates were
    /// presented with it is verified in full, in case they make another.
    pub fn expire_due(&self, verifier: &Snapshot, at: SystemTime) -> Vec<TeardownEvent> {
        let now = unix_secs(at);
        let candidates = {
            let inner = self.lock();
            let ids = inner
                .deadlines
                .range(..(now, u64::MAX))
                .map(|(_, id)| *id)
                .collect();
            inner.candidates(ids)
        };
        self.reverify_candidates(verifier, candidates, at, Recheck::Lapsed)
    }

    /// A trust anchor (SHA-256 of its certificate) was removed: every
    /// connection whose path ends at it goes as `untrusted`.
    pub fn on_anchor_removed(
        &self,
        anchor_sha256: &[u8; 32],
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        let ids: Vec<u64> = self
            .lock()
            .by_ca
            .get(anchor_sha256)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        self.tear_down(ids.into_iter().map(|id| (id, None)).collect(), at)
    }

    /// Tears one connection down for a reason decided elsewhere (e.g.
    /// `denied` by policy). Returns the event, if it was tracked.
    pub fn tear_down_one(
        &self,
        id: ConnectionId,
        reason: TeardownReason,
        detail: &str,
        at: SystemTime,
    ) -> Option<TeardownEvent> {
        let conn = self.lock().remove(id.0)?;
        let (serial, subject) = conn
            .path
            .first()
            .map(|c| (c.serial().to_vec(), c.subject.clone()))
            .unwrap_or_default();
        let event = TeardownEvent {
            connection_id: id,
            reason,
            serial,
            subject,
            detail: detail.to_owned(),
            at: unix_secs(at),
        };
        conn.signal.fire(&event);
        Some(event)
    }

    fn reverify_candidates(
        &self,
        verifier: &Snapshot,
        candidates: Vec<Candidate>,
        at: SystemTime,
        recheck: Recheck,
    ) -> Vec<TeardownEvent> {
        let mut failures = Vec::new();
        let mut renewed = Vec::new();
        let now = unix_secs(at);
        for c in candidates {
            let judged = match recheck {
                Recheck::Lapsed => verifier
                    .rejudge(&c.path, &c.anchor, &self.options, at)
                    .filter(|v| {
                        c.extras.is_empty()
                            || !matches!(v.reason, ReasonCode::Expired | ReasonCode::NotYetValid)
                    }),
                Recheck::Full => None,
            };
            let verdict = match judged {
                Some(verdict) => Arc::new(verdict),
                None => verifier.verify(&c.chain(), &self.options, at),
            };
            if verdict.is_accepted() {
                let until = verdict.valid_until.unwrap_or(i64::MAX);
                let degraded = (verdict.status == crate::verdict::Status::Unknown)
                    .then(|| degraded_notice(ConnectionId(c.id), &verdict, &c.path, at));
                // A deadline already reached while still accepted: data past
                // its nextUpdate but within the tolerated skew (look again
                // in a second), or kept on a soft-fail (look again shortly
                // rather than at once, forever).
                let until = match (until <= now, degraded.is_some()) {
                    (false, _) => until,
                    (true, false) => now + 1,
                    (true, true) => now + SOFT_FAIL_RECHECK_SECS,
                };
                renewed.push((c.id, until, degraded));
                continue;
            }
            let position = concerned(&verdict, &c.path, unix_secs(at));
            failures.push((
                c.id,
                Some((position, verdict.reason, verdict.detail.clone())),
            ));
        }
        {
            let mut inner = self.lock();
            for (id, until, degraded) in renewed {
                inner.renew(id, until);
                let Some(conn) = inner.conns.get_mut(&id) else {
                    continue;
                };
                let was = std::mem::replace(&mut conn.degraded, degraded.is_some());
                if let (false, Some(notice)) = (was, degraded) {
                    inner.notices.push(notice);
                }
            }
        }
        self.tear_down(failures, at)
    }

    /// Removes and signals the connections; `None` as the failure means the
    /// anchor is gone.
    fn tear_down(
        &self,
        failures: Vec<(u64, Option<Failure>)>,
        at: SystemTime,
    ) -> Vec<TeardownEvent> {
        self.reclaim();
        let when = unix_secs(at);
        let mut inner = self.lock();
        let mut fired = Vec::with_capacity(failures.len());
        let mut dead = Vec::with_capacity(failures.len());
        for (id, failure) in failures {
            let Some(conn) = inner.remove(id) else {
                continue;
            };
            let event = match failure {
                Some((position, code, detail)) => {
                    let (serial, subject) = conn
                        .path
                        .get(position)
                        .map(|c| (c.serial().to_vec(), c.subject.clone()))
                        .unwrap_or_else(|| {
                            (conn.anchor.serial.clone(), conn.anchor.subject.clone())
                        });
                    TeardownEvent {
                        connection_id: ConnectionId(id),
                        reason: TeardownReason::from_code(code),
                        serial,
                        subject,
                        detail,
                        at: when,
                    }
                }
                None => TeardownEvent {
                    connection_id: ConnectionId(id),
                    reason: TeardownReason::Untrusted,
                    serial: conn.anchor.serial.clone(),
                    subject: conn.anchor.subject.clone(),
                    detail: format!("trust anchor {} is no longer trusted", conn.anchor.subject),
                    at: when,
                },
            };
            fired.push((conn.signal.clone(), event));
            dead.push(conn);
        }
        drop(inner);
        // Signal first; free the records later.
        let events = fire_all(fired);
        self.bury(dead);
        events
    }
}

impl Default for Registry {
    /// A registry re-verifying with the default (strict) options.
    fn default() -> Self {
        Self::new(VerifyOptions::default())
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Fires the signals outside the registry lock, so a callback may call back
/// into the registry.
fn fire_all(fired: Vec<(TeardownSignal, TeardownEvent)>) -> Vec<TeardownEvent> {
    fired
        .into_iter()
        .filter_map(|(signal, event)| signal.fire(&event).then_some(event))
        .collect()
}

impl Inner {
    /// The validated path (minus anchor) as parsed certificates, its
    /// anchor, and the presented certificates that are neither.
    #[allow(clippy::type_complexity)]
    fn resolve_path(
        &mut self,
        chain: &[CertificateDer<'static>],
        accepted: &AcceptedPath,
    ) -> Option<(
        Vec<Arc<CertInfo>>,
        Arc<Anchor>,
        Box<[CertificateDer<'static>]>,
    )> {
        let (anchor, below) = accepted.path().split_last()?;
        let anchor_sha = anchor.sha256;
        let presented: Vec<([u8; 32], &CertificateDer<'static>)> =
            chain.iter().map(|c| (sha256(c), c)).collect();
        // The connection is the one whose verification this proves.
        if presented.first().map(|(d, _)| d) != below.first().map(|c| &c.sha256) {
            return None;
        }
        let mut path = Vec::with_capacity(below.len());
        for cert in below {
            let info = match self.parsed.get(&cert.sha256) {
                Some((info, _)) => info.clone(),
                None => Arc::new(self.share(CertInfo::clone(cert))),
            };
            path.push(info);
        }
        let extras = presented
            .iter()
            .filter(|(d, _)| *d != anchor_sha && !path.iter().any(|c| c.sha256 == *d))
            .map(|(_, der)| (*der).clone())
            .collect();
        // Held from here on: counted until the connection is removed.
        for cert in &path {
            self.parsed
                .entry(cert.sha256)
                .or_insert_with(|| (cert.clone(), 0))
                .1 += 1;
        }
        let (anchor, holders) = self.anchors.entry(anchor_sha).or_insert_with(|| {
            let anchor = Anchor {
                sha256: anchor_sha,
                subject: anchor.subject.clone(),
                serial: anchor.serial().to_vec(),
            };
            (Arc::new(anchor), 0)
        });
        *holders += 1;
        Some((path, anchor.clone(), extras))
    }

    /// `info` with its issuer's name key, name and CRL distribution points
    /// shared with the certificates of the same issuer already tracked,
    /// where they are the same.
    fn share(&mut self, mut info: CertInfo) -> CertInfo {
        match self.issuers.get_key_value(&*info.issuer_key) {
            Some((key, shared)) => {
                info.issuer_key = key.clone();
                if shared.name == info.issuer {
                    info.issuer = shared.name.clone();
                }
                if let (Some(mine), Some(theirs)) = (&info.crl_dps, &shared.dps) {
                    if **mine == **theirs {
                        info.crl_dps = Some(theirs.clone());
                    }
                }
            }
            None => {
                let shared = IssuerShared {
                    name: info.issuer.clone(),
                    dps: info.crl_dps.clone(),
                };
                self.issuers.insert(info.issuer_key.clone(), shared);
            }
        }
        info
    }

    fn candidates(&self, ids: Vec<u64>) -> Vec<Candidate> {
        ids.into_iter()
            .filter_map(|id| {
                let conn = self.conns.get(&id)?;
                Some(Candidate {
                    id,
                    path: conn.path.clone(),
                    anchor: conn.anchor.sha256,
                    extras: conn.extras.clone(),
                })
            })
            .collect()
    }

    /// The paths of the given connections, for a revocation re-check (the
    /// chains are not needed, so not copied).
    fn path_candidates(&self, ids: Vec<u64>) -> Vec<PathCandidate> {
        ids.into_iter()
            .filter_map(|id| {
                let conn = self.conns.get(&id)?;
                Some((id, conn.path.clone(), conn.anchor.sha256))
            })
            .collect()
    }

    /// Appends to `ids` the connections with a certificate `crl` lists,
    /// iterating the smaller side: the CRL's entries, looked up in the
    /// index, or the tracked serials, looked up in the CRL's hash index.
    fn listed_in(&self, crl: &VerifiedCrl, ids: &mut Vec<u64>) {
        if crl.is_indirect() {
            // Entries of several certificate issuers.
            let tracked: usize = self.by_cert.values().map(HashMap::len).sum();
            if crl.len() <= tracked {
                for (issuer, serial, _) in crl.entries() {
                    if let Some(set) = self.by_cert.get(issuer).and_then(|s| s.get(serial)) {
                        ids.extend(set.iter());
                    }
                }
            } else {
                for (issuer, serials) in &self.by_cert {
                    for (serial, set) in serials {
                        if crl.lookup_cert(issuer, serial).is_some() {
                            ids.extend(set.iter());
                        }
                    }
                }
            }
            return;
        }
        let Some(serials) = self.by_cert.get(crl.issuer_key()) else {
            return;
        };
        if crl.len() <= serials.len() {
            for (_, serial, _) in crl.entries() {
                if let Some(set) = serials.get(serial) {
                    ids.extend(set.iter());
                }
            }
        } else {
            for (serial, set) in serials {
                if crl.lookup(serial).is_some() {
                    ids.extend(set.iter());
                }
            }
        }
    }

    fn renew(&mut self, id: u64, until: i64) {
        if let Some(conn) = self.conns.get_mut(&id) {
            self.deadlines.remove(&(conn.valid_until, id));
            conn.valid_until = until;
            self.deadlines.insert((until, id));
        }
    }

    /// Removes every trace of the connection.
    fn remove(&mut self, id: u64) -> Option<Conn> {
        let conn = self.conns.remove(&id)?;
        self.deadlines.remove(&(conn.valid_until, id));
        for cert in &conn.path {
            if let Some(serials) = self.by_cert.get_mut(&cert.issuer_key) {
                if let Some(ids) = serials.get_mut(cert.serial()) {
                    ids.remove(id);
                    if ids.is_empty() {
                        serials.remove(cert.serial());
                    }
                }
                if serials.is_empty() {
                    self.by_cert.remove(&cert.issuer_key);
                    self.issuers.remove(&cert.issuer_key);
                    self.issuer_keys.retain(|_, key| *key != cert.issuer_key);
                }
            }
        }
        for ca in conn
            .path
            .iter()
            .skip(1)
            .map(|c| c.sha256)
            .chain([conn.anchor.sha256])
        {
            if let Some(ids) = self.by_ca.get_mut(&ca) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_ca.remove(&ca);
                }
            }
        }
        for cert in &conn.path {
            release(&mut self.parsed, &cert.sha256);
        }
        release(&mut self.anchors, &conn.anchor.sha256);
        Some(conn)
    }

    fn stats(&self) -> RegistryStats {
        use std::mem::size_of;
        let set = |s: &HashSet<u64>| s.capacity() * (size_of::<u64>() + 1);
        let mut bytes = self.conns.capacity() * (size_of::<(u64, Conn)>() + 1);
        for conn in self.conns.values() {
            bytes += conn.extras.len() * size_of::<CertificateDer<'static>>()
                + conn.path.capacity() * size_of::<Arc<CertInfo>>()
                + conn
                    .labels
                    .iter()
                    .map(|(k, v)| k.capacity() + v.capacity() + 2 * size_of::<String>())
                    .sum::<usize>()
                + size_of::<Mutex<SignalState>>()
                + 2 * size_of::<usize>();
        }
        bytes += self.by_cert.capacity() * (size_of::<(Arc<[u8]>, Serials)>() + 1);
        let mut certificates = 0;
        for (issuer, serials) in &self.by_cert {
            certificates += serials.len();
            bytes += issuer.len() + serials.capacity() * (size_of::<(Box<[u8]>, Ids)>() + 1);
            for (serial, ids) in serials {
                bytes += serial.len() + ids.heap_bytes();
            }
        }
        bytes += self.issuer_keys.capacity() * (size_of::<(Vec<u8>, Arc<[u8]>)>() + 1);
        bytes += self
            .issuer_keys
            .iter()
            .map(|(der, key)| der.capacity() + key.len())
            .sum::<usize>();
        bytes += self.by_ca.capacity() * (size_of::<([u8; 32], HashSet<u64>)>() + 1);
        bytes += self.by_ca.values().map(set).sum::<usize>();
        // A B-tree node holds up to 11 keys; count ~1.5x per key for slack.
        bytes += self.deadlines.len() * size_of::<(i64, u64)>() * 3 / 2;
        bytes += self.parsed.capacity() * (size_of::<([u8; 32], (Arc<CertInfo>, usize))>() + 1);
        bytes += self.anchors.capacity() * (size_of::<([u8; 32], (Arc<Anchor>, usize))>() + 1);
        RegistryStats {
            connections: self.conns.len(),
            issuers: self.by_cert.len(),
            certificates,
            cas: self.by_ca.len(),
            deadlines: self.deadlines.len(),
            parsed: self.parsed.len(),
            shared: self.anchors.len() + self.issuers.len(),
            index_bytes: bytes,
        }
    }
}

/// One connection less holds the shared entry `key`; the last one frees it.
fn release<T>(map: &mut HashMap<[u8; 32], (T, usize)>, key: &[u8; 32]) {
    if let Some((_, holders)) = map.get_mut(key) {
        *holders = holders.saturating_sub(1);
        if *holders == 0 {
            map.remove(key);
        }
    }
}

/// Which certificate of the path a rejected verdict is about: the one its
/// revocation results single out, else an expired one, else the leaf.
fn concerned(verdict: &Verdict, path: &[Arc<CertInfo>], now: i64) -> usize {
    use crate::verdict::CertStatus;
    let by_serial = |serial: &[u8]| path.iter().position(|c| c.serial() == serial);
    if let Some(i) = verdict
        .revocation
        .iter()
        .find(|r| r.status == CertStatus::Revoked)
        .or_else(|| {
            verdict
                .revocation
                .iter()
                .find(|r| r.status == CertStatus::Unknown)
        })
        .and_then(|r| by_serial(&r.serial))
    {
        return i;
    }
    match verdict.reason {
        ReasonCode::Expired => path.iter().position(|c| c.not_after < now).unwrap_or(0),
        ReasonCode::NotYetValid => path.iter().position(|c| c.not_before > now).unwrap_or(0),
        _ => 0,
    }
}

/// The notice for a connection kept on `verdict` (unknown status).
fn degraded_notice(
    id: ConnectionId,
    verdict: &Verdict,
    path: &[Arc<CertInfo>],
    at: SystemTime,
) -> DegradedNotice {
    let position = concerned(verdict, path, unix_secs(at));
    let (serial, subject) = path
        .get(position)
        .map(|c| (c.serial().to_vec(), c.subject.clone()))
        .unwrap_or_default();
    let detail = verdict
        .revocation
        .iter()
        .find(|r| r.status == crate::verdict::CertStatus::Unknown)
        .and_then(|r| r.reason.clone())
        .map_or_else(
            || verdict.detail.clone(),
            |reason| format!("{} ({reason})", verdict.detail),
        );
    DegradedNotice {
        connection_id: id,
        serial,
        subject,
        detail,
        at: unix_secs(at),
    }
}

fn system_time(secs: i64) -> SystemTime {
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        SystemTime::UNIX_EPOCH
            .checked_add(d)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    } else {
        SystemTime::UNIX_EPOCH
            .checked_sub(d)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn event(id: u64) -> TeardownEvent {
        TeardownEvent {
            connection_id: ConnectionId(id),
            reason: TeardownReason::Revoked,
            serial: vec![1],
            subject: "CN=x".into(),
            detail: "d".into(),
            at: 0,
        }
    }

    #[test]
    fn a_signal_fires_once_and_runs_each_callback_once() {
        let signal = TeardownSignal::default();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        signal.on_fire(Box::new(move |e| {
            assert_eq!(e.connection_id, ConnectionId(7));
            c.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(!signal.is_fired());
        assert!(signal.clone().fire(&event(7)));
        assert!(!signal.fire(&event(8)));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(
            signal.event().map(|e| e.connection_id),
            Some(ConnectionId(7))
        );
        // Registered after firing: runs at once.
        let c = count.clone();
        signal.on_fire(Box::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn reasons_serialize_as_the_contract_strings() {
        let json = serde_json::to_value(event(3)).unwrap();
        assert_eq!(json["connection_id"], 3);
        assert_eq!(json["reason"], "revoked");
        for (r, s) in [
            (TeardownReason::Revoked, "revoked"),
            (TeardownReason::Expired, "expired"),
            (TeardownReason::Unverifiable, "unverifiable"),
            (TeardownReason::Untrusted, "untrusted"),
            (TeardownReason::Denied, "denied"),
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), s);
            assert_eq!(r.as_str(), s);
        }
        assert_eq!(
            TeardownReason::from_code(ReasonCode::RevocationDataStale),
            TeardownReason::Unverifiable
        );
        assert_eq!(
            TeardownReason::from_code(ReasonCode::NotYetValid),
            TeardownReason::Expired
        );
        assert_eq!(
            TeardownReason::from_code(ReasonCode::UnknownIssuer),
            TeardownReason::Untrusted
        );
    }
}
