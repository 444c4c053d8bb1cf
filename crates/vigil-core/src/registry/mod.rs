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

mod index;
mod recheck;
mod signal;

use recheck::{degraded_notice, system_time, Candidate, PathCandidate};
use signal::{fire_all, SignalState};
pub use signal::{DegradedNotice, TeardownEvent, TeardownReason, TeardownSignal};

/// Identifies one tracked connection for the life of its [`Registry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How long a connection kept on a soft-failed verdict whose data is
/// already past its nextUpdate waits before it is re-checked by time alone
/// (new data re-checks it at once).
const SOFT_FAIL_RECHECK_SECS: i64 = 10;

/// Position in the path, reason and sentence of a failed re-check.
type Failure = (usize, ReasonCode, String);

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
