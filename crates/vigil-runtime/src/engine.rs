//! The one cloneable [`Engine`] handle: trust anchors, revocation data
//! fetched from the endpoints certificates name, verified by the core,
//! persisted in a [`Store`] and refreshed before it goes stale.
//!
//! Data flows one way: the engine fetches, the core verifies and decides,
//! the engine persists what verified and schedules the next fetch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};
use vigil_core::hex;

use serde::Serialize;
use tokio::sync::watch;
use vigil_core::revocation::{build_request, CertIdHash, OcspError, ParsedCrl, ParsedOcsp};
use vigil_core::schedule::{next_refresh, RefreshPolicy, SourceTiming};
use vigil_core::{
    AdmittedPath, CertificateDer, CrlLoad, DenyRule, Freshness, Reason, RevocationFact as CoreFact,
    RevocationPolicy, Snapshot, Source, TrustStore, Verdict, Verifier, VerifierConfig,
    VerifyOptions,
};

use crate::{
    FetchConfig, FetchError, FetchOutcome, Fetcher, PutOutcome, RevocationFact, RevocationKey,
    SourceKind, SourceRecord, SourceStatus, Store, StoreError, Table, Validators,
};

/// The time source; injected so tests and drills can move time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Engine settings; the defaults are the strict choices.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Fetch limits and timeouts.
    pub fetch: FetchConfig,
    /// Verification tunables (clock skew, OCSP max age, method order).
    pub verifier: VerifierConfig,
    /// Refresh timing.
    pub refresh: RefreshPolicy,
    /// Hash of OCSP CertIDs (SHA-1 by default, as RFC 5019 asks).
    pub ocsp_sha256: bool,
    /// Send an OCSP nonce.
    pub ocsp_nonce: bool,
    /// Never fetch: use only what is loaded and stored.
    pub offline: bool,
    /// Revocation sources tracked at most; beyond, the least recently used
    /// one (named by no verification for the longest time) is forgotten, in
    /// memory and in the store. Default 10,000.
    pub max_sources: usize,
    /// Refreshes the scheduler runs at once (a few slow endpoints do not
    /// hold up the rest). Default 16.
    pub refresh_concurrency: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            fetch: FetchConfig::default(),
            verifier: VerifierConfig::default(),
            refresh: RefreshPolicy::default(),
            ocsp_sha256: false,
            ocsp_nonce: false,
            offline: false,
            max_sources: 10_000,
            refresh_concurrency: 16,
        }
    }
}

/// Why the engine could not start or act.
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed.
    Store(StoreError),
    /// The fetcher could not be built.
    Fetch(FetchError),
    /// A certificate or anchor was unusable.
    Input(vigil_core::InputError),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "store: {e}"),
            Self::Fetch(e) => write!(f, "fetcher: {e}"),
            Self::Input(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// The state of one revocation source, as the sidecar and CLI show it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceState {
    /// The URL (for OCSP: the responder URL and `#` and the serial).
    pub url: String,
    /// `crl` or `ocsp`.
    pub kind: &'static str,
    /// thisUpdate of the data held, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "vigil_core::text::ser::rfc3339_opt")]
    pub this_update: Option<i64>,
    /// nextUpdate of the data held, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "vigil_core::text::ser::rfc3339_opt")]
    pub next_update: Option<i64>,
    /// Last fetch attempt, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "vigil_core::text::ser::rfc3339_opt")]
    pub last_fetch: Option<i64>,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Next scheduled attempt, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "vigil_core::text::ser::rfc3339_opt")]
    pub next_attempt: Option<i64>,
    /// Revoked entries (CRLs).
    pub entries: Option<usize>,
    /// cRLNumber (INTEGER content octets, CRLs); hex in JSON.
    #[serde(serialize_with = "vigil_core::text::ser::hex_opt")]
    pub crl_number: Option<Vec<u8>>,
}

#[derive(Clone, Default)]
struct Tracked {
    kind: Option<SourceKind>,
    timing: SourceTiming,
    validators: Validators,
    last_error: Option<String>,
    entries: Option<usize>,
    crl_number: Option<Vec<u8>>,
    /// For OCSP: the responder URL, the certificate and its issuer.
    ocsp: Option<(String, Vec<u8>, Vec<u8>)>,
    /// Seconds added to the retry time after a failure, drawn anew at each
    /// failure, so that sources failing together do not retry together.
    jitter_secs: i64,
    /// When a verification last named the source, or it was added (Unix
    /// seconds): sources are evicted least recently used first.
    last_used: i64,
    /// A scheduled refresh of it is running.
    refreshing: bool,
}

impl Tracked {
    /// When the scheduler refreshes it next: [`next_refresh`], plus the
    /// jitter after failures.
    fn due_at(&self, policy: &RefreshPolicy) -> i64 {
        let at = next_refresh(&self.timing, policy);
        if self.timing.failures > 0 {
            at.saturating_add(self.jitter_secs)
        } else {
            at
        }
    }
}

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

/// Told of every data change, with the snapshot the change published.
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
}

/// What a refresh did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refreshed {
    /// New data was fetched, verified (or kept pending its issuer) and stored.
    Updated,
    /// 304 Not Modified: nothing re-parsed.
    NotModified,
    /// The fetch or the data failed; the previous data stays.
    Failed(String),
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
        for meta in store.list().map_err(EngineError::Store)? {
            let Ok(meta) = meta else {
                // A record that no longer decodes is never used.
                continue;
            };
            let Some(record) = store.get(&meta.url).map_err(EngineError::Store)? else {
                continue;
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
                SourceKind::Crl => match verifier.add_crl(&record.body) {
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
        }
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
    pub fn add_crl(&self, der: &[u8]) -> Result<CrlLoad, vigil_core::CrlError> {
        let (load, published) = self.ingest_crl(der)?;
        self.changed();
        self.notify(&published, &Change::Crl(der));
        Ok(load)
    }

    /// Prepares a CRL off to the side, then commits it under the writer
    /// lock (see [`Verifier::commit_crl`]); returns the snapshot published.
    fn ingest_crl(&self, der: &[u8]) -> Result<(CrlLoad, Arc<Snapshot>), vigil_core::CrlError> {
        let prepared = self.read().prepare_crl(der)?;
        Ok(self.write(|v| v.commit_crl(prepared)))
    }

    /// Loads an OCSP response given directly (a file). Tracked connections
    /// are all re-verified, since a response names certificates only by
    /// hashes; prefer [`Engine::add_stapled_ocsp`] when the certificate is
    /// known.
    pub fn add_ocsp_response(&self, der: &[u8]) -> Result<usize, OcspError> {
        let (loaded, published) = self.write(|v| v.add_ocsp_response(der));
        if loaded.is_ok() {
            self.changed();
            self.notify(&published, &Change::Unscoped);
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
        let ((loaded, changed), published) = self.write(|verifier| {
            let before = verifier.generation();
            let loaded = verifier.add_stapled_ocsp(der, &path, at);
            (loaded, verifier.generation() != before)
        });
        // The same staple again changes nothing (the verifier keeps one copy).
        if loaded.is_ok() && changed {
            self.changed();
            if let Some(leaf) = chain.first() {
                self.notify(&published, &Change::Certificate(leaf));
            }
        }
        loaded
    }

    /// Trusts one more anchor at run time; returns false when it already
    /// was. Connections are not affected (adding trust never ends one).
    pub fn add_anchor(&self, der: CertificateDer<'static>) -> Result<bool, vigil_core::InputError> {
        let added = self.write(|v| v.add_anchor(der.clone())).0?;
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
        let (removed, published) = self.write(|v| v.remove_anchor(sha256));
        if removed {
            self.inner
                .anchors
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|a| &vigil_core::sha256(a) != sha256);
            self.changed();
            self.notify(&published, &Change::AnchorRemoved(*sha256));
        }
        removed
    }

    /// Replaces the trust anchors with `anchors` (a reloaded bundle): the
    /// new ones are added first, then those no longer listed are removed,
    /// tearing down their connections. Returns (added, removed).
    pub fn set_anchors(
        &self,
        anchors: Vec<CertificateDer<'static>>,
    ) -> Result<(usize, usize), vigil_core::InputError> {
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
        let (added, published) = self.write(|v| v.deny(rule.clone()));
        if added {
            self.changed();
            self.notify(&published, &Change::Denied(&rule.key));
        }
        Ok(added)
    }

    /// Lifts a deny rule (and forgets it in the store); returns whether
    /// there was one.
    pub fn lift(&self, key: &vigil_core::DenyKey) -> Result<bool, StoreError> {
        self.inner
            .store
            .delete_entry(Table::Denials, &deny_key_bytes(key))?;
        let lifted = self.write(|v| v.lift(key)).0;
        if lifted {
            self.changed();
        }
        Ok(lifted)
    }

    /// The deny list.
    pub fn denials(&self) -> Vec<DenyRule> {
        self.read().denials().to_vec()
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
    ) -> Result<bool, vigil_core::InputError> {
        self.write(|v| v.add_ca_certificate(der)).0
    }

    /// The DER subject Name (outer SEQUENCE included) of each trust anchor,
    /// e.g. for a TLS CertificateRequest's certificate_authorities.
    pub fn anchor_subjects(&self) -> Vec<Vec<u8>> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        self.anchors()
            .iter()
            .filter_map(|a| X509Certificate::from_der(a).ok())
            .map(|(_, c)| c.tbs_certificate.subject.as_raw().to_vec())
            .collect()
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

    /// Forgets remembered revocations of certificates that expired, in
    /// memory and in the store (RFC 5280 §3.3: an expired certificate's
    /// status need not be kept); returns how many were dropped from memory.
    pub fn prune_expired_facts(&self) -> usize {
        let now = self.now();
        let dropped = self.write(|v| v.forget_expired(now)).0;
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

    /// Fetches the revocation sources named by the certificates of a
    /// validated path (down to `depth`) that the engine lacks or holds past
    /// their refresh time. At most 4 CRL and 4 OCSP URLs of each
    /// certificate are used ([`Fetcher::capped_sources`]); the rest are
    /// ignored and reported.
    pub async fn prefetch(&self, path: &AdmittedPath, depth: vigil_core::Depth) {
        let now = unix(self.now());
        let mut crls = Vec::new();
        let mut ocsp = Vec::new();
        let methods = self.inner.config.verifier.methods;
        for (cert, issuer) in path.with_issuers(depth) {
            let Ok(sources) = self.inner.fetcher.capped_sources(cert) else {
                continue;
            };
            let (crl_urls, ocsp_urls) = (sources.crl_urls, sources.ocsp_urls);
            if methods.uses_crl() {
                for url in crl_urls {
                    if self.due(&url, now) && !crls.contains(&url) {
                        crls.push(url);
                    }
                }
            }
            if !methods.uses_ocsp() {
                continue;
            }
            if let Some(serial) = serial_hex(cert) {
                for url in ocsp_urls {
                    let key = format!("{url}#{serial}");
                    if self.due(&key, now) {
                        ocsp.push((key, url, cert.to_vec(), issuer.to_vec()));
                    }
                }
            }
        }
        // Fetch everything at once; single-flight in the fetcher merges
        // concurrent requests for one URL.
        let mut jobs = tokio::task::JoinSet::new();
        for url in crls {
            let engine = self.clone();
            jobs.spawn(async move { engine.refresh_crl(&url).await });
        }
        for (key, url, cert, issuer) in ocsp {
            let engine = self.clone();
            jobs.spawn(async move { engine.refresh_ocsp(&key, &url, &cert, &issuer).await });
        }
        while jobs.join_next().await.is_some() {}
    }

    fn due(&self, key: &str, now: i64) -> bool {
        // A verification names this source: it is in use (source cap LRU).
        self.mark_used([key]);
        let sources = self
            .inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match sources.get(key) {
            None => true,
            // Restored from the store without the certificate/issuer pair:
            // the scheduler cannot refresh it, this verification can.
            Some(t) if t.kind == Some(SourceKind::Ocsp) && t.ocsp.is_none() => true,
            Some(t) => next_refresh(&t.timing, &self.inner.config.refresh) <= now,
        }
    }

    /// Refresh counters by kind and outcome, with durations (fetch, verify
    /// and store), for metrics.
    pub fn refresh_metrics(&self) -> crate::RefreshMetrics {
        self.inner.refresh_stats.snapshot()
    }

    /// Fetches one CRL now (conditionally when data is held), verifies,
    /// loads and stores it.
    pub async fn refresh_crl(&self, url: &str) -> Refreshed {
        let started = std::time::Instant::now();
        let outcome = self.refresh_crl_timed(url).await;
        self.inner
            .refresh_stats
            .record(SourceKind::Crl, &outcome, started.elapsed());
        outcome
    }

    async fn refresh_crl_timed(&self, url: &str) -> Refreshed {
        let validators = self.tracked(url).map(|t| t.validators).unwrap_or_default();
        let started = unix(self.now());
        let outcome = self.inner.fetcher.fetch_crl(url, &validators).await;
        let now = unix(self.now());
        match outcome {
            Ok(FetchOutcome::NotModified { .. }) => {
                self.update(url, SourceKind::Crl, |t| {
                    t.timing.last_success = Some(now);
                    t.timing.last_attempt = Some(started);
                    t.timing.failures = 0;
                    t.last_error = None;
                });
                Refreshed::NotModified
            }
            Ok(FetchOutcome::Body {
                bytes,
                etag,
                last_modified,
                ..
            }) => {
                let (this_update, next_update, number) = match ParsedCrl::from_der(&bytes) {
                    Ok(p) => (
                        Some(p.this_update()),
                        p.next_update(),
                        p.number().map(<[u8]>::to_vec),
                    ),
                    Err(e) => return self.fail(url, SourceKind::Crl, started, format!("CRL: {e}")),
                };
                // Stale, future-dated or forged data is no refresh: it is
                // never stored. The verifier is shown it only so that a
                // verdict can say why when nothing verified is held: its
                // series rules keep a newer CRL, and data that failed a
                // check ranks below any verified data (it never displaces
                // it, RFC 5280 §6.3.3 (f)).
                let freshness = self.inner.config.verifier.crl_freshness(
                    this_update.unwrap_or(now),
                    next_update,
                    now,
                );
                let unusable = match freshness {
                    Freshness::Stale { expired } => Some(format!(
                        "stale CRL served (nextUpdate {})",
                        vigil_core::rfc3339(expired)
                    )),
                    Freshness::NotYetValid { .. } => Some("CRL from the future".to_owned()),
                    Freshness::Current => None,
                };
                if let Some(why) = unusable {
                    let _ = self.ingest_crl(&bytes);
                    return self.fail(url, SourceKind::Crl, started, why);
                }
                let mut record = SourceRecord::new(url, SourceKind::Crl, bytes.clone(), now);
                record.etag = etag.clone();
                record.last_modified = last_modified.clone();
                record.this_update = Some(this_update.unwrap_or(now));
                record.next_update = next_update;
                record.crl_number = number.clone();
                record.last_attempt = Some(started);

                // Parsed, signature-checked and indexed against the published
                // snapshot, off the async workers and without any lock:
                // verifications go on meanwhile. A CRL that every known key
                // of its issuer's name refuses is shown to the verifier (for
                // verdicts to say why) and never persisted, so nothing
                // forged replaces good data in the store.
                let engine = self.clone();
                let body = bytes.clone();
                let prepared =
                    match tokio::task::spawn_blocking(move || engine.read().prepare_crl(&body))
                        .await
                    {
                        Ok(Ok(prepared)) => prepared,
                        Ok(Err(e)) => {
                            return self.fail(url, SourceKind::Crl, started, format!("CRL: {e}"))
                        }
                        Err(e) => {
                            return self.fail(
                                url,
                                SourceKind::Crl,
                                started,
                                format!("CRL load: {e}"),
                            )
                        }
                    };
                if let Some(Err(e)) = prepared.signature_check() {
                    let _ = self.write(|v| v.commit_crl(prepared));
                    return self.fail(url, SourceKind::Crl, started, format!("CRL rejected: {e}"));
                }
                // Published first, then the revocations it made the verifier
                // remember (entries a newer issue dropped) are made durable,
                // and only then does the new CRL replace the old one in the
                // store: a crash at any point loses no revocation.
                let engine = self.clone();
                let loaded =
                    tokio::task::spawn_blocking(move || engine.write(|v| v.commit_crl(prepared)))
                        .await;
                self.persist_new_facts().await;

                let (load, published) = match loaded {
                    Ok(done) => done,
                    Err(e) => {
                        return self.fail(url, SourceKind::Crl, started, format!("CRL load: {e}"))
                    }
                };
                let entries = match load {
                    CrlLoad::Verified { entries } | CrlLoad::Unchanged { entries } => Some(entries),
                    CrlLoad::Pending => None,
                    CrlLoad::Rollback { stored, offered } => {
                        return self.fail(
                            url,
                            SourceKind::Crl,
                            started,
                            format!(
                                "refused an older CRL (number {} after {})",
                                hex(offered.as_deref().unwrap_or_default()),
                                hex(stored.as_deref().unwrap_or_default())
                            ),
                        )
                    }
                    CrlLoad::Rejected(e) => {
                        return self.fail(
                            url,
                            SourceKind::Crl,
                            started,
                            format!("CRL rejected: {e}"),
                        )
                    }
                };
                // A CRL no admitted key verified yet (pending: e.g. an
                // indirect CRL whose issuer no path brought) is held in
                // memory only: nothing unverified reaches the store.
                let put = if entries.is_some() {
                    self.put(record).await
                } else {
                    Ok(PutOutcome::Stored)
                };
                if let Err(e) = &put {
                    self.store_failed("put CRL", e);
                }
                if let Ok(PutOutcome::RefusedOlder { .. }) = put {
                    return self.fail(
                        url,
                        SourceKind::Crl,
                        started,
                        "the store holds a newer CRL".into(),
                    );
                }
                self.update(url, SourceKind::Crl, |t| {
                    t.timing = SourceTiming {
                        this_update,
                        next_update,
                        last_success: Some(now),
                        last_attempt: Some(started),
                        failures: 0,
                    };
                    t.validators = Validators {
                        etag,
                        last_modified,
                    };
                    t.last_error = None;
                    t.entries = entries;
                    t.crl_number = number;
                });
                self.changed();
                let der = bytes.to_vec();
                self.notify_blocking(move |engine| engine.notify(&published, &Change::Crl(&der)))
                    .await;
                Refreshed::Updated
            }
            Err(e) => self.fail(url, SourceKind::Crl, started, format!("{}: {e}", e.code())),
        }
    }

    /// Asks one OCSP responder about `cert` (issued by `issuer`) now and
    /// loads and stores the answer under `key`.
    pub async fn refresh_ocsp(
        &self,
        key: &str,
        url: &str,
        cert: &[u8],
        issuer: &[u8],
    ) -> Refreshed {
        let started = std::time::Instant::now();
        let outcome = self.refresh_ocsp_timed(key, url, cert, issuer).await;
        self.inner
            .refresh_stats
            .record(SourceKind::Ocsp, &outcome, started.elapsed());
        outcome
    }

    async fn refresh_ocsp_timed(
        &self,
        key: &str,
        url: &str,
        cert: &[u8],
        issuer: &[u8],
    ) -> Refreshed {
        let started = unix(self.now());
        self.update(key, SourceKind::Ocsp, |t| {
            t.ocsp = Some((url.to_owned(), cert.to_vec(), issuer.to_vec()));
        });
        let hash = if self.inner.config.ocsp_sha256 {
            CertIdHash::Sha256
        } else {
            CertIdHash::Sha1
        };
        let nonce = self.inner.config.ocsp_nonce.then(rand::random::<[u8; 16]>);
        let request = match build_request(cert, issuer, hash, nonce.as_ref().map(|n| &n[..])) {
            Ok(r) => r,
            Err(e) => {
                return self.fail(key, SourceKind::Ocsp, started, format!("OCSP request: {e}"))
            }
        };
        let body = match self.inner.fetcher.fetch_ocsp(url, &request).await {
            Ok(outcome) => outcome.body.to_vec(),
            Err(e) => {
                return self.fail(key, SourceKind::Ocsp, started, format!("{}: {e}", e.code()))
            }
        };
        let now = unix(self.now());
        let parsed = match ParsedOcsp::from_der(&body) {
            Ok(p) => p,
            Err(e) => return self.fail(key, SourceKind::Ocsp, started, e.to_string()),
        };
        if let Some(sent) = nonce {
            // RFC 8954 §2.1: a response echoing another nonce is a replay;
            // one without a nonce is accepted (most responders omit it).
            if parsed.nonce().is_some_and(|got| got != sent) {
                return self.fail(key, SourceKind::Ocsp, started, "OCSP nonce mismatch".into());
            }
        }
        // Verified here, against the issuer this request was about (RFC 6960
        // §3.2, §4.2.2.2), so that nothing forged, stale or beside the point
        // replaces what is held. What fails is never stored; when nothing
        // is held for this source, its answer about the certificate asked
        // for (and nothing else it says) is shown to the verifier so that
        // the verdict can say why; it ranks below any verified answer.
        let held = self
            .tracked(key)
            .is_some_and(|t| t.timing.last_success.is_some());
        let keep_for_verdict = |engine: &Self| {
            if !held {
                engine.write(|v| v.hold_rejected_ocsp(key, &body, cert, issuer));
            }
        };
        if let Err(e) = parsed.verify_for_issuer(issuer, self.now()) {
            keep_for_verdict(self);
            return self.fail(
                key,
                SourceKind::Ocsp,
                started,
                format!("OCSP response rejected: {e}"),
            );
        }
        let Some(single) = parsed.status_for(cert, issuer) else {
            return self.fail(
                key,
                SourceKind::Ocsp,
                started,
                "the OCSP response does not answer for this certificate".into(),
            );
        };
        let (this_update, next_update) = (Some(single.this_update), single.next_update);
        let freshness =
            self.inner
                .config
                .verifier
                .ocsp_freshness(single.this_update, single.next_update, now);
        let unusable = match freshness {
            Freshness::Stale { expired } => Some(format!(
                "stale OCSP answer served (expired {})",
                vigil_core::rfc3339(expired)
            )),
            Freshness::NotYetValid { .. } => Some("OCSP answer from the future".to_owned()),
            Freshness::Current => None,
        };
        if let Some(why) = unusable {
            keep_for_verdict(self);
            return self.fail(key, SourceKind::Ocsp, started, why);
        }
        let (loaded, published) = self.write(|v| v.set_ocsp_response(key, &body));
        if let Err(e) = &loaded {
            return self.fail(key, SourceKind::Ocsp, started, e.to_string());
        }
        let mut record = SourceRecord::new(key, SourceKind::Ocsp, body, now);
        record.this_update = this_update;
        record.next_update = next_update;
        record.last_attempt = Some(started);
        if let Err(e) = self.put(record).await {
            self.store_failed("put OCSP answer", &e);
        }
        self.update(key, SourceKind::Ocsp, |t| {
            t.timing = SourceTiming {
                this_update,
                next_update,
                last_success: Some(now),
                last_attempt: Some(started),
                failures: 0,
            };
            t.last_error = None;
        });
        self.changed();
        let cert = cert.to_vec();
        self.notify_blocking(move |engine| engine.notify(&published, &Change::Certificate(&cert)))
            .await;
        Refreshed::Updated
    }

    /// Refreshes every known source now; returns (url, outcome) pairs.
    pub async fn refresh_all(&self) -> Vec<(String, Refreshed)> {
        let targets: Vec<(String, Tracked)> = self
            .inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // CRLs first: one CRL answers for every certificate of its issuer,
        // so it should not queue behind one OCSP request per certificate.
        // The OCSP requests start when the CRLs are in, or after a short
        // head start if a CRL endpoint is slow.
        let (crls, ocsp): (Vec<_>, Vec<_>) = targets
            .into_iter()
            .partition(|(_, t)| t.kind != Some(SourceKind::Ocsp));
        let mut out = Vec::new();
        let mut jobs = tokio::task::JoinSet::new();
        let spawn = |jobs: &mut tokio::task::JoinSet<_>, batch: Vec<(String, Tracked)>| {
            for (key, t) in batch {
                let engine = self.clone();
                jobs.spawn(async move {
                    let outcome = engine.refresh_tracked(&key, &t).await;
                    (key, outcome)
                });
            }
        };
        spawn(&mut jobs, crls);
        let head_start = tokio::time::sleep(Duration::from_millis(250));
        tokio::pin!(head_start);
        loop {
            tokio::select! {
                done = jobs.join_next() => match done {
                    Some(Ok(pair)) => out.push(pair),
                    Some(Err(_)) => {}
                    None => break,
                },
                () = &mut head_start => break,
            }
        }
        spawn(&mut jobs, ocsp);
        while let Some(done) = jobs.join_next().await {
            if let Ok(pair) = done {
                out.push(pair);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Refreshes one known source (CRL URL or OCSP key) now.
    pub async fn refresh(&self, key: &str) -> Option<Refreshed> {
        let tracked = self.tracked(key)?;
        Some(self.refresh_tracked(key, &tracked).await)
    }

    async fn refresh_tracked(&self, key: &str, t: &Tracked) -> Refreshed {
        match (&t.kind, &t.ocsp) {
            (Some(SourceKind::Ocsp), Some((url, cert, issuer))) => {
                self.refresh_ocsp(key, url, cert, issuer).await
            }
            // An OCSP source restored from the store: the request needs the
            // certificate and its issuer, which the next verification naming
            // it supplies. Until then it is retried with backoff like any
            // failure (never in a loop).
            (Some(SourceKind::Ocsp), None) => self.fail(
                key,
                SourceKind::Ocsp,
                unix(self.now()),
                "no certificate known for this OCSP source yet (a verification naming it \
                 supplies one)"
                    .into(),
            ),
            _ => self.refresh_crl(key).await,
        }
    }

    /// Runs the refresh scheduler: every source is refreshed at its refresh
    /// time (see [`vigil_core::schedule`]), at most
    /// [`EngineConfig::refresh_concurrency`] at once, so slow endpoints do
    /// not hold up the rest. Every outcome reschedules the source; failures
    /// back off exponentially, with jitter. A source added by a
    /// verification or a handshake wakes the scheduler at once.
    ///
    /// The task runs until [`JoinHandle::abort`](tokio::task::JoinHandle::abort)
    /// is called or the runtime shuts down; dropping the handle detaches
    /// the task, it does **not** stop it. Aborting also cancels the
    /// refreshes in flight, so it stops promptly whatever the endpoints do.
    pub fn spawn_scheduler(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(engine.schedule())
    }

    /// The scheduler's loop. Each turn awaits something (a refresh
    /// finishing, the next due time, or a new source), and every source
    /// launched moves its due time forward when its refresh ends (see
    /// [`Refreshing`]), so no path loops without yielding.
    async fn schedule(self) {
        let policy = self.inner.config.refresh;
        let limit = self.inner.config.refresh_concurrency.max(1);
        // Dropped with the task on abort: the refreshes in flight go too.
        let mut running = tokio::task::JoinSet::new();
        loop {
            // Armed before the sources are read: a source added after the
            // read still wakes this turn's wait.
            let woken = self.inner.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = unix(self.now());
            let mut next: Option<i64> = None;
            let mut launch = Vec::new();
            {
                let mut sources = self
                    .inner
                    .sources
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for (key, t) in sources.iter_mut() {
                    if t.refreshing {
                        continue;
                    }
                    let at = scheduled_at(t, &policy);
                    if at > now {
                        next = Some(next.map_or(at, |n| n.min(at)));
                    } else if running.len() + launch.len() < limit {
                        t.refreshing = true;
                        launch.push((key.clone(), t.clone()));
                    }
                    // Due but no slot free: a finishing refresh wakes us.
                }
            }
            for (key, t) in launch {
                let engine = self.clone();
                running.spawn(async move {
                    let _settle = Refreshing {
                        engine: engine.clone(),
                        key: key.clone(),
                        before: t.timing,
                    };
                    engine.refresh_tracked(&key, &t).await
                });
            }
            let wait_secs = next.map_or(60, |at| (at - now).clamp(0, 60));
            let jitter_ms = rand::random::<u64>() % 250;
            let sleep = tokio::time::sleep(Duration::from_millis(
                u64::try_from(wait_secs).unwrap_or(60) * 1000 + jitter_ms,
            ));
            tokio::select! {
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = sleep => {}
                () = &mut woken => {}
            }
        }
    }

    /// Every source's state.
    pub fn sources(&self) -> Vec<SourceState> {
        let sources = self
            .inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let policy = &self.inner.config.refresh;
        sources
            .iter()
            .map(|(url, t)| SourceState {
                url: url.clone(),
                kind: match t.kind {
                    Some(SourceKind::Ocsp) => "ocsp",
                    _ => "crl",
                },
                this_update: t.timing.this_update,
                next_update: t.timing.next_update,
                last_fetch: t.timing.last_attempt,
                last_error: t.last_error.clone(),
                next_attempt: Some(t.due_at(policy)).filter(|at| *at != i64::MIN),
                entries: t.entries,
                crl_number: t.crl_number.clone(),
            })
            .collect()
    }

    /// Notes that a verification named these sources (CRL URLs or OCSP
    /// keys) now: the source cap evicts the least recently used first.
    pub(crate) fn mark_used<'k>(&self, keys: impl IntoIterator<Item = &'k str>) {
        let now = unix(self.now());
        let mut sources = self
            .inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if let Some(t) = sources.get_mut(key) {
                t.last_used = now;
            }
        }
    }

    /// Revocation URLs left out so far because a certificate named more
    /// than are used ([`Fetcher::capped_sources`]).
    pub fn urls_ignored(&self) -> u64 {
        self.inner.fetcher.urls_ignored()
    }

    /// Sources forgotten so far because of [`EngineConfig::max_sources`].
    pub fn sources_evicted(&self) -> u64 {
        self.inner
            .evicted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes the revocations the verifier learned since the last call
    /// durable (written and flushed) before returning. Store errors are
    /// logged and counted ([`Engine::store_errors`]), never dropped
    /// silently; the facts stay remembered in memory either way.
    pub async fn persist_new_facts(&self) {
        let now = unix(self.now());
        let last = self
            .inner
            .last_prune
            .load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= 3600
            && self
                .inner
                .last_prune
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            let engine = self.clone();
            let _ = tokio::task::spawn_blocking(move || engine.prune_expired_facts()).await;
        }
        let facts = self.read().take_new_facts();
        if facts.is_empty() {
            return;
        }
        let store = Arc::clone(&self.inner.store);
        let written = tokio::task::spawn_blocking(move || {
            for fact in facts {
                let key = RevocationKey {
                    issuer_key: fact.issuer_spki_sha256.to_vec(),
                    serial: fact.serial,
                };
                store.put_revocation(
                    &key,
                    &RevocationFact {
                        revoked_at: fact.revoked_at,
                        reason: fact.reason.map(|r| r as u8),
                        source: match fact.source {
                            Source::Ocsp => "ocsp".into(),
                            _ => "crl".into(),
                        },
                        expires_at: fact.expires_at.unwrap_or(i64::MAX),
                    },
                )?;
            }
            Ok::<(), StoreError>(())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.store_failed("persist revocation facts", &e),
            Err(e) => self.store_failed(
                "persist revocation facts",
                &StoreError::Invalid {
                    detail: e.to_string(),
                },
            ),
        }
    }

    /// Store write errors since start: nonzero means what the engine learned
    /// may not survive a restart (`/readyz` reports it degraded).
    pub fn store_errors(&self) -> u64 {
        self.inner
            .store_errors
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn store_failed(&self, what: &str, e: &StoreError) {
        self.inner
            .store_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(error = %e, "store write failed: {what}");
    }

    async fn put(&self, record: SourceRecord) -> Result<PutOutcome, StoreError> {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || store.put(&record))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Invalid {
                    detail: e.to_string(),
                })
            })
    }

    fn fail(&self, key: &str, kind: SourceKind, started: i64, error: String) -> Refreshed {
        tracing::warn!(url = key, error = %error, "revocation source refresh failed");
        let policy = self.inner.config.refresh;
        let status = self.update(key, kind, |t| {
            t.timing.failures = t.timing.failures.saturating_add(1);
            t.timing.last_attempt = Some(started);
            t.last_error = Some(error.clone());
            t.jitter_secs = retry_jitter(t, &policy);
        });
        let engine = self.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = engine.inner.store.put_status(&key, &status) {
                engine.store_failed("put source status", &e);
            }
        });
        Refreshed::Failed(error)
    }

    /// Applies `f` to the source `key`, adding it if new (which wakes the
    /// scheduler, and evicts the least recently used source beyond
    /// [`EngineConfig::max_sources`]).
    fn update(&self, key: &str, kind: SourceKind, f: impl FnOnce(&mut Tracked)) -> SourceStatus {
        let mut sources = self
            .inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let added = !sources.contains_key(key);
        let evicted = if added {
            let now = unix(self.now());
            sources.insert(
                key.to_owned(),
                Tracked {
                    last_used: now,
                    ..Tracked::default()
                },
            );
            self.inner.wake.notify_one();
            evict_beyond(&mut sources, self.inner.config.max_sources, key)
        } else {
            Vec::new()
        };
        let t = sources.entry(key.to_owned()).or_default();
        t.kind = Some(kind);
        f(t);
        let status = SourceStatus {
            last_error: t.last_error.clone(),
            last_attempt: t.timing.last_attempt,
            next_attempt: Some(t.due_at(&self.inner.config.refresh)).filter(|at| *at != i64::MIN),
        };
        drop(sources);
        if !evicted.is_empty() {
            self.forget(evicted);
        }
        status
    }

    /// Removes evicted sources from the store too (in the background: the
    /// caller holds no lock, and the memory side is already done).
    fn forget(&self, keys: Vec<String>) {
        self.inner
            .evicted
            .fetch_add(keys.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            evicted = keys.len(),
            cap = self.inner.config.max_sources,
            "revocation source cap reached: least recently used sources forgotten"
        );
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || {
            for key in keys {
                if let Err(e) = store.remove(&key) {
                    tracing::error!(url = %key, error = %e, "evicted source not removed from the store");
                }
            }
        });
    }

    fn tracked(&self, key: &str) -> Option<Tracked> {
        self.inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
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

    /// Tells every live observer of `change`, with the snapshot the change
    /// published (a later change is told with its own): so re-checks judge
    /// by the data that caused them.
    fn notify(&self, snapshot: &Snapshot, change: &Change<'_>) {
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
        for observer in observers {
            observer.on_change(snapshot, change, at);
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
    /// returned and the snapshot now published.
    fn write<R>(&self, f: impl FnOnce(&mut Verifier) -> R) -> (R, Arc<Snapshot>) {
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
            self.inner.current.store(next.clone());
        }
        (result, next)
    }
}

/// Ends one scheduled refresh, whatever way it ends (done, failed,
/// cancelled, panicked): the source is free to be scheduled again, and if
/// its timing did not move (a path that recorded nothing), it is counted as
/// a failure so that its next attempt backs off instead of being due again
/// at once.
struct Refreshing {
    engine: Engine,
    key: String,
    before: SourceTiming,
}

impl Drop for Refreshing {
    fn drop(&mut self) {
        let now = unix(self.engine.now());
        let policy = self.engine.inner.config.refresh;
        let mut sources = self
            .engine
            .inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = sources.get_mut(&self.key) {
            t.refreshing = false;
            if t.timing == self.before {
                t.timing.failures = t.timing.failures.saturating_add(1);
                t.timing.last_attempt = Some(now);
                t.jitter_secs = retry_jitter(t, &policy);
            }
        }
    }
}

/// When the scheduler launches `t` next: its due time, but never twice in
/// the same second, and a source added by a refresh still under way (never
/// attempted) only after the first retry delay, so the scheduler does not
/// race the verification that added it.
fn scheduled_at(t: &Tracked, policy: &RefreshPolicy) -> i64 {
    let at = t.due_at(policy);
    match t.timing.last_attempt {
        Some(last) => at.max(last.saturating_add(1)),
        None if t.timing.last_success.is_none() && t.timing.failures == 0 => {
            at.max(t.last_used.saturating_add(policy.retry_base_secs.max(1)))
        }
        None => at,
    }
}

/// A retry's jitter: up to a fifth of its backoff delay.
fn retry_jitter(t: &Tracked, policy: &RefreshPolicy) -> i64 {
    let delay = next_refresh(&t.timing, policy)
        .saturating_sub(t.timing.last_attempt.unwrap_or(0))
        .max(0);
    let spread = u64::try_from(delay / 5).unwrap_or(0);
    if spread == 0 {
        0
    } else {
        i64::try_from(rand::random::<u64>() % (spread + 1)).unwrap_or(0)
    }
}

/// Evicts least recently used sources until at most `cap` remain, never
/// `keep` (the one just added) nor one being refreshed. Returns their keys.
fn evict_beyond(sources: &mut BTreeMap<String, Tracked>, cap: usize, keep: &str) -> Vec<String> {
    let mut evicted = Vec::new();
    while sources.len() > cap.max(1) {
        let victim = sources
            .iter()
            .filter(|(k, t)| k.as_str() != keep && !t.refreshing)
            .min_by_key(|(_, t)| t.last_used)
            .map(|(k, _)| k.clone());
        let Some(victim) = victim else {
            break;
        };
        sources.remove(&victim);
        evicted.push(victim);
    }
    evicted
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

fn serial_hex(cert: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    X509Certificate::from_der(cert)
        .ok()
        .map(|(_, c)| hex(c.raw_serial()))
}
