//! The revocation sources the engine knows: their timing and state, the
//! LRU bound on how many, and how they are shown ([`SourceState`]).

use super::*;

/// The state of one revocation source, as the sidecar and CLI show it.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct SourceState {
    /// The engine's key for the source, which [`Engine::refresh`] takes:
    /// the URL for a CRL; for OCSP, the responder URL, `#` and the serial
    /// in hex (one source per certificate). Not part of the JSON.
    #[serde(skip)]
    pub key: String,
    /// The URL: the CRL distribution point, or the OCSP responder.
    pub url: String,
    /// `crl` or `ocsp`.
    pub kind: &'static str,
    /// For OCSP, the serial of the certificate asked about (hex in JSON);
    /// null for a CRL.
    #[serde(serialize_with = "vigil_core::text::ser::hex_opt")]
    pub serial: Option<Vec<u8>>,
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
    /// cRLNumber (INTEGER content octets, CRLs); decimal text in JSON.
    #[serde(serialize_with = "vigil_core::text::ser::decimal_opt")]
    pub crl_number: Option<Vec<u8>>,
}

#[derive(Clone, Default)]
pub(super) struct Tracked {
    pub(super) kind: Option<SourceKind>,
    pub(super) timing: SourceTiming,
    pub(super) validators: Validators,
    pub(super) last_error: Option<String>,
    pub(super) entries: Option<usize>,
    pub(super) crl_number: Option<Vec<u8>>,
    /// For OCSP: the responder URL, the certificate and its issuer.
    pub(super) ocsp: Option<(String, Vec<u8>, Vec<u8>)>,
    /// Seconds added to the retry time after a failure, drawn anew at each
    /// failure, so that sources failing together do not retry together.
    pub(super) jitter_secs: i64,
    /// When a verification last named the source, or it was added (Unix
    /// seconds): sources are evicted least recently used first.
    pub(super) last_used: i64,
    /// A scheduled refresh of it is running.
    pub(super) refreshing: bool,
}

impl Tracked {
    /// When the scheduler refreshes it next: [`next_refresh`], plus the
    /// jitter after failures.
    pub(super) fn due_at(&self, policy: &RefreshPolicy) -> i64 {
        let at = next_refresh(&self.timing, policy);
        if self.timing.failures > 0 {
            at.saturating_add(self.jitter_secs)
        } else {
            at
        }
    }
}

/// Evicts least recently used sources until at most `cap` remain, never
/// `keep` (the one just added) nor one being refreshed. Returns their keys.
pub(super) fn evict_beyond(
    sources: &mut BTreeMap<String, Tracked>,
    cap: usize,
    keep: &str,
) -> Vec<String> {
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

impl Engine {
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
            .map(|(key, t)| {
                let ocsp = t.kind == Some(SourceKind::Ocsp);
                // An OCSP key is `URL#SERIAL`; the URL itself may hold a '#'.
                let (url, serial) = match key.rsplit_once('#') {
                    Some((url, serial)) if ocsp => (url, vigil_core::text::unhex(serial)),
                    _ => (key.as_str(), None),
                };
                SourceState {
                    key: key.clone(),
                    url: url.to_owned(),
                    kind: if ocsp { "ocsp" } else { "crl" },
                    serial,
                    this_update: t.timing.this_update,
                    next_update: t.timing.next_update,
                    last_fetch: t.timing.last_attempt,
                    last_error: t.last_error.clone(),
                    next_attempt: Some(t.due_at(policy)).filter(|at| *at != i64::MIN),
                    entries: t.entries,
                    crl_number: t.crl_number.clone(),
                }
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

    /// Applies `f` to the source `key`, adding it if new (which wakes the
    /// scheduler, and evicts the least recently used source beyond
    /// [`EngineConfig::max_sources`]).
    pub(super) fn update(
        &self,
        key: &str,
        kind: SourceKind,
        f: impl FnOnce(&mut Tracked),
    ) -> SourceStatus {
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
    pub(super) fn forget(&self, keys: Vec<String>) {
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

    pub(super) fn tracked(&self, key: &str) -> Option<Tracked> {
        self.inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}
