//! [`RevocationData`]: everything revocation is decided from (admitted CRL
//! signers, CRLs, OCSP answers, the "revoked stays revoked" memory and the
//! tunables), one part of a [`crate::Snapshot`]. It answers
//! [`RevocationData::status`] (RFC 5280 §6.3.3, RFC 6960) and takes new
//! data through a few changes; nothing outside reaches into its fields.
//! Cloning it costs a reference count per CRL, OCSP answer and CA
//! certificate: indexed CRLs and the memory are shared.

use std::sync::Arc;

use super::memory::Memory;
use super::status::{CaCert, CrlSlot, OcspSlot};
use super::{CrlError, CrlSigner, ParsedCrl, ParsedOcsp, RevocationFact, SingleResponse};
use super::{OcspError, VerifiedCrl};
use crate::cert::CertInfo;
use crate::options::{Freshness, VerifierConfig};
use crate::trust::TrustStore;
use crate::verdict::Source;
use crate::verify::{
    CrlDer, CrlLoad, Dropped, PreparedCrl, MAX_ADMITTED_CAS, MAX_CANDIDATE_CAS, MAX_PENDING_CRLS,
    MAX_PENDING_CRL_BYTES, MAX_UNKEYED_OCSP,
};

#[derive(Clone)]
pub(crate) struct RevocationData {
    /// Admitted CA certificates: CRL signer candidates (RFC 5280 §6.3.3 (f)).
    pub(super) cas: Vec<CaCert>,
    /// CA certificates given before their issuer was admitted.
    candidates: Vec<CaCert>,
    pub(super) crls: Vec<Arc<CrlSlot>>,
    pub(super) ocsp: Vec<Arc<OcspSlot>>,
    /// Shared by every snapshot (it only learns facts, and forgets those of
    /// expired certificates), so publishing never copies it.
    pub(super) memory: Arc<Memory>,
    pub(super) config: VerifierConfig,
}

impl RevocationData {
    pub(crate) fn new(config: VerifierConfig) -> Self {
        Self {
            cas: Vec::new(),
            candidates: Vec::new(),
            crls: Vec::new(),
            ocsp: Vec::new(),
            memory: Arc::new(Memory::default()),
            config,
        }
    }

    /// The tunables.
    pub(crate) fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The admitted CA certificates.
    pub(crate) fn signers(&self) -> impl Iterator<Item = &CertInfo> + '_ {
        self.cas.iter().map(|c| c.info.as_ref())
    }

    /// The admitted CA certificate with this DER, parsed.
    pub(crate) fn known_ca(&self, der: &[u8]) -> Option<Arc<CertInfo>> {
        self.cas
            .iter()
            .find(|c| &c.info.der[..] == der)
            .map(|c| c.info.clone())
    }

    /// Whether a CA certificate waits for its issuer with this digest.
    pub(crate) fn is_candidate(&self, sha256: &[u8; 32]) -> bool {
        self.candidates.iter().any(|c| &c.info.sha256 == sha256)
    }

    /// Keeps a CA certificate until its issuer is admitted (bounded: the
    /// oldest goes).
    pub(crate) fn add_candidate(&mut self, info: Arc<CertInfo>) {
        if self.candidates.len() >= MAX_CANDIDATE_CAS {
            self.candidates.remove(0);
        }
        self.candidates.push(CaCert { info });
    }

    /// Takes the first waiting candidate now tied to an anchor.
    pub(crate) fn take_tied_candidate(&mut self, trust: &TrustStore) -> Option<Arc<CertInfo>> {
        let i = self
            .candidates
            .iter()
            .position(|c| self.tied_to_anchor(trust, &c.info))?;
        Some(self.candidates.remove(i).info)
    }

    /// Signed by an anchor or an admitted certificate of its issuer's name.
    pub(crate) fn tied_to_anchor(&self, trust: &TrustStore, info: &CertInfo) -> bool {
        // A self-issued certificate (a key rollover, RFC 5280 §6.1) counts
        // when an admitted key of its name signed it.
        trust
            .anchor_infos()
            .chain(self.signers())
            .filter(|i| i.subject_key[..] == info.issuer_key[..])
            .any(|i| crate::cert::signed_by(&info.der, i.spki_der()))
    }

    /// Admits a CA certificate as a CRL signer: pending CRLs of its name
    /// are verified with it now.
    pub(crate) fn admit_signer(&mut self, info: Arc<CertInfo>) {
        let signer = CrlSigner::from_info(&info);
        for slot in &mut self.crls {
            if slot.issuer_key == info.subject_key && slot.pending.is_some() {
                Arc::make_mut(slot).try_signer(&signer);
            }
        }
        if self.cas.len() >= MAX_ADMITTED_CAS {
            // The oldest goes; CRLs it verified stay verified.
            self.cas.remove(0);
        }
        self.cas.push(CaCert { info });
    }

    /// The candidate signers of a CRL whose issuer name has this key: the
    /// anchors and admitted CA certificates of that name.
    pub(crate) fn crl_signers(&self, trust: &TrustStore, issuer_key: &[u8]) -> Vec<CrlSigner> {
        trust
            .anchor_infos()
            .chain(self.signers())
            .filter(|i| *i.subject_key == *issuer_key)
            .map(CrlSigner::from_info)
            .collect()
    }

    /// See [`crate::Snapshot::prepare_crl`].
    pub(crate) fn prepare_crl(
        &self,
        trust: &TrustStore,
        der: CrlDer,
    ) -> Result<PreparedCrl, CrlError> {
        let parsed = ParsedCrl::from_der(&der)?;
        let mut slot = CrlSlot::new(crate::name::name_key(parsed.issuer()));
        for signer in self.crl_signers(trust, &slot.issuer_key) {
            slot.try_parsed(&parsed, &signer);
        }
        let dropped = slot
            .verified
            .first()
            .and_then(|new| self.dropped_by(trust, new));
        drop(parsed);
        Ok(PreparedCrl { der, slot, dropped })
    }

    /// See [`crate::Verifier::commit_crl`]. Returns what the load did and
    /// whether anything changed.
    pub(crate) fn commit_crl(&mut self, trust: &TrustStore, prepared: PreparedCrl) -> CrlLoad {
        let PreparedCrl {
            der,
            mut slot,
            dropped,
        } = prepared;
        let missing: Vec<CrlSigner> = self
            .crl_signers(trust, &slot.issuer_key)
            .into_iter()
            .filter(|signer| !slot.has_tried(&signer.fingerprint))
            .collect();
        if !missing.is_empty() {
            if let Ok(parsed) = ParsedCrl::from_der(&der) {
                for signer in &missing {
                    slot.try_parsed(&parsed, signer);
                }
            }
        }
        let load = if let Some(new) = slot.verified.first().cloned() {
            // RFC 5280 §5.2.3: within one CRL series the number only grows.
            // An older issue is refused (a replay); a newer one replaces the
            // old, whose revocations are remembered.
            if let Some((at, old)) = self.series_predecessor(&new) {
                match new.series_order(&old) {
                    std::cmp::Ordering::Less => {
                        return CrlLoad::Rollback {
                            stored: old.number().map(<[u8]>::to_vec),
                            offered: new.number().map(<[u8]>::to_vec),
                        }
                    }
                    std::cmp::Ordering::Equal => return CrlLoad::Unchanged { entries: old.len() },
                    std::cmp::Ordering::Greater => {
                        // Entries the newer issue dropped are remembered
                        // under the signer's key ("revoked stays revoked"),
                        // as found at preparation when the predecessor is
                        // still the one loaded.
                        let dropped = match dropped {
                            Some(d) if Arc::ptr_eq(&d.predecessor, &old) => Some(d),
                            _ => self.dropped_by(trust, &new),
                        };
                        for (issuer, serial, entry) in dropped.iter().flat_map(|d| &d.entries) {
                            self.memory
                                .remember(issuer, serial, *entry, Source::Crl, None);
                        }
                        self.crls.remove(at);
                    }
                }
            }
            CrlLoad::Verified { entries: new.len() }
        } else if let Some((_, e)) = slot.failures.last() {
            // Only the latest CRL that failed verification is kept (for the
            // verdict to report), so repeated bad data cannot pile up.
            let key = slot.issuer_key.clone();
            let e = e.clone();
            self.crls
                .retain(|s| !(s.issuer_key == key && s.verified.is_empty() && s.pending.is_none()));
            CrlLoad::Rejected(e)
        } else {
            self.make_room_for_pending(der.len());
            slot.pending = Some(der);
            CrlLoad::Pending
        };
        self.crls.push(Arc::new(slot));
        load
    }

    /// Whether committing a CRL that loaded this way changes nothing.
    pub(crate) fn unchanged(load: &CrlLoad) -> bool {
        matches!(load, CrlLoad::Rollback { .. } | CrlLoad::Unchanged { .. })
    }

    /// Adds an already verified CRL.
    pub(crate) fn add_verified_crl(&mut self, crl: Arc<VerifiedCrl>) {
        let mut slot = CrlSlot::new(crate::name::name_key(crl.issuer()));
        slot.verified.push(crl);
        self.crls.push(Arc::new(slot));
    }

    /// The loaded verified CRL of the same series as `new` (RFC 5280
    /// §5.2.3), if any, and the position of its slot.
    fn series_predecessor(&self, new: &VerifiedCrl) -> Option<(usize, Arc<VerifiedCrl>)> {
        self.crls.iter().enumerate().find_map(|(at, s)| {
            s.verified
                .iter()
                .find(|old| old.same_series(new))
                .map(|old| (at, old.clone()))
        })
    }

    /// When `new` is a newer issue of a loaded series: the predecessor and
    /// the entries it lists that `new` dropped, to be remembered under the
    /// signer's key ("revoked stays revoked"). Only the entries of a direct
    /// CRL are the signer's own certificates; an indirect CRL's entries
    /// name other issuers by name alone, so they are not remembered here
    /// (a verification that sees them revoked remembers them under the
    /// issuer's key).
    fn dropped_by(&self, trust: &TrustStore, new: &VerifiedCrl) -> Option<Dropped> {
        let (_, old) = self.series_predecessor(new)?;
        if new.series_order(&old) != std::cmp::Ordering::Greater {
            return None;
        }
        let signer = trust
            .anchor_infos()
            .chain(self.signers())
            .find(|i| &i.sha256 == old.signer_fingerprint())
            .map(|i| i.spki_sha256);
        let mut entries = Vec::new();
        if let Some(issuer) = signer {
            if !old.is_indirect() {
                for (name, serial, entry) in old.entries() {
                    if new.lookup_cert(name, serial).is_none() {
                        entries.push((issuer, serial.to_vec(), entry));
                    }
                }
            }
        }
        Some(Dropped {
            predecessor: old,
            entries,
        })
    }

    /// Pending CRLs (no signer known yet) are bounded in number and bytes:
    /// the oldest go first.
    fn make_room_for_pending(&mut self, incoming: usize) {
        loop {
            let (count, bytes) = self
                .crls
                .iter()
                .filter_map(|s| s.pending.as_ref())
                .fold((0usize, 0usize), |(n, b), p| (n + 1, b + p.len()));
            if count < MAX_PENDING_CRLS && bytes + incoming <= MAX_PENDING_CRL_BYTES {
                return;
            }
            let Some(oldest) = self.crls.iter().position(|s| s.pending.is_some()) else {
                return;
            };
            self.crls.remove(oldest);
        }
    }

    /// The verified issues of `parsed` now loaded (see
    /// [`VerifiedCrl::is_issue_of`]); empty when it was not loaded (refused,
    /// pending a signer, or superseded).
    pub(crate) fn loaded_issues(&self, parsed: &ParsedCrl<'_>) -> Vec<Arc<VerifiedCrl>> {
        self.crls
            .iter()
            .flat_map(|slot| slot.verified.iter())
            .filter(|crl| crl.is_issue_of(parsed))
            .cloned()
            .collect()
    }

    /// See [`crate::Snapshot::crl_reaches_unlisted`].
    pub(crate) fn reaches_unlisted(&self, crl: &VerifiedCrl, now: i64) -> bool {
        if crl.delta_base().is_some()
            || crl.unsupported().is_some()
            || self
                .config
                .crl_freshness(crl.this_update(), crl.next_update(), now)
                != Freshness::Current
        {
            return true;
        }
        let lists = |info: &CertInfo| crl.lookup_cert(&info.issuer_key, info.serial()).is_some();
        if self.signers().any(lists) {
            return true;
        }
        self.config.methods.uses_ocsp()
            && self.ocsp.iter().any(|slot| {
                ParsedOcsp::from_der(&slot.der).is_ok_and(|parsed| {
                    parsed
                        .certs()
                        .iter()
                        .any(|der| CertInfo::parse(der).is_ok_and(|info| lists(&info)))
                })
            })
    }

    /// Whether this OCSP answer (DER) is held without a key already.
    pub(crate) fn holds_unkeyed(&self, der: &[u8]) -> bool {
        self.ocsp
            .iter()
            .any(|slot| slot.key.is_none() && slot.der == der)
    }

    /// Holds an OCSP answer that came without a source key (a file, a
    /// staple); bounded: the oldest unkeyed answers go first (their
    /// servers have stapled newer ones since). The caller checked
    /// [`RevocationData::holds_unkeyed`].
    pub(crate) fn hold_unkeyed(&mut self, der: &[u8], responses: Vec<SingleResponse>) {
        let unkeyed = self.ocsp.iter().filter(|s| s.key.is_none()).count();
        if unkeyed >= MAX_UNKEYED_OCSP {
            if let Some(i) = self.ocsp.iter().position(|s| s.key.is_none()) {
                self.ocsp.remove(i);
            }
        }
        self.ocsp.push(Arc::new(OcspSlot {
            key: None,
            der: der.to_vec(),
            responses,
            rejected: false,
            verified: Default::default(),
        }));
    }

    /// Refuses an answer older than the one held under `key` (by
    /// thisUpdate): holdings only move forward (RFC 6960 §3.2 (4)).
    pub(crate) fn check_forward(
        &self,
        key: &str,
        responses: &[SingleResponse],
    ) -> Result<(), OcspError> {
        let newest =
            |rs: &[SingleResponse]| rs.iter().map(|r| r.this_update).max().unwrap_or(i64::MIN);
        if let Some(held) = self
            .ocsp
            .iter()
            .find(|slot| slot.key.as_deref() == Some(key) && !slot.rejected)
        {
            let (held, offered) = (newest(&held.responses), newest(responses));
            if offered < held {
                return Err(OcspError::Older { held, offered });
            }
        }
        Ok(())
    }

    /// Holds an OCSP answer under `key`, replacing what was held there;
    /// `rejected`: it failed a check and is held only to report why.
    pub(crate) fn hold_keyed(
        &mut self,
        key: &str,
        der: &[u8],
        responses: Vec<SingleResponse>,
        rejected: bool,
    ) {
        self.ocsp.retain(|slot| slot.key.as_deref() != Some(key));
        self.ocsp.push(Arc::new(OcspSlot {
            key: Some(key.to_owned()),
            der: der.to_vec(),
            responses,
            rejected,
            verified: Default::default(),
        }));
    }

    /// Every remembered revocation, for persistence.
    pub(crate) fn facts(&self) -> Vec<RevocationFact> {
        self.memory.export()
    }

    /// Revocations learned since the last call.
    pub(crate) fn take_new_facts(&self) -> Vec<RevocationFact> {
        self.memory.take_journal()
    }

    /// Whether revocations wait to be persisted (one atomic load).
    pub(crate) fn has_new_facts(&self) -> bool {
        self.memory.has_unsaved()
    }

    /// (facts remembered, refused at the cap, journal entries dropped).
    pub(crate) fn fact_stats(&self) -> (usize, u64, u64) {
        self.memory.stats()
    }

    /// Restores a remembered revocation.
    pub(crate) fn remember(&self, fact: RevocationFact) {
        self.memory.import(fact);
    }

    /// Forgets revocations of certificates that expired before `now`.
    pub(crate) fn forget_expired(&self, now: i64) -> usize {
        self.memory.prune(now)
    }
}
