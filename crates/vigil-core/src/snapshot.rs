//! The published state of a verifier: trust anchors, admitted CA
//! certificates, revocation data and the deny list at one generation,
//! immutable once built. Verifications read a [`Snapshot`] and take no
//! lock on the data (the verdict cache is sharded); writers build the next
//! snapshot beside it ([`crate::Verifier`]), sharing every unchanged part
//! by `Arc`, and publish it by swapping a pointer (`docs/trust-boundary.md`).

use std::sync::Arc;
use std::time::SystemTime;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cache::{CacheKey, Shared};
use crate::cert::CertInfo;
use crate::options::{VerifierConfig, VerifyOptions};
use crate::path::{self, ValidatedPath};
use crate::revocation::status::Outcome;
use crate::revocation::RevokedEntry;
use crate::revocation::{CrlError, ParsedCrl, RevocationData, RevocationFact, VerifiedCrl};
use crate::text::hex;
use crate::text::rfc3339;
use crate::trust::TrustStore;
use crate::verdict::{
    CertStatus, CertSummary, Decision, Proof, ReasonCode, RevocationResult, Status, Verdict,
};
use crate::verify::{AdmittedPath, CrlDer, PreparedCrl};
use crate::{Depth, RevocationPolicy};

/// Everything a verification reads, at one generation; immutable. Cloning
/// one costs a reference count per CRL, OCSP answer, admitted CA and deny
/// rule, never a copy of their contents: the revocation memory, the
/// verdict cache and every indexed CRL are shared.
#[derive(Clone)]
pub struct Snapshot {
    pub(crate) trust: Arc<TrustStore>,
    /// Admitted CRL signers, CRLs, OCSP answers, the revocation memory.
    pub(crate) revocation: RevocationData,
    pub(crate) denials: Arc<crate::deny::DenyList>,
    pub(crate) generation: u64,
    /// The verdict cache and the generation counter, shared by every
    /// snapshot descended from one verifier.
    pub(crate) shared: Arc<Shared>,
}

impl Snapshot {
    pub(crate) fn new(trust: TrustStore, config: VerifierConfig) -> Self {
        Self {
            trust: Arc::new(trust),
            revocation: RevocationData::new(config),
            denials: Arc::default(),
            generation: 0,
            shared: Arc::new(Shared::default()),
        }
    }

    /// The trust store.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// The deny list (expired rules included until lifted).
    pub fn denials(&self) -> &[crate::DenyRule] {
        self.denials.rules()
    }

    /// Validates the path of `chain` (leaf first, then any intermediates)
    /// to an anchor at `at`, without looking at revocation: signatures,
    /// validity, usage and name (RFC 5280 §6.1, by rustls-webpki). This is
    /// the one door for peer material: only the certificates of an
    /// [`AdmittedPath`] are ever fetched for, admitted as CRL signers
    /// ([`crate::Verifier::admit`]) or asked about by OCSP; anything else a peer
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

    /// Whether every CA certificate of `path` is admitted already.
    pub fn has_admitted(&self, path: &AdmittedPath) -> bool {
        let below_anchor = path.certs.len().saturating_sub(1);
        path.certs
            .iter()
            .take(below_anchor)
            .skip(1)
            .all(|c| self.is_admitted(&c.sha256))
    }

    pub(crate) fn is_admitted(&self, sha256: &[u8; 32]) -> bool {
        self.revocation.signers().any(|c| &c.sha256 == sha256)
            || self.trust.anchor_infos().any(|a| &a.sha256 == sha256)
    }

    /// Signed by an anchor or an admitted certificate of its issuer's name.
    pub(crate) fn tied_to_anchor(&self, info: &CertInfo) -> bool {
        self.revocation.tied_to_anchor(&self.trust, info)
    }

    /// Every remembered revocation (see [`RevocationFact`]), for persistence.
    pub fn revocation_facts(&self) -> Vec<RevocationFact> {
        self.revocation.facts()
    }

    /// Revocations learned since the last call (by loading a newer CRL of a
    /// series, or by a verification that found a certificate revoked): what
    /// must be persisted now, so that a crash loses none.
    pub fn take_new_facts(&self) -> Vec<RevocationFact> {
        self.revocation.take_new_facts()
    }

    /// Whether [`Snapshot::take_new_facts`] has something (one atomic
    /// load).
    pub fn has_new_facts(&self) -> bool {
        self.revocation.has_new_facts()
    }

    /// (facts remembered, facts refused at [`crate::limits::MAX_FACTS`], journal entries
    /// dropped before they were persisted).
    pub fn fact_stats(&self) -> (usize, u64, u64) {
        self.revocation.fact_stats()
    }

    /// The tunables.
    pub fn config(&self) -> &VerifierConfig {
        self.revocation.config()
    }

    /// Everything loading a CRL (DER) costs, done against this snapshot
    /// without changing it: parsing, the signature check with every known
    /// certificate of its issuer's name (RFC 5280 §6.3.3 (f)), the index of
    /// its serials, and the entries a newer issue of a loaded series
    /// dropped. [`crate::Verifier::commit_crl`] then publishes it cheaply,
    /// checking again against the state current by then.
    pub fn prepare_crl(&self, der: &[u8]) -> Result<PreparedCrl, CrlError> {
        self.prepare_crl_owned(CrlDer::new(der.to_vec()))
    }

    /// [`Snapshot::prepare_crl`] for a CRL in a buffer of its own, which
    /// the prepared CRL shares instead of copying.
    pub fn prepare_crl_owned(&self, der: CrlDer) -> Result<PreparedCrl, CrlError> {
        self.revocation.prepare_crl(&self.trust, der)
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
        for signer in self.revocation.crl_signers(&self.trust, &issuer_key) {
            match parsed.check_signature(&signer) {
                Ok(()) => return Some(Ok(())),
                Err(e) => last = Some(Err(e)),
            }
        }
        last
    }

    /// Generation counter of the data (anchors, CAs, CRLs); changes whenever
    /// something that could change a verdict is loaded.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The verified issues of `parsed` now loaded (see
    /// [`VerifiedCrl::is_issue_of`]); empty when it was not loaded (refused,
    /// pending a signer, or superseded).
    pub(crate) fn loaded_issues(&self, parsed: &ParsedCrl<'_>) -> Vec<Arc<VerifiedCrl>> {
        self.revocation.loaded_issues(parsed)
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
        self.revocation.reaches_unlisted(crl, now)
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
            let check = self.revocation.status(cert, i > 0, path, i + 1, now, 0);
            let (code, detail) = match check.outcome {
                Outcome::Good => continue,
                Outcome::Revoked(e) => (ReasonCode::Revoked, revoked_detail(cert, &e)),
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
        let key = CacheKey::new(&self.shared.seed, chain, options);
        if let Some(hit) = self.shared.cache.get(&key, options, self.generation, now) {
            return hit;
        }
        let (verdict, window) = self.evaluate(chain, options, now);
        let verdict = Arc::new(verdict);
        if let Some(window) = window {
            self.shared
                .cache
                .insert(&key, options, self.generation, window, verdict.clone());
        }
        verdict
    }

    /// The verdict cached for exactly these octets and options, if one is
    /// held and still within its window at `at`; nothing is verified. Only
    /// accepted verdicts are cached, and a hit is confirmed octet for octet
    /// against the chain it was cached for.
    pub fn cached(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        at: SystemTime,
    ) -> Option<Arc<Verdict>> {
        let key = CacheKey::new(&self.shared.seed, chain, options);
        self.shared
            .cache
            .get(&key, options, self.generation, unix_secs(at))
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
        let known = |der: &[u8]| self.revocation.known_ca(der);
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
        if let Some((cert, rule)) = path
            .certs
            .iter()
            .find_map(|c| self.denials.find(c, now).map(|r| (c, r)))
        {
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
                proof: None,
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
                valid_until: Some(valid_until),
                proof: Some(proof(path, valid_until, true)),
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
            let check = self
                .revocation
                .status(cert, i > 0, &path.certs, i + 1, now, 0);
            let (this_update, next_update) = check.times();
            let result = RevocationResult {
                serial: cert.serial().to_vec(),
                subject: cert.subject.clone(),
                source: check.source(),
                status: match &check.outcome {
                    Outcome::Good => CertStatus::Good,
                    Outcome::Revoked(_) => CertStatus::Revoked,
                    Outcome::Failed(..) => CertStatus::Unknown,
                },
                this_update,
                next_update,
                reason: match &check.outcome {
                    Outcome::Good => None,
                    Outcome::Revoked(e) => {
                        Some(e.reason.map_or("unspecified", |r| r.as_str()).to_owned())
                    }
                    Outcome::Failed(code, _) => Some(code.as_str().to_owned()),
                },
                revoked_at: match &check.outcome {
                    Outcome::Revoked(e) => Some(e.revoked_at),
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
                        valid_from = valid_from.max(this - self.config().clock_skew_secs);
                    }
                    continue;
                }
                Outcome::Revoked(e) => (ReasonCode::Revoked, revoked_detail(cert, &e)),
                Outcome::Failed(code, detail) => (code, format!("{}: {detail}", cert.subject)),
            };
            if worst.as_ref().is_none_or(|(w, _)| code.rank() > w.rank()) {
                worst = Some((code, detail));
            }
        }

        let until = Some(valid_until);
        let verdict = match worst {
            None => Verdict {
                verdict: Decision::Accepted,
                status: Status::Good,
                reason: ReasonCode::Ok,
                detail: "valid path; revocation status good".into(),
                chain: chain_summary,
                revocation: results,
                valid_until: until,
                proof: Some(proof(path, valid_until, false)),
            },
            Some((code, detail)) if code.is_unknown_status() && options.policy == RevocationPolicy::Prefer => Verdict {
                verdict: Decision::Accepted,
                status: Status::Unknown,
                reason: ReasonCode::RevocationUnknownSoftFail,
                detail: format!("valid path; revocation status unknown ({code}), accepted under prefer: {detail}"),
                chain: chain_summary,
                revocation: results,
                valid_until: until,
                proof: Some(proof(path, valid_until, true)),
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
                    proof: None,
                };
                return (verdict, None);
            }
        };
        (verdict, Some((valid_from, valid_until)))
    }
}

fn summarize(path: &ValidatedPath) -> Vec<CertSummary> {
    path.certs.iter().map(|c| CertSummary::of(c)).collect()
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
        proof: None,
    }
}

/// The proof an accepted verdict carries: its validated path (leaf
/// first, anchor last) and what the registry tracks it by.
fn proof(path: &ValidatedPath, valid_until: i64, degraded: bool) -> Arc<Proof> {
    Arc::new(Proof {
        path: path.certs.as_slice().into(),
        valid_until,
        degraded,
    })
}

/// The detail of a revoked verdict: which certificate, when and why.
fn revoked_detail(cert: &CertInfo, entry: &RevokedEntry) -> String {
    format!(
        "certificate {} (serial {}) was revoked at {} ({})",
        cert.subject,
        hex(cert.serial()),
        rfc3339(entry.revoked_at),
        entry.reason.map_or("unspecified", |r| r.as_str())
    )
}

pub(crate) fn unix_secs(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
