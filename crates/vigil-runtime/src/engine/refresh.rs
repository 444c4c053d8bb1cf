//! The refresh pipeline: fetching a source (through the fetch guard),
//! verifying and committing what came back, persisting it, and telling
//! the observers; prefetching for a validated path.

use super::*;
use crate::exchange::SharedBody;

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

impl Engine {
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
        for entry in path.revocation_plan(depth) {
            let sources = self.inner.fetcher.cap(entry.sources);
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
            let serial = hex(entry.serial);
            for url in ocsp_urls {
                let key = format!("{url}#{serial}");
                if self.due(&key, now) {
                    ocsp.push((key, url, entry.cert.to_vec(), entry.issuer.to_vec()));
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

    pub(super) fn due(&self, key: &str, now: i64) -> bool {
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

    pub(super) async fn refresh_crl_timed(&self, url: &str) -> Refreshed {
        let validators = self.tracked(url).map(|t| t.validators).unwrap_or_default();
        let started = unix(self.now());
        if let Some(done) = self
            .ask_fleet(SourceKind::Crl, url, started, |body| {
                self.load_crl(url, body, started)
            })
            .await
        {
            return done;
        }
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
                self.fleet_fetched(SourceKind::Crl, url, None);
                Refreshed::NotModified
            }
            Ok(FetchOutcome::Body {
                bytes,
                etag,
                last_modified,
                ..
            }) => {
                let shared = SharedBody {
                    bytes,
                    etag,
                    last_modified,
                };
                match self.load_crl(url, shared.clone(), started).await {
                    Ok(_) => {
                        self.fleet_fetched(SourceKind::Crl, url, Some(shared));
                        Refreshed::Updated
                    }
                    Err(why) => {
                        self.fleet_fetch_failed(SourceKind::Crl, url);
                        self.fail(url, SourceKind::Crl, started, why)
                    }
                }
            }
            Err(e) => {
                self.fleet_fetch_failed(SourceKind::Crl, url);
                self.fail(url, SourceKind::Crl, started, format!("{}: {e}", e.code()))
            }
        }
    }

    /// Checks, commits and stores a CRL body (fetched from `url`, or taken
    /// from the fleet for it); `Ok(true)` when it is newer than what was
    /// held, `Err` with what was wrong otherwise (the previous data stays).
    pub(super) async fn load_crl(
        &self,
        url: &str,
        body: SharedBody,
        started: i64,
    ) -> Result<bool, String> {
        let SharedBody {
            bytes,
            etag,
            last_modified,
        } = body;
        let now = unix(self.now());
        let (this_update, next_update, number) = match ParsedCrl::from_der(&bytes) {
            Ok(p) => (
                Some(p.this_update()),
                p.next_update(),
                p.number().map(<[u8]>::to_vec),
            ),
            Err(e) => return Err(format!("CRL: {e}")),
        };
        // Stale, future-dated or forged data is no refresh: it is
        // never stored. The verifier is shown it only so that a
        // verdict can say why when nothing verified is held: its
        // series rules keep a newer CRL, and data that failed a
        // check ranks below any verified data (it never displaces
        // it, RFC 5280 §6.3.3 (f)).
        let freshness =
            self.inner
                .config
                .verifier
                .crl_freshness(this_update.unwrap_or(now), next_update, now);
        if let Some(why) = unusable(freshness, "CRL", "nextUpdate") {
            let _ = self.ingest_crl(&bytes);
            return Err(why);
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
        let prepared = match tokio::task::spawn_blocking(move || {
            engine.read().prepare_crl_owned(CrlDer::new(body))
        })
        .await
        {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(e)) => return Err(format!("CRL: {e}")),
            Err(e) => return Err(format!("CRL load: {e}")),
        };
        if let Some(Err(e)) = prepared.signature_check() {
            let _ = self.write(|v| v.commit_crl(prepared));
            return Err(format!("CRL rejected: {e}"));
        }
        // Published first, then the revocations it made the verifier
        // remember (entries a newer issue dropped) are made durable,
        // and only then does the new CRL replace the old one in the
        // store: a crash at any point loses no revocation.
        let engine = self.clone();
        let loaded =
            tokio::task::spawn_blocking(move || engine.write(|v| v.commit_crl(prepared))).await;
        self.persist_new_facts().await;

        let load = match loaded {
            Ok(done) => done,
            Err(e) => return Err(format!("CRL load: {e}")),
        };
        let fresh = matches!(load, CrlLoad::Verified { .. });
        let entries = match load {
            CrlLoad::Verified { entries } | CrlLoad::Unchanged { entries } => Some(entries),
            CrlLoad::Pending => None,
            CrlLoad::Rollback { stored, offered } => {
                return Err(format!(
                    "refused an older CRL (number {} after {})",
                    hex(offered.as_deref().unwrap_or_default()),
                    hex(stored.as_deref().unwrap_or_default())
                ))
            }
            CrlLoad::Rejected(e) => return Err(format!("CRL rejected: {e}")),
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
            return Err("the store holds a newer CRL".into());
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
        self.notify_blocking(move |engine| engine.notify(&Change::Crl(&der)))
            .await;
        Ok(fresh)
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

    pub(super) async fn refresh_ocsp_timed(
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
        if let Some(done) = self
            .ask_fleet(SourceKind::Ocsp, key, started, |body| {
                self.load_ocsp(key, cert, issuer, body.bytes.to_vec(), None, started, true)
            })
            .await
        {
            return done;
        }
        let body = match self.inner.fetcher.fetch_ocsp(url, &request).await {
            Ok(outcome) => outcome.body,
            Err(e) => {
                self.fleet_fetch_failed(SourceKind::Ocsp, key);
                return self.fail(key, SourceKind::Ocsp, started, format!("{}: {e}", e.code()));
            }
        };
        match self
            .load_ocsp(key, cert, issuer, body.to_vec(), nonce, started, false)
            .await
        {
            Ok(_) => {
                let shared = SharedBody {
                    bytes: body,
                    etag: None,
                    last_modified: None,
                };
                self.fleet_fetched(SourceKind::Ocsp, key, Some(shared));
                Refreshed::Updated
            }
            Err(why) => {
                self.fleet_fetch_failed(SourceKind::Ocsp, key);
                self.fail(key, SourceKind::Ocsp, started, why)
            }
        }
    }

    /// Checks, loads and stores an OCSP answer about `cert` (from its
    /// responder, or from the fleet: `from_fleet`); `Ok(true)` when it is
    /// newer than what was held, `Err` with what was wrong otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn load_ocsp(
        &self,
        key: &str,
        cert: &[u8],
        issuer: &[u8],
        body: Vec<u8>,
        nonce: Option<[u8; 16]>,
        started: i64,
        from_fleet: bool,
    ) -> Result<bool, String> {
        let now = unix(self.now());
        let parsed = match ParsedOcsp::from_der(&body) {
            Ok(p) => p,
            Err(e) => return Err(e.to_string()),
        };
        if let Some(sent) = nonce {
            // RFC 8954 §2.1: a response echoing another nonce is a replay;
            // one without a nonce is accepted (most responders omit it).
            if parsed.nonce().is_some_and(|got| got != sent) {
                return Err("OCSP nonce mismatch".into());
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
        let held_this_update = self.tracked(key).and_then(|t| t.timing.this_update);
        let keep_for_verdict = |engine: &Self| {
            // Only what the responder itself said: an answer from the
            // fleet that fails is refused without a trace in verdicts.
            if !held && !from_fleet {
                engine.write(|v| v.hold_rejected_ocsp(key, &body, cert, issuer));
            }
        };
        if let Err(e) = parsed.verify_for_issuer(issuer, self.now()) {
            keep_for_verdict(self);
            return Err(format!("OCSP response rejected: {e}"));
        }
        let Some(single) = parsed.status_for(cert, issuer) else {
            return Err("the OCSP response does not answer for this certificate".into());
        };
        let (this_update, next_update) = (Some(single.this_update), single.next_update);
        let freshness =
            self.inner
                .config
                .verifier
                .ocsp_freshness(single.this_update, single.next_update, now);
        if let Some(why) = unusable(freshness, "OCSP answer", "expired") {
            keep_for_verdict(self);
            return Err(why);
        }
        let loaded = self.write(|v| v.set_ocsp_response(key, &body));
        if let Err(e) = &loaded {
            return Err(e.to_string());
        }
        let fresh = held_this_update.is_none_or(|held| single.this_update > held);
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
        self.notify_blocking(move |engine| engine.notify(&Change::Certificate(&cert)))
            .await;
        Ok(fresh)
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
        let asked = shared::asked_now();
        let spawn = |jobs: &mut tokio::task::JoinSet<_>, batch: Vec<(String, Tracked)>| {
            for (key, t) in batch {
                let engine = self.clone();
                jobs.spawn(shared::keep_asked(asked, async move {
                    let outcome = engine.refresh_tracked(&key, &t).await;
                    (key, outcome)
                }));
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

    pub(super) async fn refresh_tracked(&self, key: &str, t: &Tracked) -> Refreshed {
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
                    &StoredFact {
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

    pub(super) fn store_failed(&self, what: &str, e: &StoreError) {
        self.inner
            .store_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(error = %e, "store write failed: {what}");
    }

    pub(super) async fn put(&self, record: SourceRecord) -> Result<PutOutcome, StoreError> {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || store.put(&record))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Invalid {
                    detail: e.to_string(),
                })
            })
    }

    pub(super) fn fail(
        &self,
        key: &str,
        kind: SourceKind,
        started: i64,
        error: String,
    ) -> Refreshed {
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
}

/// Why data that is out of date (or from the future) cannot be used;
/// `what` names it, `when` the time a stale one lapsed at.
fn unusable(freshness: Freshness, what: &str, when: &str) -> Option<String> {
    match freshness {
        Freshness::Stale { expired } => Some(format!(
            "stale {what} served ({when} {})",
            vigil_core::text::rfc3339(expired)
        )),
        Freshness::NotYetValid { .. } => Some(format!("{what} from the future")),
        Freshness::Current => None,
    }
}
