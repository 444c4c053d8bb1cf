//! The verifier: path validation, then revocation over the path under a
//! policy, into one [`Verdict`]; with a verdict cache for repeated chains.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cache::{CacheKey, VerdictCache};
use crate::cert::{hex, CertInfo};
use crate::path::{self, Usage, ValidatedPath};
use crate::revocation::memory::Memory;
use crate::revocation::status::{CaCert, CrlSlot, OcspSlot, Outcome};
use crate::revocation::{
    CrlError, CrlSigner, Depth, OcspError, ParsedCrl, ParsedOcsp, RevocationFact, RevocationPolicy,
    VerifiedCrl,
};
use crate::trust::TrustStore;
use crate::verdict::{
    rfc3339, CertStatus, CertSummary, Decision, ReasonCode, RevocationResult, Source, Status,
    Verdict,
};
use crate::InputError;

/// What a verification asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VerifyOptions {
    /// Required extended key usage of the leaf.
    pub usage: Usage,
    /// Expected peer name (DNS name or IP address), for server certificates.
    pub name: Option<String>,
    /// Revocation policy (default `require`).
    pub policy: RevocationPolicy,
    /// Revocation depth (default the whole chain).
    pub depth: Depth,
}

/// A verifier over a trust store, known CA certificates and CRLs.
///
/// Loading a CRL verifies its signature and indexes it once; verifications
/// then only look serials up. Verdicts of accepted chains are cached by a
/// digest of the chain and options together with the data generation, so a
/// repeated verification with unchanged data is a hash lookup.
pub struct Verifier {
    trust: TrustStore,
    pub(crate) cas: Vec<CaCert>,
    /// CA certificates given before their issuer was admitted.
    candidates: Vec<CaCert>,
    pub(crate) crls: Vec<CrlSlot>,
    pub(crate) ocsp: Vec<OcspSlot>,
    denials: Vec<crate::DenyRule>,
    generation: u64,
    cache: Mutex<VerdictCache>,
    /// Seed of the cache-key hash: random per verifier, fixed for its life.
    seed: hashbrown::DefaultHashBuilder,
    pub(crate) memory: Memory,
    pub(crate) config: VerifierConfig,
}

/// Which revocation methods are used, in which order of preference for a
/// "good" answer. A verified "revoked" from any enabled method always wins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Methods {
    /// OCSP first, then CRLs (the default).
    #[default]
    OcspThenCrl,
    /// CRLs first, then OCSP.
    CrlThenOcsp,
    /// OCSP only.
    OcspOnly,
    /// CRLs only.
    CrlOnly,
}

impl Methods {
    /// Whether OCSP is consulted.
    pub fn uses_ocsp(self) -> bool {
        !matches!(self, Self::CrlOnly)
    }

    /// Whether CRLs are consulted.
    pub fn uses_crl(self) -> bool {
        !matches!(self, Self::OcspOnly)
    }
}

/// Tunables of a [`Verifier`]; the defaults are the strict choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Tolerated clock difference, seconds: data whose thisUpdate lies up to
    /// this far in the future is used, and OCSP answers are used this long
    /// past their nextUpdate. Default 300.
    pub clock_skew_secs: i64,
    /// How long an OCSP answer without nextUpdate is used (RFC 5019 §4
    /// leaves it to the client). Default 24 hours.
    pub ocsp_max_age_secs: i64,
    /// Methods and their order.
    pub methods: Methods,
    /// How long past nextUpdate CRLs and OCSP answers are still used when
    /// nothing newer can be had. Default 0: stale is stale.
    pub stale_grace_secs: i64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            clock_skew_secs: 300,
            ocsp_max_age_secs: 24 * 3600,
            methods: Methods::OcspThenCrl,
            stale_grace_secs: 0,
        }
    }
}

/// What loading a CRL did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrlLoad {
    /// Verified and indexed, with this many entries.
    Verified {
        /// Revoked entries in the CRL.
        entries: usize,
    },
    /// No known certificate carries the CRL issuer's name yet; the CRL will
    /// be verified when one is seen.
    Pending,
    /// Every candidate signer rejected it (the last error is given). The CRL
    /// is kept so verdicts can report it.
    Rejected(CrlError),
    /// Older than the CRL of the same series already loaded (a replay or a
    /// rollback); refused, the newer one stays.
    Rollback {
        /// cRLNumber of the CRL kept.
        stored: Option<Vec<u8>>,
        /// cRLNumber of the CRL refused.
        offered: Option<Vec<u8>>,
    },
    /// The same issue as the CRL already loaded; nothing changed.
    Unchanged {
        /// Revoked entries in the loaded CRL.
        entries: usize,
    },
}

/// How many OCSP responses given without a key (stapled, files) are kept.
pub const MAX_UNKEYED_OCSP: usize = 4096;
/// How many CRLs wait for a signer (pending) at most.
pub const MAX_PENDING_CRLS: usize = 64;
/// How many bytes of pending CRLs are kept at most.
pub const MAX_PENDING_CRL_BYTES: usize = 256 << 20;
/// How many admitted CA certificates (CRL signer candidates) are kept.
pub const MAX_ADMITTED_CAS: usize = 4096;
/// How many CA certificates wait for their issuer to be admitted.
pub const MAX_CANDIDATE_CAS: usize = 64;

/// A chain whose path validated to a trust anchor (leaf first, anchor
/// last), as only [`Verifier::validate`] makes one: what the runtime may
/// fetch for and admit.
#[derive(Clone, Debug)]
pub struct AdmittedPath {
    certs: Vec<Arc<CertInfo>>,
}

impl AdmittedPath {
    /// The certificates of the path, leaf first, the anchor last (DER).
    pub fn certificates(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.certs.iter().map(|c| &c.der[..])
    }

    /// Each certificate below the anchor with its issuer on the path
    /// (certificate DER, issuer DER), leaf first; `depth` limits it to the
    /// leaf.
    pub fn with_issuers(&self, depth: Depth) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let below_anchor = self.certs.len().saturating_sub(1);
        let n = match depth {
            Depth::Leaf => below_anchor.min(1),
            Depth::Chain => below_anchor,
        };
        self.certs
            .windows(2)
            .take(n)
            .map(|w| (&w[0].der[..], &w[1].der[..]))
    }

    /// Whether `cert` (DER) is a certificate of this path.
    pub fn contains(&self, cert: &[u8]) -> bool {
        self.certs.iter().any(|c| &c.der[..] == cert)
    }
}

impl Verifier {
    /// A verifier with these anchors and nothing else.
    pub fn new(trust: TrustStore) -> Self {
        Self::with_config(trust, VerifierConfig::default())
    }

    /// A verifier with these anchors and tunables.
    pub fn with_config(trust: TrustStore, config: VerifierConfig) -> Self {
        Self {
            memory: Memory::default(),
            config,
            trust,
            cas: Vec::new(),
            candidates: Vec::new(),
            crls: Vec::new(),
            ocsp: Vec::new(),
            denials: Vec::new(),
            generation: 0,
            cache: Mutex::new(VerdictCache::default()),
            seed: hashbrown::DefaultHashBuilder::default(),
        }
    }

    /// The trust store.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// Adds a trust anchor at run time; returns false when it was already
    /// trusted. Cached verdicts are dropped.
    pub fn add_anchor(&mut self, der: CertificateDer<'static>) -> Result<bool, InputError> {
        let added = self.trust.add(der)?;
        if added {
            self.bump();
        }
        Ok(added)
    }

    /// Removes the trust anchor whose certificate has this SHA-256; returns
    /// whether it was trusted. Cached verdicts are dropped, so no path to it
    /// is accepted any more.
    pub fn remove_anchor(&mut self, sha256: &[u8; 32]) -> bool {
        let removed = self.trust.remove(sha256);
        if removed {
            self.bump();
        }
        removed
    }

    /// Puts a certificate on the deny list (replacing a rule with the same
    /// key): paths through it are rejected as `denied` from now on.
    /// Returns false when an identical rule was already there.
    pub fn deny(&mut self, rule: crate::DenyRule) -> bool {
        if self.denials.contains(&rule) {
            return false;
        }
        self.denials.retain(|r| r.key != rule.key);
        self.denials.push(rule);
        self.bump();
        true
    }

    /// Lifts the deny rule with this key; returns whether there was one.
    pub fn lift(&mut self, key: &crate::DenyKey) -> bool {
        let before = self.denials.len();
        self.denials.retain(|r| &r.key != key);
        let lifted = self.denials.len() != before;
        if lifted {
            self.bump();
        }
        lifted
    }

    /// The deny list (expired rules included until lifted).
    pub fn denials(&self) -> &[crate::DenyRule] {
        &self.denials
    }

    /// Admits a CA (or CRL-signing) certificate as a possible CRL signer,
    /// when it can be tied to a trust anchor: its issuer is an anchor or an
    /// admitted certificate of its issuer's name whose key verifies its
    /// signature (RFC 5280 §6.1.3 (a)(1)). Returns whether it is admitted.
    /// A certificate that cannot be tied yet waits among a bounded set of
    /// candidates and is admitted when its issuer is; nothing else it
    /// brings is used. Whether a path through it is trusted is still
    /// decided by path validation, per chain.
    pub fn add_ca_certificate(&mut self, der: &CertificateDer<'_>) -> Result<bool, InputError> {
        let info = CertInfo::parse(der)?;
        if self.is_admitted(&info.sha256) {
            return Ok(true);
        }
        if !self.tied_to_anchor(&info) {
            if !self.candidates.iter().any(|c| c.info.sha256 == info.sha256) {
                if self.candidates.len() >= MAX_CANDIDATE_CAS {
                    self.candidates.remove(0);
                }
                self.candidates.push(CaCert {
                    info: Arc::new(info),
                    der: der.as_ref().to_vec(),
                });
            }
            return Ok(false);
        }
        self.admit_ca(Arc::new(info));
        // Candidates that were waiting for this one.
        while let Some(i) = self
            .candidates
            .iter()
            .position(|c| self.tied_to_anchor(&c.info))
        {
            let c = self.candidates.remove(i);
            if !self.is_admitted(&c.info.sha256) {
                self.admit_ca(c.info);
            }
        }
        self.bump();
        Ok(true)
    }

    /// Validates the path of `chain` (leaf first, then any intermediates)
    /// to an anchor at `at`, without looking at revocation: signatures,
    /// validity, usage and name (RFC 5280 §6.1, by rustls-webpki). This is
    /// the one door for peer material: only the certificates of an
    /// [`AdmittedPath`] are ever fetched for, admitted as CRL signers
    /// ([`Verifier::admit`]) or asked about by OCSP; anything else a peer
    /// appended is ignored. Err: the rejection, as a verdict.
    pub fn validate(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        at: SystemTime,
    ) -> Result<AdmittedPath, Box<Verdict>> {
        self.validated(chain, options, unix_secs(at))
            .map(|path| AdmittedPath { certs: path.certs })
            .map_err(Box::new)
    }

    /// Admits the CA certificates of a validated path as CRL signers (they
    /// chain to an anchor); returns how many were new.
    pub fn admit(&mut self, path: &AdmittedPath) -> usize {
        let below_anchor = path.certs.len().saturating_sub(1);
        let mut added = 0;
        for info in path.certs.iter().take(below_anchor).skip(1) {
            if !self.is_admitted(&info.sha256) {
                self.admit_ca(info.clone());
                added += 1;
            }
        }
        if added > 0 {
            self.bump();
        }
        added
    }

    /// Whether every CA certificate of `path` is admitted already.
    pub fn has_admitted(&self, path: &AdmittedPath) -> bool {
        let below_anchor = path.certs.len().saturating_sub(1);
        path.certs
            .iter()
            .take(below_anchor)
            .skip(1)
            .all(|c| self.is_admitted(&c.sha256))
    }

    fn is_admitted(&self, sha256: &[u8; 32]) -> bool {
        self.cas.iter().any(|c| &c.info.sha256 == sha256)
            || self.trust.anchor_infos().any(|a| &a.sha256 == sha256)
    }

    /// Signed by an anchor or an admitted certificate of its issuer's name.
    fn tied_to_anchor(&self, info: &CertInfo) -> bool {
        // A self-issued certificate (a key rollover, RFC 5280 §6.1) counts
        // when an admitted key of its name signed it.
        self.trust
            .anchor_infos()
            .chain(self.cas.iter().map(|c| c.info.as_ref()))
            .filter(|i| i.subject_key[..] == info.issuer_key[..])
            .any(|i| crate::cert::signed_by(&info.der, i.spki_der()))
    }

    fn admit_ca(&mut self, info: Arc<CertInfo>) {
        let signer = CrlSigner::from_info(&info);
        for slot in &mut self.crls {
            if slot.issuer_key == info.subject_key {
                slot.try_signer(&signer);
            }
        }
        if self.cas.len() >= MAX_ADMITTED_CAS {
            // The oldest goes; CRLs it verified stay verified.
            self.cas.remove(0);
        }
        let der = info.der.to_vec();
        self.cas.push(CaCert { info, der });
    }

    /// Loads a CRL (DER): parses it, verifies it with every known
    /// certificate of its issuer's name, and indexes it.
    pub fn add_crl(&mut self, der: &[u8]) -> Result<CrlLoad, CrlError> {
        let parsed = ParsedCrl::from_der(der)?;
        let issuer_key = crate::name::name_key(parsed.issuer());
        let mut slot = CrlSlot {
            lazy: Default::default(),
            issuer_key,
            verified: Vec::new(),
            pending: None,
            failures: Vec::new(),
        };
        let signers: Vec<CrlSigner> = self
            .trust
            .anchor_infos()
            .chain(self.cas.iter().map(|c| c.info.as_ref()))
            .filter(|i| i.subject_key == slot.issuer_key)
            .map(CrlSigner::from_info)
            .collect();
        for signer in &signers {
            slot.try_parsed(&parsed, signer);
        }
        let load = if let Some(new) = slot.verified.first().cloned() {
            // RFC 5280 §5.2.3: within one CRL series the number only grows.
            // An older issue is refused (a replay); a newer one replaces the
            // old, whose revocations are remembered.
            let previous = self
                .crls
                .iter()
                .position(|s| s.verified.iter().any(|old| old.same_series(&new)));
            if let Some(at) = previous {
                let old = self.crls[at]
                    .verified
                    .iter()
                    .find(|old| old.same_series(&new))
                    .cloned();
                if let Some(old) = old {
                    match new.series_order(&old) {
                        std::cmp::Ordering::Less => {
                            return Ok(CrlLoad::Rollback {
                                stored: old.number().map(<[u8]>::to_vec),
                                offered: new.number().map(<[u8]>::to_vec),
                            })
                        }
                        std::cmp::Ordering::Equal => {
                            return Ok(CrlLoad::Unchanged { entries: old.len() })
                        }
                        std::cmp::Ordering::Greater => {
                            // Entries the newer issue dropped are remembered
                            // under the signer's key (RFC 5280 §5.2.3 series;
                            // "revoked stays revoked"). Only the entries of a
                            // direct CRL are the signer's own certificates;
                            // an indirect CRL's entries name other issuers
                            // by name alone, so they are not remembered
                            // here (a verification that sees them revoked
                            // remembers them under the issuer's key).
                            if let Some(issuer) = self.signer_spki(old.signer_fingerprint()) {
                                if !old.is_indirect() {
                                    for (name, serial, entry) in old.entries() {
                                        if new.lookup_cert(name, serial).is_none() {
                                            self.memory.remember(
                                                &issuer,
                                                serial,
                                                entry,
                                                Source::Crl,
                                                None,
                                            );
                                        }
                                    }
                                }
                            }
                            self.crls.remove(at);
                        }
                    }
                }
            }
            CrlLoad::Verified { entries: new.len() }
        } else if let Some((_, e)) = slot.failures.last() {
            // Only the latest CRL that failed verification is kept (for the
            // verdict to report), so repeated bad data cannot pile up.
            let key = slot.issuer_key.clone();
            self.crls
                .retain(|s| !(s.issuer_key == key && s.verified.is_empty() && s.pending.is_none()));
            CrlLoad::Rejected(e.clone())
        } else {
            self.make_room_for_pending(der.len());
            slot.pending = Some(Arc::from(der));
            CrlLoad::Pending
        };
        self.crls.push(slot);
        self.bump();
        Ok(load)
    }

    /// The SPKI digest of the anchor or admitted CA certificate with this
    /// SHA-256.
    fn signer_spki(&self, fingerprint: &[u8; 32]) -> Option<[u8; 32]> {
        self.trust
            .anchor_infos()
            .chain(self.cas.iter().map(|c| c.info.as_ref()))
            .find(|i| &i.sha256 == fingerprint)
            .map(|i| i.spki_sha256)
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

    /// Loads an OCSP response (DER) to use as if stapled: parsed now, its
    /// signature verified against each chain's issuer when used (RFC 6960).
    /// Returns how many certificates it answers for.
    pub fn add_ocsp_response(&mut self, der: &[u8]) -> Result<usize, OcspError> {
        let parsed = ParsedOcsp::from_der(der)?;
        let responses = parsed.responses().to_vec();
        let n = responses.len();
        self.hold_unkeyed(der, responses);
        Ok(n)
    }

    /// Holds an OCSP answer that came without a source key (a file, a
    /// staple). A server staples the same answer on every handshake: one
    /// copy is kept and the verdict cache left alone. Bounded: the oldest
    /// unkeyed answers go first (their servers have stapled newer ones
    /// since).
    fn hold_unkeyed(&mut self, der: &[u8], responses: Vec<crate::revocation::SingleResponse>) {
        if self
            .ocsp
            .iter()
            .any(|slot| slot.key.is_none() && slot.der == der)
        {
            return;
        }
        let unkeyed = self.ocsp.iter().filter(|s| s.key.is_none()).count();
        if unkeyed >= MAX_UNKEYED_OCSP {
            if let Some(i) = self.ocsp.iter().position(|s| s.key.is_none()) {
                self.ocsp.remove(i);
            }
        }
        self.ocsp.push(OcspSlot {
            key: None,
            der: der.to_vec(),
            responses,
            rejected: false,
            verified: Default::default(),
        });
        self.bump();
    }

    /// Holds, under `key`, an OCSP response that failed verification or
    /// freshness, restricted to its answer about `cert` (DER) issued by
    /// `issuer`: so that a verdict about that certificate can say why when
    /// nothing verified is held. Whatever else it says is dropped, so it
    /// can't touch other certificates' verdicts, and it ranks below any
    /// verified answer. Nothing is held when it has no such answer.
    pub fn hold_rejected_ocsp(&mut self, key: &str, der: &[u8], cert: &[u8], issuer: &[u8]) {
        let Ok(parsed) = ParsedOcsp::from_der(der) else {
            return;
        };
        let Some(single) = parsed.status_for(cert, issuer).cloned() else {
            return;
        };
        self.ocsp.retain(|slot| slot.key.as_deref() != Some(key));
        self.ocsp.push(OcspSlot {
            key: Some(key.to_owned()),
            der: der.to_vec(),
            responses: vec![single],
            rejected: true,
            verified: Default::default(),
        });
        self.bump();
    }

    /// Admits an OCSP response stapled by a peer whose path validated
    /// (`path`, from [`Verifier::validate`]): only its answers about
    /// certificates of that path, each verified for its issuer on the path
    /// (RFC 6960 §3.2, §4.2.2.2), are kept; whatever else it says is
    /// dropped. A staple is a peer's claim: one that fails is never held,
    /// so a peer cannot staple an answer about someone else's certificate
    /// into the verdicts of others. Returns how many answers were kept.
    pub fn add_stapled_ocsp(
        &mut self,
        der: &[u8],
        path: &AdmittedPath,
        at: SystemTime,
    ) -> Result<usize, OcspError> {
        let parsed = ParsedOcsp::from_der(der)?;
        let mut keep = Vec::new();
        let mut refused = None;
        for (cert, issuer) in path.with_issuers(Depth::Chain) {
            let Some(single) = parsed.status_for(cert, issuer) else {
                continue;
            };
            match parsed.verify_for_issuer(issuer, at) {
                Ok(_) => keep.push(single.clone()),
                Err(e) => refused = Some(e),
            }
        }
        if keep.is_empty() {
            return Err(refused.unwrap_or(OcspError::NotForPath {
                detail: "it answers for no certificate of the peer's path".into(),
            }));
        }
        let n = keep.len();
        self.hold_unkeyed(der, keep);
        Ok(n)
    }

    /// Every remembered revocation (see [`RevocationFact`]), for persistence.
    pub fn revocation_facts(&self) -> Vec<RevocationFact> {
        self.memory.export()
    }

    /// Restores a remembered revocation (e.g. from a store at start-up).
    pub fn remember(&mut self, fact: RevocationFact) {
        self.memory.import(fact);
        self.bump();
    }

    /// Revocations learned since the last call (by loading a newer CRL of a
    /// series, or by a verification that found a certificate revoked): what
    /// must be persisted now, so that a crash loses none.
    pub fn take_new_facts(&self) -> Vec<RevocationFact> {
        self.memory.take_journal()
    }

    /// Whether [`Verifier::take_new_facts`] has something (one atomic
    /// load).
    pub fn has_new_facts(&self) -> bool {
        self.memory.has_unsaved()
    }

    /// (facts remembered, facts refused at [`crate::limits::MAX_FACTS`], journal entries
    /// dropped before they were persisted).
    pub fn fact_stats(&self) -> (usize, u64, u64) {
        self.memory.stats()
    }

    /// Forgets revocations of certificates that expired before `at`;
    /// returns how many.
    pub fn forget_expired(&mut self, at: SystemTime) -> usize {
        self.memory.prune(unix_secs(at))
    }

    /// The tunables.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Loads or replaces the OCSP response kept under `key` (e.g. the
    /// responder URL and the certificate's serial), so that refreshed
    /// answers replace older ones instead of piling up. An answer older
    /// than the one held (by thisUpdate) is refused: holdings only move
    /// forward (RFC 6960 §3.2 (4)), so a replayed answer can't undo a newer
    /// one.
    pub fn set_ocsp_response(&mut self, key: &str, der: &[u8]) -> Result<usize, OcspError> {
        let parsed = ParsedOcsp::from_der(der)?;
        let responses = parsed.responses().to_vec();
        let n = responses.len();
        let newest = |rs: &[crate::revocation::SingleResponse]| {
            rs.iter().map(|r| r.this_update).max().unwrap_or(i64::MIN)
        };
        if let Some(held) = self
            .ocsp
            .iter()
            .find(|slot| slot.key.as_deref() == Some(key) && !slot.rejected)
        {
            let (held, offered) = (newest(&held.responses), newest(&responses));
            if offered < held {
                return Err(OcspError::Older { held, offered });
            }
        }
        self.ocsp.retain(|slot| slot.key.as_deref() != Some(key));
        self.ocsp.push(OcspSlot {
            key: Some(key.to_owned()),
            der: der.to_vec(),
            responses,
            rejected: false,
            verified: Default::default(),
        });
        self.bump();
        Ok(n)
    }

    /// Checks a CRL's signature against the certificates of its issuer's
    /// name known so far, without loading it: `None` when no such
    /// certificate is known, else whether one of them signed it.
    pub fn precheck_crl(&self, der: &[u8]) -> Option<Result<(), CrlError>> {
        let parsed = match ParsedCrl::from_der(der) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let issuer_key = crate::name::name_key(parsed.issuer());
        let mut last = None;
        for info in self
            .trust
            .anchor_infos()
            .chain(self.cas.iter().map(|c| c.info.as_ref()))
            .filter(|i| i.subject_key == issuer_key)
        {
            match parsed.check_signature(&CrlSigner::from_info(info)) {
                Ok(()) => return Some(Ok(())),
                Err(e) => last = Some(Err(e)),
            }
        }
        last
    }

    /// Adds an already verified CRL.
    pub fn add_verified_crl(&mut self, crl: Arc<VerifiedCrl>) {
        let issuer_key = crate::name::name_key(crl.issuer());
        self.crls.push(CrlSlot {
            lazy: Default::default(),
            issuer_key,
            verified: vec![crl],
            pending: None,
            failures: Vec::new(),
        });
        self.bump();
    }

    /// Generation counter of the data (anchors, CAs, CRLs); changes whenever
    /// something that could change a verdict is loaded.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn bump(&mut self) {
        // Cached verdicts carry their generation and are ignored (then
        // replaced) once it changed; not clearing here keeps a data change
        // from freeing thousands of verdicts under the caller's write lock.
        self.generation += 1;
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

    /// Whether loading `crl` may have changed, at `now`, the status of a
    /// certificate it does not list. A complete, supported, current CRL
    /// cannot: it replaces an issue of the same scope and signer (which said
    /// "good" for such a certificate, and so does it) or adds coverage
    /// beside the others. It can when it is a delta CRL (a base mismatch
    /// fails every certificate), has unsupported content or is not current
    /// (a replaced good issue becomes an unusable one), or lists a CA
    /// certificate or OCSP responder certificate the verifier knows (their
    /// revocation withdraws the CRLs or OCSP answers they signed).
    pub(crate) fn crl_reaches_unlisted(&self, crl: &VerifiedCrl, now: i64) -> bool {
        if crl.delta_base().is_some()
            || crl.unsupported().is_some()
            || crl.this_update() > now + self.config.clock_skew_secs
            || crl
                .next_update()
                .is_some_and(|next| next + self.config.stale_grace_secs < now)
        {
            return true;
        }
        let lists = |info: &CertInfo| crl.lookup_cert(&info.issuer_key, info.serial()).is_some();
        if self.cas.iter().any(|ca| lists(&ca.info)) {
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

    /// Re-checks only the revocation status of an already validated path
    /// (leaf first, anchor last) against the data loaded now, under the
    /// policy and depth of `options` (RFC 5280 §6.3.3 per certificate).
    /// Returns the position of the certificate that fails, the reason and a
    /// sentence; `None` when the path still passes. Path validation itself
    /// is not repeated: the registry uses this when only revocation data
    /// changed, so a new CRL costs lookups, not signature checks.
    pub(crate) fn revocation_failure(
        &self,
        path: &[Arc<CertInfo>],
        options: &VerifyOptions,
        at: SystemTime,
    ) -> Option<(usize, ReasonCode, String)> {
        if options.policy == RevocationPolicy::Off || path.len() < 2 {
            return None;
        }
        let now = unix_secs(at);
        let in_scope = match options.depth {
            Depth::Leaf => 1,
            Depth::Chain => path.len() - 1,
        };
        let mut worst: Option<(usize, ReasonCode, String)> = None;
        for i in 0..in_scope {
            let cert = &path[i];
            let check = self.check_cert(cert, i > 0, path, i + 1, now, 0);
            let (code, detail) = match check.outcome {
                Outcome::Good => continue,
                Outcome::Revoked(e) => (
                    ReasonCode::Revoked,
                    format!(
                        "certificate {} (serial {}) was revoked at {} ({})",
                        cert.subject,
                        hex(cert.serial()),
                        rfc3339(e.revoked_at),
                        e.reason.map_or("unspecified", |r| r.as_str())
                    ),
                ),
                Outcome::Failed(code, _)
                    if code.is_unknown_status() && options.policy == RevocationPolicy::Prefer =>
                {
                    continue
                }
                Outcome::Failed(code, detail) => (code, format!("{}: {detail}", cert.subject)),
            };
            if worst
                .as_ref()
                .is_none_or(|(_, w, _)| code.rank() > w.rank())
            {
                worst = Some((i, code, detail));
            }
        }
        worst
    }

    /// Verifies `chain` (leaf first, then any intermediates in any order) at
    /// time `at`.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        at: SystemTime,
    ) -> Arc<Verdict> {
        let now = unix_secs(at);
        let key = CacheKey::new(&self.seed, chain, options);
        if let Some(hit) = self.cached(&key, options, now) {
            return hit;
        }
        let (verdict, window) = self.evaluate(chain, options, now);
        let verdict = Arc::new(verdict);
        if let Some((from, until)) = window {
            if let Ok(mut cache) = self.cache.lock() {
                cache.insert(
                    &key,
                    options,
                    self.generation,
                    (from, until),
                    verdict.clone(),
                );
            }
        }
        verdict
    }

    /// Verifies without consulting or filling the verdict cache.
    pub fn verify_uncached(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        at: SystemTime,
    ) -> Verdict {
        self.evaluate(chain, options, unix_secs(at)).0
    }

    fn cached(&self, key: &CacheKey, options: &VerifyOptions, now: i64) -> Option<Arc<Verdict>> {
        let mut cache = self.cache.lock().ok()?;
        cache.get(key, options, self.generation, now)
    }

    /// The verdict and, for accepted verdicts, the window in which it holds.
    fn evaluate(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        now: i64,
    ) -> (Verdict, Option<(i64, i64)>) {
        match self.validated(chain, options, now) {
            Ok(path) => self.judge(&path, options, now),
            Err(verdict) => (verdict, None),
        }
    }

    /// Path validation alone (RFC 5280 §6.1): the path, or the rejection.
    fn validated(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        now: i64,
    ) -> Result<ValidatedPath, Verdict> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(rejected(
                Status::Invalid,
                ReasonCode::MalformedCertificate,
                "empty chain".into(),
            ));
        };
        let name = match options.name.as_deref().map(ServerName::try_from) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                return Err(rejected(
                    Status::Invalid,
                    ReasonCode::NameMismatch,
                    format!(
                        "'{}' is not a valid DNS name or IP address",
                        options.name.as_deref().unwrap_or_default()
                    ),
                ))
            }
        };
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
        // Intermediates seen before are not parsed again.
        let known = |der: &[u8]| {
            self.cas
                .iter()
                .find(|c| c.der == der)
                .map(|c| c.info.clone())
        };
        match path::validate(
            &self.trust,
            leaf,
            rest,
            at,
            options.usage,
            name.as_ref(),
            &known,
        ) {
            Ok(p) => Ok(p),
            Err(f) => Err(rejected(Status::Invalid, f.code, f.detail)),
        }
    }

    /// A path validated before (leaf first, anchor last; without the
    /// anchor when `anchor` says which one it was) judged again at `at`
    /// with current data, without building or checking signatures again
    /// (nothing they depend on changes with time): the anchor must still be
    /// trusted, each certificate below it within its validity period (RFC
    /// 5280 §6.1.3 (a)(2)), then the deny list and revocation as at the
    /// first verification. For re-checks of tracked connections whose
    /// verdict lapsed (a notAfter or nextUpdate reached). None: the anchor
    /// is no longer trusted.
    pub(crate) fn rejudge(
        &self,
        below_anchor: &[Arc<CertInfo>],
        anchor: &[u8; 32],
        options: &VerifyOptions,
        at: SystemTime,
    ) -> Option<Verdict> {
        let anchor = self.trust.anchor_by_sha256(anchor)?.clone();
        let now = unix_secs(at);
        if let Some(c) = below_anchor
            .iter()
            .find(|c| now > c.not_after || now < c.not_before)
        {
            let (code, detail) = if now > c.not_after {
                (
                    ReasonCode::Expired,
                    format!(
                        "certificate {} expired at {}",
                        c.subject,
                        rfc3339(c.not_after)
                    ),
                )
            } else {
                (
                    ReasonCode::NotYetValid,
                    format!(
                        "certificate {} is not valid before {}",
                        c.subject,
                        rfc3339(c.not_before)
                    ),
                )
            };
            return Some(rejected(Status::Invalid, code, detail));
        }
        let path = ValidatedPath {
            certs: below_anchor.iter().cloned().chain([anchor]).collect(),
        };
        Some(self.judge(&path, options, now).0)
    }

    /// The verdict on a validated path at `now`: the operator's deny list,
    /// then revocation (RFC 5280 §6.3, RFC 6960), and for accepted verdicts
    /// the window in which it holds.
    fn judge(
        &self,
        path: &ValidatedPath,
        options: &VerifyOptions,
        now: i64,
    ) -> (Verdict, Option<(i64, i64)>) {
        let chain_summary = summarize(path);
        // The operator's deny list, before any revocation data.
        if let Some((cert, rule)) = path.certs.iter().find_map(|c| {
            self.denials
                .iter()
                .find(|r| r.is_active(now) && r.key.matches(c))
                .map(|r| (c, r))
        }) {
            let verdict = Verdict {
                verdict: Decision::Rejected,
                status: Status::Revoked,
                reason: ReasonCode::Denied,
                detail: format!(
                    "certificate {} (serial {}) is denied by the operator: {}",
                    cert.subject,
                    hex(cert.serial()),
                    rule.reason
                ),
                chain: chain_summary,
                revocation: Vec::new(),
                valid_until: None,
            };
            return (verdict, None);
        }
        let below_anchor = path.certs.len() - 1;
        let mut valid_until = path.certs[..below_anchor]
            .iter()
            .map(|c| c.not_after)
            .min()
            .unwrap_or(i64::MAX);
        let mut valid_from = path.certs[..below_anchor]
            .iter()
            .map(|c| c.not_before)
            .max()
            .unwrap_or(i64::MIN);

        if options.policy == RevocationPolicy::Off {
            let verdict = Verdict {
                verdict: Decision::Accepted,
                status: Status::Unknown,
                reason: ReasonCode::RevocationNotChecked,
                detail: "valid path; revocation checking is off".into(),
                chain: chain_summary,
                revocation: Vec::new(),
                valid_until: Some(rfc3339(valid_until)),
            };
            return (verdict, Some((valid_from, valid_until)));
        }

        let in_scope = match options.depth {
            Depth::Leaf => 1,
            Depth::Chain => below_anchor,
        };
        let mut results = Vec::with_capacity(in_scope);
        let mut worst: Option<(ReasonCode, String)> = None;
        for i in 0..in_scope {
            let cert = &path.certs[i];
            let check = self.check_cert(cert, i > 0, &path.certs, i + 1, now, 0);
            let (this_update, next_update) = check.times();
            let result = RevocationResult {
                serial: hex(cert.serial()),
                subject: cert.subject.clone(),
                source: check.source(),
                status: match &check.outcome {
                    Outcome::Good => CertStatus::Good,
                    Outcome::Revoked(_) => CertStatus::Revoked,
                    Outcome::Failed(..) => CertStatus::Unknown,
                },
                this_update: this_update.map(rfc3339),
                next_update: next_update.map(rfc3339),
                reason: match &check.outcome {
                    Outcome::Good => None,
                    Outcome::Revoked(e) => {
                        Some(e.reason.map_or("unspecified", |r| r.as_str()).to_owned())
                    }
                    Outcome::Failed(code, _) => Some(code.as_str().to_owned()),
                },
                revoked_at: match &check.outcome {
                    Outcome::Revoked(e) => Some(rfc3339(e.revoked_at)),
                    _ => None,
                },
                warning: check.warning.clone(),
            };
            results.push(result);
            let (code, detail) = match check.outcome {
                Outcome::Good => {
                    if let Some(next) = next_update {
                        valid_until = valid_until.min(next);
                    }
                    if let Some(this) = this_update {
                        valid_from = valid_from.max(this - self.config.clock_skew_secs);
                    }
                    continue;
                }
                Outcome::Revoked(e) => (
                    ReasonCode::Revoked,
                    format!(
                        "certificate {} (serial {}) was revoked at {} ({})",
                        cert.subject,
                        hex(cert.serial()),
                        rfc3339(e.revoked_at),
                        e.reason.map_or("unspecified", |r| r.as_str())
                    ),
                ),
                Outcome::Failed(code, detail) => (code, format!("{}: {detail}", cert.subject)),
            };
            if worst.as_ref().is_none_or(|(w, _)| code.rank() > w.rank()) {
                worst = Some((code, detail));
            }
        }

        let until = Some(rfc3339(valid_until));
        let verdict = match worst {
            None => Verdict {
                verdict: Decision::Accepted,
                status: Status::Good,
                reason: ReasonCode::Ok,
                detail: "valid path; revocation status good".into(),
                chain: chain_summary,
                revocation: results,
                valid_until: until,
            },
            Some((code, detail)) if code.is_unknown_status() && options.policy == RevocationPolicy::Prefer => Verdict {
                verdict: Decision::Accepted,
                status: Status::Unknown,
                reason: ReasonCode::RevocationUnknownSoftFail,
                detail: format!("valid path; revocation status unknown ({code}), accepted under prefer: {detail}"),
                chain: chain_summary,
                revocation: results,
                valid_until: until,
            },
            Some((code, detail)) => {
                let status = match code {
                    ReasonCode::Revoked => Status::Revoked,
                    c if c.is_unknown_status() => Status::Unknown,
                    _ => Status::Invalid,
                };
                let verdict = Verdict {
                    verdict: Decision::Rejected,
                    status,
                    reason: code,
                    detail,
                    chain: chain_summary,
                    revocation: results,
                    valid_until: until,
                };
                return (verdict, None);
            }
        };
        (verdict, Some((valid_from, valid_until)))
    }
}

fn summarize(path: &ValidatedPath) -> Vec<CertSummary> {
    path.certs
        .iter()
        .map(|c| CertSummary {
            subject: c.subject.clone(),
            issuer: c.issuer.to_string(),
            serial: hex(c.serial()),
            sha256: hex(&c.sha256),
            not_before: rfc3339(c.not_before),
            not_after: rfc3339(c.not_after),
        })
        .collect()
}

fn rejected(status: Status, reason: ReasonCode, detail: String) -> Verdict {
    Verdict {
        verdict: Decision::Rejected,
        status,
        reason,
        detail,
        chain: Vec::new(),
        revocation: Vec::new(),
        valid_until: None,
    }
}

pub(crate) fn unix_secs(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
