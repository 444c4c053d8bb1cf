//! The verifier's writer side: what a verification asks for, and the
//! changes (anchors, CA certificates, CRLs, OCSP answers, deny rules) that
//! each build the next [`Snapshot`].

use std::sync::Arc;
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;

use crate::cert::CertInfo;
use crate::input::InputError;
use crate::options::VerifierConfig;
use crate::revocation::status::CrlSlot;
use crate::revocation::{
    CrlError, OcspError, ParsedOcsp, RevocationData, RevocationFact, RevokedEntry, VerifiedCrl,
};
use crate::snapshot::{unix_secs, Snapshot};
use crate::trust::TrustStore;
use crate::Depth;

/// The writer side of a verifier over a trust store, known CA
/// certificates and CRLs: each change builds the next [`Snapshot`] beside
/// the published one (copy on write, sharing every unchanged part), and
/// [`Verifier::snapshot`] hands it out. Reads go to the current snapshot
/// (`Deref`).
///
/// Loading a CRL verifies its signature and indexes it once; verifications
/// then only look serials up. Verdicts of accepted chains are cached by a
/// digest of the chain and options together with the data generation, so a
/// repeated verification with unchanged data is a hash lookup.
pub struct Verifier {
    snap: Arc<Snapshot>,
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
/// last), as only [`Snapshot::validate`] makes one: what the runtime may
/// fetch for and admit.
#[derive(Clone, Debug)]
pub struct AdmittedPath {
    pub(crate) certs: Vec<Arc<CertInfo>>,
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
        self.certs
            .windows(2)
            .take(self.in_scope(depth))
            .map(|w| (&w[0].der[..], &w[1].der[..]))
    }

    /// How many certificates below the anchor `depth` covers.
    fn in_scope(&self, depth: Depth) -> usize {
        let below_anchor = self.certs.len().saturating_sub(1);
        match depth {
            Depth::Leaf => below_anchor.min(1),
            Depth::Chain => below_anchor,
        }
    }

    /// What fetching revocation data for this path needs, per certificate
    /// below the anchor (leaf first; `depth` limits it to the leaf): the
    /// certificate, its issuer on the path, its serial and the sources it
    /// names, all from the parse the path was validated with.
    pub fn revocation_plan(&self, depth: Depth) -> impl Iterator<Item = PlanEntry<'_>> + '_ {
        self.certs
            .windows(2)
            .take(self.in_scope(depth))
            .map(|w| PlanEntry {
                cert: &w[0].der,
                issuer: &w[1].der,
                serial: w[0].serial(),
                sources: w[0].revocation_sources(),
            })
    }

    /// Whether `cert` (DER) is a certificate of this path.
    pub fn contains(&self, cert: &[u8]) -> bool {
        self.certs.iter().any(|c| &c.der[..] == cert)
    }
}

/// One certificate of an [`AdmittedPath`], as fetching its revocation
/// data needs it ([`AdmittedPath::revocation_plan`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlanEntry<'a> {
    /// The certificate (DER).
    pub cert: &'a [u8],
    /// Its issuer on the path (DER).
    pub issuer: &'a [u8],
    /// Its serial number (INTEGER content octets, minimal form).
    pub serial: &'a [u8],
    /// The CRL and OCSP URLs it names.
    pub sources: crate::revocation::Sources,
}

/// The DER of a CRL, shared rather than copied: any owner of the bytes
/// (a `Vec<u8>`, an `Arc<[u8]>`, a `bytes::Bytes` read from a store). A
/// CRL of a million entries is about 50 MB; preparing one from an owned
/// buffer ([`Snapshot::prepare_crl_owned`]) keeps that buffer instead of
/// copying it.
#[derive(Clone)]
pub struct CrlDer(Arc<dyn AsRef<[u8]> + Send + Sync>);

impl CrlDer {
    /// Shares `owner`'s bytes.
    pub fn new(owner: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        Self(Arc::new(owner))
    }
}

impl std::ops::Deref for CrlDer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl std::fmt::Debug for CrlDer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CrlDer({} bytes)", self.len())
    }
}

/// A CRL parsed, signature-checked and indexed against a snapshot
/// ([`Snapshot::prepare_crl`]), ready to be published by
/// [`Verifier::commit_crl`].
pub struct PreparedCrl {
    pub(crate) der: CrlDer,
    pub(crate) slot: CrlSlot,
    pub(crate) dropped: Option<Dropped>,
}

impl PreparedCrl {
    /// Whether a known key verified the signature (`Some(Ok)`), every known
    /// key of the issuer's name refused it (`Some(Err)`, the last error),
    /// or no certificate of the issuer's name was known (`None`).
    pub fn signature_check(&self) -> Option<Result<(), CrlError>> {
        if !self.slot.verified.is_empty() {
            return Some(Ok(()));
        }
        self.slot.failures.last().map(|(_, e)| Err(e.clone()))
    }
}

/// The entries a newer issue of a series dropped from its predecessor.
pub(crate) struct Dropped {
    pub(crate) predecessor: Arc<VerifiedCrl>,
    /// (issuer SPKI digest, serial, entry).
    pub(crate) entries: Vec<([u8; 32], Vec<u8>, RevokedEntry)>,
}

impl std::ops::Deref for Verifier {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        &self.snap
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
            snap: Arc::new(Snapshot::new(trust, config)),
        }
    }

    /// A writer over a published snapshot: its changes build the next one,
    /// sharing the verdict cache and the revocation memory.
    pub fn from_snapshot(snapshot: Arc<Snapshot>) -> Self {
        Self { snap: snapshot }
    }

    /// The current snapshot, to publish or to verify with.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snap.clone()
    }

    /// The snapshot to change: copied (cheaply) when it is shared.
    fn data(&mut self) -> &mut Snapshot {
        Arc::make_mut(&mut self.snap)
    }

    /// Adds a trust anchor at run time; returns false when it was already
    /// trusted. Cached verdicts are dropped.
    pub fn add_anchor(&mut self, der: CertificateDer<'static>) -> Result<bool, InputError> {
        let mut trust = TrustStore::clone(&self.snap.trust);
        let added = trust.add(der)?;
        if added {
            let s = self.data();
            s.trust = Arc::new(trust);
            s.bump();
        }
        Ok(added)
    }

    /// Removes the trust anchor whose certificate has this SHA-256; returns
    /// whether it was trusted. Cached verdicts are dropped, so no path to it
    /// is accepted any more.
    pub fn remove_anchor(&mut self, sha256: &[u8; 32]) -> bool {
        if self.snap.trust.anchor_by_sha256(sha256).is_none() {
            return false;
        }
        let s = self.data();
        let removed = Arc::make_mut(&mut s.trust).remove(sha256);
        if removed {
            s.bump();
        }
        removed
    }

    /// Puts a certificate on the deny list (replacing a rule with the same
    /// key): paths through it are rejected as `denied` from now on.
    /// Returns false when an identical rule was already there.
    pub fn deny(&mut self, rule: crate::DenyRule) -> bool {
        if self.snap.denials.contains(&rule) {
            return false;
        }
        // The same rule set again (or learned from the fleet) with other
        // provenance (`set_by`, `set_at`): kept as given, but nothing any
        // verification depends on changed.
        let same_effect = self.snap.denials.has_same_effect(&rule);
        let s = self.data();
        Arc::make_mut(&mut s.denials).set(rule);
        if same_effect {
            return false;
        }
        s.bump();
        true
    }

    /// Lifts the deny rule with this key; returns whether there was one.
    pub fn lift(&mut self, key: &crate::DenyKey) -> bool {
        if !self.snap.denials.has_key(key) {
            return false;
        }
        let s = self.data();
        Arc::make_mut(&mut s.denials).lift(key);
        s.bump();
        true
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
        if self.snap.is_admitted(&info.sha256) {
            return Ok(true);
        }
        if !self.snap.tied_to_anchor(&info) {
            if !self.snap.revocation.is_candidate(&info.sha256) {
                self.data().revocation.add_candidate(Arc::new(info));
            }
            return Ok(false);
        }
        let s = self.data();
        s.revocation.admit_signer(Arc::new(info));
        // Candidates that were waiting for this one.
        while let Some(c) = s.revocation.take_tied_candidate(&s.trust) {
            if !s.is_admitted(&c.sha256) {
                s.revocation.admit_signer(c);
            }
        }
        s.bump();
        Ok(true)
    }

    /// Admits the CA certificates of a validated path as CRL signers (they
    /// chain to an anchor); returns how many were new.
    pub fn admit(&mut self, path: &AdmittedPath) -> usize {
        if self.snap.has_admitted(path) {
            return 0;
        }
        let s = self.data();
        let below_anchor = path.certs.len().saturating_sub(1);
        let mut added = 0;
        for info in path.certs.iter().take(below_anchor).skip(1) {
            if !s.is_admitted(&info.sha256) {
                s.revocation.admit_signer(info.clone());
                added += 1;
            }
        }
        if added > 0 {
            s.bump();
        }
        added
    }

    /// Loads a CRL (DER): parses it, verifies it with every known
    /// certificate of its issuer's name, and indexes it
    /// ([`Snapshot::prepare_crl`] then [`Verifier::commit_crl`]).
    pub fn add_crl(&mut self, der: &[u8]) -> Result<CrlLoad, CrlError> {
        let prepared = self.snap.prepare_crl(der)?;
        Ok(self.commit_crl(prepared))
    }

    /// [`Verifier::add_crl`] for a CRL in a buffer of its own, which is
    /// kept (when the CRL waits for its signer) rather than copied.
    pub fn add_crl_owned(&mut self, der: CrlDer) -> Result<CrlLoad, CrlError> {
        let prepared = self.snap.prepare_crl_owned(der)?;
        Ok(self.commit_crl(prepared))
    }

    /// Publishes a CRL prepared against this or an earlier snapshot. What
    /// changed since is checked again here, against the current state: keys
    /// of the issuer's name admitted since verify it too, and the series
    /// order (RFC 5280 §5.2.3) is decided against the CRL loaded now, so
    /// two ingests prepared side by side cannot undo each other. Costs a
    /// look at each loaded CRL, not at its entries, unless the series
    /// predecessor changed since the preparation.
    pub fn commit_crl(&mut self, prepared: PreparedCrl) -> CrlLoad {
        let s = self.data();
        let load = s.revocation.commit_crl(&s.trust, prepared);
        if !RevocationData::unchanged(&load) {
            s.bump();
        }
        load
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
        if self.snap.revocation.holds_unkeyed(der) {
            return;
        }
        let s = self.data();
        s.revocation.hold_unkeyed(der, responses);
        s.bump();
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
        let s = self.data();
        s.revocation.hold_keyed(key, der, vec![single], true);
        s.bump();
    }

    /// Admits an OCSP response stapled by a peer whose path validated
    /// (`path`, from [`Snapshot::validate`]): only its answers about
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

    /// Restores a remembered revocation (e.g. from a store at start-up).
    pub fn remember(&mut self, fact: RevocationFact) {
        self.snap.revocation.remember(fact);
        self.data().bump();
    }

    /// Forgets revocations of certificates that expired before `at`;
    /// returns how many. (The memory is shared by every snapshot: this
    /// changes no snapshot, and a fact about an expired certificate
    /// changes no verdict.)
    pub fn forget_expired(&mut self, at: SystemTime) -> usize {
        self.snap.revocation.forget_expired(unix_secs(at))
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
        self.snap.revocation.check_forward(key, &responses)?;
        let s = self.data();
        s.revocation.hold_keyed(key, der, responses, false);
        s.bump();
        Ok(n)
    }

    /// Adds an already verified CRL.
    pub fn add_verified_crl(&mut self, crl: Arc<VerifiedCrl>) {
        let s = self.data();
        s.revocation.add_verified_crl(crl);
        s.bump();
    }
}

/// The writer's changes to a snapshot being built (never a published one:
/// [`Verifier`] copies a shared snapshot before changing it).
impl Snapshot {
    pub(crate) fn bump(&mut self) {
        // Cached verdicts carry their generation and are ignored (then
        // replaced) once it changed. Generations come from one counter per
        // verifier lineage, so two snapshots built apart never share one.
        self.generation = self.shared.next_generation();
    }
}
