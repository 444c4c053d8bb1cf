//! "Revoked stays revoked": once a verified CRL or OCSP answer said a
//! certificate is revoked (for any reason but certificateHold, which may be
//! lifted, RFC 5280 §5.3.1), that fact outlives the data that said so. It
//! is kept until the certificate expires, even when the CRL goes stale, the
//! responder disappears, or a later CRL or response no longer lists it.

use std::sync::Mutex;

use hashbrown::HashMap;

use super::{Reason, RevokedEntry};
use crate::verdict::Source;

/// One remembered revocation, for persistence (see
/// [`crate::Verifier::revocation_facts`] and [`crate::Verifier::remember`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationFact {
    /// Opaque comparison key of the issuer's name (stable for this version
    /// of Vigil: persist the bytes as they are).
    pub issuer_key: Vec<u8>,
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

/// issuer key -> serial -> fact: looked up by borrowed keys, without
/// allocating (a look-up is part of every verification).
type Facts = HashMap<Vec<u8>, HashMap<Vec<u8>, RevocationFact>>;

#[derive(Default)]
pub(crate) struct Memory {
    facts: Mutex<Facts>,
}

impl Memory {
    /// Records a revocation unless it is a hold (or a delta's
    /// removeFromCRL); keeps the first record, learning the expiry later.
    pub(crate) fn remember(
        &self,
        issuer_key: &[u8],
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
        let Ok(mut facts) = self.facts.lock() else {
            return;
        };
        let serials = match facts.get_mut(issuer_key) {
            Some(serials) => serials,
            None => facts.entry(issuer_key.to_vec()).or_default(),
        };
        if let Some(fact) = serials.get_mut(serial) {
            if fact.expires_at.is_none() {
                fact.expires_at = expires_at;
            }
            return;
        }
        let fact = serials
            .entry(serial.to_vec())
            .or_insert_with(|| RevocationFact {
                issuer_key: issuer_key.to_vec(),
                serial: serial.to_vec(),
                revoked_at: entry.revoked_at,
                reason: entry.reason,
                source,
                expires_at,
            });
        if fact.expires_at.is_none() {
            fact.expires_at = expires_at;
        }
    }

    /// The remembered revocation of this certificate, if any and if the
    /// certificate has not expired.
    pub(crate) fn recall(
        &self,
        issuer_key: &[u8],
        serial: &[u8],
        now: i64,
    ) -> Option<(RevokedEntry, Source)> {
        let facts = self.facts.lock().ok()?;
        let fact = facts.get(issuer_key)?.get(serial)?;
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
        self.facts
            .lock()
            .map(|f| f.values().flat_map(|s| s.values().cloned()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn import(&self, fact: RevocationFact) {
        if let Ok(mut facts) = self.facts.lock() {
            facts
                .entry(fact.issuer_key.clone())
                .or_default()
                .insert(fact.serial.clone(), fact);
        }
    }

    /// Drops facts about certificates that expired before `now`.
    pub(crate) fn prune(&self, now: i64) -> usize {
        let Ok(mut facts) = self.facts.lock() else {
            return 0;
        };
        let mut dropped = 0;
        facts.retain(|_, serials| {
            let before = serials.len();
            serials.retain(|_, f| f.expires_at.is_none_or(|e| e >= now));
            dropped += before - serials.len();
            !serials.is_empty()
        });
        dropped
    }
}
