//! "Revoked stays revoked": once a verified CRL or OCSP answer said a
//! certificate is revoked (for any reason but certificateHold, which may be
//! lifted, RFC 5280 §5.3.1), that fact outlives the data that said so. It
//! is kept until the certificate expires, even when the CRL goes stale, the
//! responder disappears, or a later CRL or response no longer lists it.

use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use hashbrown::HashMap;

use super::{Reason, RevokedEntry};
use crate::verdict::Source;

/// One remembered revocation, for persistence (see
/// [`crate::Snapshot::revocation_facts`] and [`crate::Verifier::remember`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationFact {
    /// SHA-256 of the issuer's SubjectPublicKeyInfo. Facts are keyed by the
    /// issuer's key, never by its name: anyone can make a CA with a copied
    /// name, nobody but the key holder can sign for the key.
    pub issuer_spki_sha256: [u8; 32],
    /// Serial number, minimal INTEGER content octets.
    pub serial: Vec<u8>,
    /// When it was revoked, Unix seconds.
    pub revoked_at: i64,
    /// The CRL or OCSP reason, if given.
    pub reason: Option<Reason>,
    /// Which kind of source said so.
    pub source: Source,
    /// The certificate's notAfter, once a verification has seen it; the
    /// fact can be dropped after it.
    pub expires_at: Option<i64>,
}

/// How many facts are remembered at most. Facts enter only from verified
/// data of an admitted signer, so reaching this means a CA revoked that
/// many certificates; new facts beyond it are refused (and counted), never
/// made room for by forgetting a revocation.
pub const MAX_FACTS: usize = 2_000_000;

/// How many newly learned facts wait for the runtime to persist them; past
/// this the oldest wait is dropped from the journal (the fact itself stays
/// in memory) and counted.
const MAX_JOURNAL: usize = 100_000;

/// issuer SPKI digest -> serial -> fact: looked up by borrowed keys,
/// without allocating (a look-up is part of every verification).
type Facts = HashMap<[u8; 32], HashMap<Vec<u8>, RevocationFact>>;

#[derive(Default)]
struct State {
    facts: Facts,
    len: usize,
    /// Facts learned (or completed with an expiry) since the last
    /// [`Memory::take_journal`]: what the runtime must persist.
    journal: std::collections::VecDeque<RevocationFact>,
    refused: u64,
    journal_dropped: u64,
}

/// Shared by every snapshot of a verifier (it only learns, and forgets
/// what expired): read-locked by each look-up, so verifications do not
/// queue behind each other; written only when a fact is new.
#[derive(Default)]
pub(crate) struct Memory {
    state: RwLock<State>,
    /// The journal is not empty: read without the lock on every
    /// verification.
    unsaved: std::sync::atomic::AtomicBool,
}

impl Memory {
    /// Records a revocation unless it is a hold (or a delta's
    /// removeFromCRL); keeps the first record, learning the expiry later.
    pub(crate) fn remember(
        &self,
        issuer: &[u8; 32],
        serial: &[u8],
        entry: RevokedEntry,
        source: Source,
        expires_at: Option<i64>,
    ) {
        if matches!(
            entry.reason,
            Some(Reason::CertificateHold | Reason::RemoveFromCrl)
        ) {
            return;
        }
        // A verification that sees a remembered revocation again changes
        // nothing: a read lock tells.
        let known = self.state.read().map(|s| {
            s.facts
                .get(issuer)
                .and_then(|f| f.get(serial))
                .is_some_and(|f| f.expires_at.is_some() || expires_at.is_none())
        });
        if known.unwrap_or(false) {
            return;
        }
        let mut state = self.write();
        let state = &mut *state;
        if let Some(fact) = state.facts.get_mut(issuer).and_then(|s| s.get_mut(serial)) {
            if fact.expires_at.is_none() && expires_at.is_some() {
                fact.expires_at = expires_at;
                let fact = fact.clone();
                journal(state, fact);
                self.unsaved
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            return;
        }
        if state.len >= MAX_FACTS {
            state.refused += 1;
            return;
        }
        let fact = RevocationFact {
            issuer_spki_sha256: *issuer,
            serial: serial.to_vec(),
            revoked_at: entry.revoked_at,
            reason: entry.reason,
            source,
            expires_at,
        };
        state
            .facts
            .entry(*issuer)
            .or_default()
            .insert(serial.to_vec(), fact.clone());
        state.len += 1;
        journal(state, fact);
        self.unsaved
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether facts wait to be persisted.
    pub(crate) fn has_unsaved(&self) -> bool {
        self.unsaved.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The remembered revocation of this certificate, if any and if the
    /// certificate has not expired.
    pub(crate) fn recall(
        &self,
        issuer: &[u8; 32],
        serial: &[u8],
        now: i64,
    ) -> Option<(RevokedEntry, Source)> {
        let state = self.state.read().ok()?;
        let fact = state.facts.get(issuer)?.get(serial)?;
        if fact.expires_at.is_some_and(|e| now > e) {
            return None;
        }
        Some((
            RevokedEntry {
                revoked_at: fact.revoked_at,
                reason: fact.reason,
            },
            fact.source,
        ))
    }

    pub(crate) fn export(&self) -> Vec<RevocationFact> {
        self.state
            .read()
            .map(|s| s.facts.values().flat_map(|s| s.values().cloned()).collect())
            .unwrap_or_default()
    }

    /// Facts learned since the last call, to persist.
    pub(crate) fn take_journal(&self) -> Vec<RevocationFact> {
        let mut s = self.write();
        self.unsaved
            .store(false, std::sync::atomic::Ordering::Release);
        std::mem::take(&mut s.journal).into()
    }

    /// (facts held, facts refused at the cap, journal entries dropped).
    pub(crate) fn stats(&self) -> (usize, u64, u64) {
        self.state
            .read()
            .map(|s| (s.len, s.refused, s.journal_dropped))
            .unwrap_or_default()
    }

    /// Restores a fact (from the store): not journalled again.
    pub(crate) fn import(&self, fact: RevocationFact) {
        {
            let mut state = self.write();
            if state.len >= MAX_FACTS {
                state.refused += 1;
                return;
            }
            let added = state
                .facts
                .entry(fact.issuer_spki_sha256)
                .or_default()
                .insert(fact.serial.clone(), fact)
                .is_none();
            if added {
                state.len += 1;
            }
        }
    }

    /// Drops facts about certificates that expired before `now`.
    pub(crate) fn prune(&self, now: i64) -> usize {
        let mut state = self.write();
        let mut dropped = 0;
        state.facts.retain(|_, serials| {
            let before = serials.len();
            serials.retain(|_, f| f.expires_at.is_none_or(|e| e >= now));
            dropped += before - serials.len();
            !serials.is_empty()
        });
        state.len -= dropped;
        dropped
    }
}

impl Memory {
    /// A panic while holding the lock leaves whole facts (each change is
    /// one insert), so a poisoned lock is used as it is.
    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn journal(state: &mut State, fact: RevocationFact) {
    if state.journal.len() >= MAX_JOURNAL {
        state.journal.pop_front();
        state.journal_dropped += 1;
    }
    state.journal.push_back(fact);
}
