//! The one cloneable [`Engine`] handle: trust anchors, revocation data
//! fetched from the endpoints certificates name, verified by the core,
//! persisted in a [`Store`] and refreshed before it goes stale.
//!
//! Data flows one way: the engine fetches, the core verifies and decides,
//! the engine persists what verified and schedules the next fetch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};
use vigil_core::text::hex;

use serde::Serialize;
use tokio::sync::watch;
use vigil_core::revocation::{build_request, CertIdHash, OcspError, ParsedCrl, ParsedOcsp};
use vigil_core::revocation::{Reason, RevocationFact as CoreFact};
use vigil_core::schedule::{next_refresh, RefreshPolicy, SourceTiming};
use vigil_core::{
    AdmittedPath, CertificateDer, CrlDer, CrlLoad, DenyRule, Freshness, RevocationPolicy, Snapshot,
    Source, TrustStore, Verdict, Verifier, VerifierConfig, VerifyOptions,
};

use crate::{
    FetchConfig, FetchError, FetchOutcome, Fetcher, PutOutcome, RevocationKey, SourceKind,
    SourceRecord, SourceStatus, Store, StoreError, StoredFact, Table, Validators,
};

mod config;
mod refresh;
mod scheduler;
pub(crate) mod shared;
mod sources;

pub use config::{Clock, EngineConfig, EngineError, SystemClock};
pub use refresh::Refreshed;
use scheduler::retry_jitter;
pub use sources::SourceState;
use sources::Tracked;

/// What changed in the engine's data, as told to observers (the connection
/// trackers), so that they re-check exactly the connections concerned.
pub(crate) enum Change<'a> {
    /// A CRL (DER) was loaded or offered.
    Crl(&'a [u8]),
    /// Revocation data about this certificate (DER) changed, e.g. an OCSP
    /// answer about it.
    Certificate(&'a [u8]),
    /// An OCSP response about certificates the engine cannot name changed.
    Unscoped,
    /// The trust anchor with this certificate SHA-256 was removed.
    AnchorRemoved([u8; 32]),
    /// Certificates matching this key were put on the deny list.
    Denied(&'a vigil_core::DenyKey),
}

/// Told of every data change, with the snapshot published when it is told
/// (the change's own or a later one).
pub(crate) trait Observer: Send + Sync {
    fn on_change(&self, snapshot: &Snapshot, change: &Change<'_>, at: SystemTime);
}

struct Inner {
    /// What verifications read: swapped, never locked (issue 12).
    current: arc_swap::ArcSwap<Snapshot>,
    /// Serialises writers: each builds the next snapshot from the current
    /// one and publishes it before the next writer starts.
    writer: Mutex<()>,
    anchors: RwLock<Vec<CertificateDer<'static>>>,
    observers: Mutex<Vec<Weak<dyn Observer>>>,
    store: Arc<dyn Store>,
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    sources: Mutex<BTreeMap<String, Tracked>>,
    changes: watch::Sender<u64>,
    refresh_stats: crate::stats::RefreshStats,
    store_errors: std::sync::atomic::AtomicU64,
    /// When expired facts were last pruned, Unix seconds.
    last_prune: std::sync::atomic::AtomicI64,
    /// Wakes the scheduler: a source was added.
    wake: tokio::sync::Notify,
    /// Sources evicted by the cap so far.
    evicted: std::sync::atomic::AtomicU64,
    /// What [`Engine::open`] could not load.
    load_problems: Vec<String>,
    /// Fleet mode: where revocation data is shared.
    exchange: std::sync::OnceLock<Arc<dyn crate::exchange::Exchange>>,
}

/// The engine handle: cheap to clone, shared by the verifier hooks, the
/// sidecar and the CLI.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Opens an engine over these anchors and this store: everything the
    /// store holds is loaded and verified again before use (CRLs whose
    /// issuer is not known yet are verified when a chain brings it).
    pub fn open(
        anchors: Vec<CertificateDer<'static>>,
        store: Arc<dyn Store>,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EngineError> {
        let mut trust = TrustStore::new();
        for anchor in &anchors {
            trust.add(anchor.clone()).map_err(EngineError::Input)?;
        }
        let mut verifier = Verifier::with_config(trust, config.verifier);
        let mut sources = BTreeMap::new();
        // One read of each stored record, each dropped before the next.
        let mut load = |record: Result<SourceRecord, StoreError>| {
            let Ok(record) = record else {
                // A record that no longer decodes is never used.
                return;
            };
            let mut tracked = Tracked {
                kind: Some(record.kind),
                timing: SourceTiming {
                    this_update: record.this_update,
                    next_update: record.next_update,
                    last_success: Some(record.fetched_at),
                    last_attempt: record.last_attempt.or(Some(record.fetched_at)),
                    failures: 0,
                },
                validators: record.validators(),
                last_error: record.last_error.clone(),
                crl_number: record.crl_number.clone(),
                ..Tracked::default()
            };
            let usable = match record.kind {
                SourceKind::Crl => match verifier.add_crl_owned(CrlDer::new(record.body.clone())) {
                    Ok(CrlLoad::Verified { entries }) => {
                        tracked.entries = Some(entries);
                        true
                    }
                    Ok(CrlLoad::Unchanged { entries }) => {
                        tracked.entries = Some(entries);
                        true
                    }
                    Ok(CrlLoad::Pending) => true,
                    Ok(_) | Err(_) => false,
                },
                SourceKind::Ocsp => verifier
                    .set_ocsp_response(&record.url, &record.body)
                    .is_ok(),
            };
            if !usable {
                tracked.validators = Validators::default();
                tracked.last_error = Some("stored data failed verification; refetching".into());
            }
            sources.insert(record.url.clone(), tracked);
        };
        store
            .for_each_record(&mut load)
            .map_err(EngineError::Store)?;
        let mut legacy_facts = 0usize;
        let mut load_problems = Vec::new();
        for fact in store.revocations().map_err(EngineError::Store)? {
            let fact = match fact {
                Ok(fact) => fact,
                Err(e) => {
                    tracing::error!(error = %e, "stored revocation fact cannot be loaded");
                    load_problems.push(format!("revocation fact: {e}"));
                    continue;
                }
            };
            let (key, fact) = fact;
            // Facts are keyed by the issuer's SPKI digest. A key of another
            // length was written by a version that keyed them by name: such
            // a fact can't be tied to a key and is not used (reported).
            let Ok(issuer_spki_sha256) = <[u8; 32]>::try_from(&key.issuer_key[..]) else {
                legacy_facts += 1;
                continue;
            };
            verifier.remember(CoreFact {
                issuer_spki_sha256,
                serial: key.serial,
                revoked_at: fact.revoked_at,
                reason: fact.reason.and_then(Reason::from_code),
                source: if fact.source == "ocsp" {
                    Source::Ocsp
                } else {
                    Source::Crl
                },
                expires_at: (fact.expires_at != i64::MAX).then_some(fact.expires_at),
            });
        }
        if legacy_facts > 0 {
            tracing::warn!(
                count = legacy_facts,
                "stored revocation facts keyed by issuer name (an older version) are not used"
            );
        }
        // A deny rule that cannot be read is kept on disk and reported
        // (`load_problems`: the sidecar's /readyz fails), never dropped in
        // silence. Rules stored before issuer DNs were normalised are
        // rewritten under their normalised key, so that lifting works.
        for (key, value) in store.entries(Table::Denials).map_err(EngineError::Store)? {
            let rule = serde_json::from_slice::<DenyRule>(&value)
                .map_err(|e| e.to_string())
                .and_then(|rule| {
                    let key = rule.key.clone().normalized()?;
                    Ok(DenyRule { key, ..rule })
                });
            match rule {
                Ok(rule) => {
                    let normal = deny_key_bytes(&rule.key);
                    if normal != key {
                        let migrated = serde_json::to_vec(&rule)
                            .map_err(|e| StoreError::Invalid {
                                detail: e.to_string(),
                            })
                            .and_then(|v| store.put_entry(Table::Denials, &normal, &v))
                            .and_then(|()| store.delete_entry(Table::Denials, &key).map(drop));
                        if let Err(e) = migrated {
                            tracing::error!(error = %e, "cannot rewrite a deny rule under its normalised key");
                        }
                    }
                    verifier.deny(rule);
                }
                Err(e) => {
                    let key = String::from_utf8_lossy(&key).into_owned();
                    tracing::error!(key = %key, error = %e, "stored deny rule cannot be loaded");
                    load_problems.push(format!("deny rule {key}: {e}"));
                }
            }
        }
        let fetcher = Fetcher::new(config.fetch.clone()).map_err(EngineError::Fetch)?;
        let (changes, _) = watch::channel(0);
        Ok(Self {
            inner: Arc::new(Inner {
                current: arc_swap::ArcSwap::new(verifier.snapshot()),
                writer: Mutex::new(()),
                anchors: RwLock::new(anchors),
                observers: Mutex::new(Vec::new()),
                store,
                fetcher,
                clock,
                config,
                sources: Mutex::new(sources),
                changes,
                refresh_stats: crate::stats::RefreshStats::default(),
                store_errors: std::sync::atomic::AtomicU64::new(0),
                last_prune: std::sync::atomic::AtomicI64::new(0),
                wake: tokio::sync::Notify::new(),
                evicted: std::sync::atomic::AtomicU64::new(0),
                load_problems,
                exchange: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Stored records [`Engine::open`] could not load (each named, with
    /// why); they stay in the store. Not empty: the data in use is not
    /// what was stored (a service should report itself not ready).
    pub fn load_problems(&self) -> Vec<String> {
        self.inner.load_problems.clone()
    }

    /// Loads a CRL given directly (a file, a cache outside the store).
    ///
    /// The CRL is parsed, verified and indexed against the published
    /// snapshot without holding anything; only linking it into the next
    /// snapshot is serialised with other writers, and verifications never
    /// wait for either.
    pub fn add_crl(&self, der: &[u8]) -> Result<CrlLoad, vigil_core::revocation::CrlError> {
        let load = self.ingest_crl(der)?;
        self.changed();
        self.notify(&Change::Crl(der));
        Ok(load)
    }

    /// Prepares a CRL off to the side, then commits it under the writer
    /// lock (see [`Verifier::commit_crl`]).
    fn ingest_crl(&self, der: &[u8]) -> Result<CrlLoad, vigil_core::revocation::CrlError> {
        let prepared = self.read().prepare_crl(der)?;
        Ok(self.write(|v| v.commit_crl(prepared)))
    }

    /// Loads an OCSP response given directly (a file). Tracked connections
    /// are all re-verified, since a response names certificates only by
    /// hashes; prefer [`Engine::add_stapled_ocsp`] when the certificate is
    /// known.
    pub fn add_ocsp_response(&self, der: &[u8]) -> Result<usize, OcspError> {
        let loaded = self.write(|v| v.add_ocsp_response(der));
        if loaded.is_ok() {
            self.changed();
            self.notify(&Change::Unscoped);
        }
        loaded
    }

    /// Considers an OCSP response stapled by the peer that presented
    /// `chain` (leaf first): the chain's path must validate to an anchor
    /// first, and only the response's answers about certificates of that
    /// path that verify for their issuer are held (see
    /// [`Verifier::add_stapled_ocsp`]); anything else is refused and never
    /// held. The connections resting on the leaf are re-checked with it.
    pub fn add_stapled_ocsp(
        &self,
        der: &[u8],
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
    ) -> Result<usize, OcspError> {
        let path = self
            .validate(chain, options)
            .map_err(|verdict| OcspError::NotForPath {
                detail: format!("the peer's chain does not validate ({})", verdict.reason),
            })?;
        let at = self.now();
        let (loaded, changed) = self.write(|verifier| {
            let before = verifier.generation();
            let loaded = verifier.add_stapled_ocsp(der, &path, at);
            (loaded, verifier.generation() != before)
        });
        // The same staple again changes nothing (the verifier keeps one copy).
        if loaded.is_ok() && changed {
            self.changed();
            if let Some(leaf) = chain.first() {
                self.notify(&Change::Certificate(leaf));
            }
        }
        loaded
    }

    /// Trusts one more anchor at run time; returns false when it already
    /// was. Connections are not affected (adding trust never ends one).
    pub fn add_anchor(
        &self,
        der: CertificateDer<'static>,
    ) -> Result<bool, vigil_core::input::InputError> {
        let added = self.write(|v| v.add_anchor(der.clone()))?;
        if added {
            self.inner
                .anchors
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(der);
            self.changed();
        }
        Ok(added)
    }

    /// Stops trusting the anchor whose certificate has this SHA-256: every
    /// tracked connection whose path ends at it is torn down as
    /// `untrusted`, and no new path to it is accepted. Returns whether it
    /// was trusted.
    pub fn remove_anchor(&self, sha256: &[u8; 32]) -> bool {
        let removed = self.write(|v| v.remove_anchor(sha256));
        if removed {
            self.inner
                .anchors
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|a| &vigil_core::sha256(a) != sha256);
            self.changed();
            self.notify(&Change::AnchorRemoved(*sha256));
        }
        removed
    }

    /// Replaces the trust anchors with `anchors` (a reloaded bundle): the
    /// new ones are added first, then those no longer listed are removed,
    /// tearing down their connections. Returns (added, removed).
    pub fn set_anchors(
        &self,
        anchors: Vec<CertificateDer<'static>>,
    ) -> Result<(usize, usize), vigil_core::input::InputError> {
        // Validate the whole bundle before changing anything.
        let mut check = TrustStore::new();
        for anchor in &anchors {
            check.add(anchor.clone())?;
        }
        let mut added = 0;
        for anchor in anchors {
            added += usize::from(self.add_anchor(anchor)?);
        }
        let keep = check.digests();
        let current = self.read().trust().digests();
        let mut removed = 0;
        for digest in current.iter().filter(|d| !keep.contains(d)) {
            removed += usize::from(self.remove_anchor(digest));
        }
        Ok((added, removed))
    }

    /// Puts a certificate on the deny list, persisted in the store: every
    /// tracked connection through it is torn down as `denied` and new
    /// verifications are rejected. Returns whether the list changed; an
    /// error (and no change) if the rule could not be persisted.
    pub fn deny(&self, rule: DenyRule) -> Result<bool, StoreError> {
        let value = serde_json::to_vec(&rule).map_err(|e| StoreError::Invalid {
            detail: e.to_string(),
        })?;
        self.inner
            .store
            .put_entry(Table::Denials, &deny_key_bytes(&rule.key), &value)?;
        let added = self.write(|v| v.deny(rule.clone()));
        if added {
            self.changed();
            self.notify(&Change::Denied(&rule.key));
        }
        Ok(added)
    }

    /// Lifts a deny rule (and forgets it in the store); returns whether
    /// there was one.
    pub fn lift(&self, key: &vigil_core::DenyKey) -> Result<bool, StoreError> {
        self.inner
            .store
            .delete_entry(Table::Denials, &deny_key_bytes(key))?;
        let lifted = self.write(|v| v.lift(key));
        if lifted {
            self.changed();
        }
        Ok(lifted)
    }

    /// The deny list.
    pub fn denials(&self) -> Vec<DenyRule> {
        self.read().denials().to_vec()
    }

    /// How many deny rules are set (without copying them).
    pub fn denial_count(&self) -> usize {
        self.read().denials().len()
    }

    /// The trust anchors, as DER.
    pub fn anchors(&self) -> Vec<CertificateDer<'static>> {
        self.inner
            .anchors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Admits a CA certificate as a possible CRL signer when it chains to
    /// an anchor by signature (see [`Verifier::add_ca_certificate`]);
    /// returns whether it was admitted.
    pub fn add_ca_certificate(
        &self,
        der: &CertificateDer<'_>,
    ) -> Result<bool, vigil_core::input::InputError> {
        self.write(|v| v.add_ca_certificate(der))
    }

    /// The DER subject Name (outer SEQUENCE included) of each trust anchor,
    /// e.g. for a TLS CertificateRequest's certificate_authorities.
    pub fn anchor_subjects(&self) -> Vec<Vec<u8>> {
        self.read().trust().subjects()
    }

    /// Now, by the engine's clock.
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// A receiver that changes whenever revocation data changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Verifies a chain (leaf first) now. Unless offline, the path is
    /// validated first, and only if it validates to an anchor are the
    /// revocation sources of the certificates on that path fetched (those
    /// it lacks or holds past their refresh time); then the core decides.
    /// Callers on a hot path try [`Engine::verify_cached`] first. A chain that does not
    /// validate costs no network I/O, and certificates a peer appended
    /// beyond its path are never fetched for.
    pub async fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
    ) -> Arc<Verdict> {
        if self.inner.config.offline || options.policy == RevocationPolicy::Off {
            let verdict = self.verify_cached(chain, options);
            self.persist_new_facts().await;
            return verdict;
        }
        let Ok(path) = self.validate(chain, options) else {
            // No path to an anchor: nothing it names is fetched.
            return self.verify_cached(chain, options);
        };
        self.admit(&path);
        self.prefetch(&path, options.depth).await;
        let verdict = self.verify_cached(chain, options);
        self.persist_new_facts().await;
        verdict
    }

    /// Verifies with what is loaded, without fetching. A revocation the
    /// verification learned (e.g. from a stapled answer) is persisted in
    /// the background at once when a tokio runtime is at hand.
    pub fn verify_cached(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
    ) -> Arc<Verdict> {
        let at = self.now();
        let (verdict, learned) = {
            let verifier = self.read();
            let verdict = verifier.verify(chain, options, at);
            (verdict, verifier.has_new_facts())
        };
        if learned {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let engine = self.clone();
                handle.spawn(async move { engine.persist_new_facts().await });
            }
        }
        verdict
    }

    /// The verdict cached for exactly these octets and options, if any
    /// (see [`Snapshot::cached`](vigil_core::Snapshot::cached)): nothing
    /// is verified, parsed or fetched.
    pub fn cached_verdict(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
    ) -> Option<Arc<Verdict>> {
        self.read().cached(chain, options, self.now())
    }

    /// Forgets remembered revocations of certificates that expired, in
    /// memory and in the store (RFC 5280 §3.3: an expired certificate's
    /// status need not be kept); returns how many were dropped from memory.
    pub fn prune_expired_facts(&self) -> usize {
        let now = self.now();
        let dropped = self.write(|v| v.forget_expired(now));
        if let Err(e) = self.inner.store.prune_revocations(unix(now)) {
            self.store_failed("prune revocation facts", &e);
        }
        dropped
    }

    /// The published snapshot of the data: what verifications read now.
    /// Later changes publish new snapshots; this one never changes.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// Validates the path of `chain` to an anchor now (no revocation), the
    /// one way to an [`AdmittedPath`]: see [`vigil_core::Snapshot::validate`].
    pub fn validate(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
    ) -> Result<AdmittedPath, Box<Verdict>> {
        let at = self.now();
        self.read().validate(chain, options, at)
    }

    /// Admits the CA certificates of a validated path as CRL signers, so
    /// that CRLs fetched for it verify as they arrive.
    fn admit(&self, path: &AdmittedPath) {
        if !self.read().has_admitted(path) {
            self.write(|v| v.admit(path));
        }
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|n| *n += 1);
    }

    /// Registers an observer, told of every later change until dropped.
    pub(crate) fn observe(&self, observer: Weak<dyn Observer>) {
        let mut observers = self
            .inner
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        observers.retain(|o| o.strong_count() > 0);
        observers.push(observer);
    }

    /// Runs `notify` (a call of [`Engine::notify`]) on a blocking thread
    /// when anything observes the engine: the re-checks it starts and the
    /// signals they fire (a task woken per connection torn down) stay off
    /// the async workers, which are then free to run the woken connections
    /// while the rest are signalled.
    async fn notify_blocking(&self, notify: impl FnOnce(&Engine) + Send + 'static) {
        let observed = self
            .inner
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|o| o.strong_count() > 0);
        if !observed {
            return;
        }
        let engine = self.clone();
        if tokio::task::spawn_blocking(move || notify(&engine))
            .await
            .is_err()
        {
            tracing::error!("an observer of the engine panicked");
        }
    }

    /// Tells every live observer of `change`, with the snapshot published
    /// now: the one the change published or a later one, which holds the
    /// change too (snapshots only move forward). Never an older one: the
    /// notices of two changes can run out of order (each runs on a blocking
    /// thread once its writer is done), and a re-check against the snapshot
    /// of the earlier change would judge connections verified since by data
    /// that has been replaced (a CRL past its nextUpdate), tearing down
    /// innocent connections.
    fn notify(&self, change: &Change<'_>) {
        let observers: Vec<Arc<dyn Observer>> = self
            .inner
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        if observers.is_empty() {
            return;
        }
        let at = self.now();
        let snapshot = self.read();
        for observer in observers {
            observer.on_change(&snapshot, change, at);
        }
    }

    /// Runs `f` with the published snapshot.
    pub(crate) fn with_verifier<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.read())
    }

    /// The published snapshot: a pointer load, no lock.
    fn read(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.inner.current.load()
    }

    /// Runs one change: under the writer lock, `f` builds the next
    /// snapshot from the current one (copy on write: unchanged parts are
    /// shared), which is then published by a pointer swap. Verifications
    /// go on with the previous snapshot meanwhile. Returns what `f`
    /// returned.
    fn write<R>(&self, f: impl FnOnce(&mut Verifier) -> R) -> R {
        let _writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.current.load_full();
        let mut verifier = Verifier::from_snapshot(current.clone());
        let result = f(&mut verifier);
        let next = verifier.snapshot();
        if !Arc::ptr_eq(&next, &current) {
            self.inner.current.store(next);
        }
        result
    }
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The store key of a deny rule: its key, as JSON.
fn deny_key_bytes(key: &vigil_core::DenyKey) -> Vec<u8> {
    serde_json::to_vec(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_config_setter_sets_its_own_field() {
        let fetch = FetchConfig::default().with_retries(9);
        let verifier = VerifierConfig::default().with_clock_skew_secs(1);
        let refresh = RefreshPolicy::default().with_max_interval_secs(2);
        let built = EngineConfig::default()
            .with_fetch(fetch.clone())
            .with_verifier(verifier)
            .with_refresh(refresh)
            .with_ocsp_sha256(true)
            .with_ocsp_nonce(true)
            .with_offline(true)
            .with_max_sources(3)
            .with_refresh_concurrency(4);
        let expected = EngineConfig {
            fetch,
            verifier,
            refresh,
            ocsp_sha256: true,
            ocsp_nonce: true,
            offline: true,
            max_sources: 3,
            refresh_concurrency: 4,
        };
        // No PartialEq (nothing compares configs); Debug shows every field.
        assert_eq!(format!("{built:?}"), format!("{expected:?}"));
    }
}
