//! Entry points that re-check tracked connections when data changes
//! (a CRL, an OCSP answer, a revocation, a deny rule, an anchor gone,
//! a deadline passed), and the teardown they end in.

use super::*;

/// A connection whose revocation status is re-checked: id, validated path
/// (without anchor) and anchor digest, copied out of the lock.
pub(super) type PathCandidate = (u64, Vec<Arc<CertInfo>>, [u8; 32]);

/// A connection picked for re-checking, copied out of the lock.
pub(super) struct Candidate {
    pub(super) id: u64,
    pub(super) path: Vec<Arc<CertInfo>>,
    pub(super) anchor: [u8; 32],
    pub(super) extras: Box<[CertificateDer<'static>]>,
}

/// How connections are checked again.
#[derive(Clone, Copy)]
pub(super) enum Recheck {
    /// Verified again in full, path building included (the trust store or
    /// the data changed in ways a path may depend on).
    Full,
    /// Their verdict lapsed with time: the validated path is judged again.
    Lapsed,
}

impl Candidate {
    /// The chain to verify again: the validated path (leaf first), then
    /// the other certificates presented.
    pub(super) fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.path
            .iter()
            .map(|c| CertificateDer::from(c.der.to_vec()))
            .chain(self.extras.iter().cloned())
            .collect()
    }
}

/// Which certificate of the path a rejected verdict is about: the one its
/// revocation results single out, else an expired one, else the leaf.
pub(super) fn concerned(verdict: &Verdict, path: &[Arc<CertInfo>], now: i64) -> usize {
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
pub(super) fn degraded_notice(
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

pub(super) fn system_time(secs: i64) -> SystemTime {
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

impl Registry {
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

    pub(super) fn on_revoked_key(
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
    pub(super) fn revoke_locked(
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
    pub(super) fn recheck_revocation(
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

    pub(super) fn reverify_candidates(
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
    pub(super) fn tear_down(
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
