//! The verifier: path validation, then revocation over the path under a
//! policy, into one [`Verdict`]; with a verdict cache for repeated chains.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cert::{hex, CertInfo};
use crate::path::{self, Usage, ValidatedPath};
use crate::revocation::crl::Unsupported;
use crate::revocation::{
    reasons, CrlError, CrlSigner, Depth, ParsedCrl, Reason, RevocationPolicy, RevokedEntry,
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

/// Tolerated clock difference for a CRL's thisUpdate lying in the future.
const CLOCK_SKEW_SECS: i64 = 300;

/// Most verdicts kept by the cache before it starts over.
const CACHE_CAPACITY: usize = 16 * 1024;

/// A verifier over a trust store, known CA certificates and CRLs.
///
/// Loading a CRL verifies its signature and indexes it once; verifications
/// then only look serials up. Verdicts of accepted chains are cached by a
/// digest of the chain and options together with the data generation, so a
/// repeated verification with unchanged data is a hash lookup.
pub struct Verifier {
    trust: TrustStore,
    cas: Vec<CaCert>,
    crls: Vec<CrlSlot>,
    generation: u64,
    cache: Mutex<VerdictCache>,
    /// Seed of the cache-key hash: random per verifier, fixed for its life.
    seed: hashbrown::DefaultHashBuilder,
}

struct CaCert {
    info: Arc<CertInfo>,
    der: Vec<u8>,
}

/// One loaded CRL: verified against each candidate signer known so far, or
/// kept raw until a signer turns up.
struct CrlSlot {
    issuer_key: Vec<u8>,
    verified: Vec<Arc<VerifiedCrl>>,
    pending: Option<Arc<[u8]>>,
    failures: Vec<([u8; 32], CrlError)>,
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
}

impl Verifier {
    /// A verifier with these anchors and nothing else.
    pub fn new(trust: TrustStore) -> Self {
        Self {
            trust,
            cas: Vec::new(),
            crls: Vec::new(),
            generation: 0,
            cache: Mutex::new(VerdictCache::default()),
            seed: hashbrown::DefaultHashBuilder::default(),
        }
    }

    /// The trust store.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// Remembers an (untrusted) CA certificate as a possible CRL signer.
    /// Whether it is trusted is decided by path validation, per chain.
    pub fn add_ca_certificate(&mut self, der: &CertificateDer<'_>) -> Result<(), InputError> {
        let info = CertInfo::parse(der)?;
        if self.cas.iter().any(|c| c.info.sha256 == info.sha256)
            || self.trust.anchor_infos().any(|a| a.sha256 == info.sha256)
        {
            return Ok(());
        }
        let signer = CrlSigner::from_info(&info);
        for slot in &mut self.crls {
            if slot.issuer_key == info.subject_key {
                slot.try_signer(&signer);
            }
        }
        self.cas.push(CaCert {
            info: Arc::new(info),
            der: der.as_ref().to_vec(),
        });
        self.bump();
        Ok(())
    }

    /// Loads a CRL (DER): parses it, verifies it with every known
    /// certificate of its issuer's name, and indexes it.
    pub fn add_crl(&mut self, der: &[u8]) -> Result<CrlLoad, CrlError> {
        let parsed = ParsedCrl::from_der(der)?;
        let issuer_key = crate::name::name_key(parsed.issuer());
        let mut slot = CrlSlot {
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
        let load = if let Some(v) = slot.verified.first() {
            CrlLoad::Verified { entries: v.len() }
        } else if let Some((_, e)) = slot.failures.last() {
            CrlLoad::Rejected(e.clone())
        } else {
            slot.pending = Some(Arc::from(der));
            CrlLoad::Pending
        };
        self.crls.push(slot);
        self.bump();
        Ok(load)
    }

    /// Adds an already verified CRL.
    pub fn add_verified_crl(&mut self, crl: Arc<VerifiedCrl>) {
        let issuer_key = crate::name::name_key(crl.issuer());
        self.crls.push(CrlSlot {
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
        self.generation += 1;
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
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
        let key = cache_key(&self.seed, chain, options);
        if let Some(hit) = self.cached(key, chain, options, now) {
            return hit;
        }
        let (verdict, window) = self.evaluate(chain, options, now);
        let verdict = Arc::new(verdict);
        if let Some((from, until)) = window {
            if let Ok(mut cache) = self.cache.lock() {
                cache.insert(
                    key,
                    chain,
                    options,
                    self.generation,
                    from,
                    until,
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

    fn cached(
        &self,
        key: u64,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        now: i64,
    ) -> Option<Arc<Verdict>> {
        let cache = self.cache.lock().ok()?;
        cache.get(key, chain, options, self.generation, now)
    }

    /// The verdict and, for accepted verdicts, the window in which it holds.
    fn evaluate(
        &self,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        now: i64,
    ) -> (Verdict, Option<(i64, i64)>) {
        let Some((leaf, rest)) = chain.split_first() else {
            return (
                rejected(
                    Status::Invalid,
                    ReasonCode::MalformedCertificate,
                    "empty chain".into(),
                ),
                None,
            );
        };
        let name = match options.name.as_deref().map(ServerName::try_from) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                return (
                    rejected(
                        Status::Invalid,
                        ReasonCode::NameMismatch,
                        format!(
                            "'{}' is not a valid DNS name or IP address",
                            options.name.as_deref().unwrap_or_default()
                        ),
                    ),
                    None,
                )
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
        let path = match path::validate(
            &self.trust,
            leaf,
            rest,
            at,
            options.usage,
            name.as_ref(),
            &known,
        ) {
            Ok(p) => p,
            Err(f) => return (rejected(Status::Invalid, f.code, f.detail), None),
        };
        let chain_summary = summarize(&path);
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
            let result = RevocationResult {
                serial: hex(&cert.serial),
                subject: cert.subject.clone(),
                source: if check.crl.is_some() {
                    Source::Crl
                } else {
                    Source::None
                },
                status: match &check.outcome {
                    Outcome::Good => CertStatus::Good,
                    Outcome::Revoked(_) => CertStatus::Revoked,
                    Outcome::Failed(..) => CertStatus::Unknown,
                },
                this_update: check.crl.as_ref().map(|c| rfc3339(c.this_update())),
                next_update: check
                    .crl
                    .as_ref()
                    .and_then(|c| c.next_update())
                    .map(rfc3339),
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
            };
            results.push(result);
            let (code, detail) = match check.outcome {
                Outcome::Good => {
                    if let Some(crl) = &check.crl {
                        if let Some(next) = crl.next_update() {
                            valid_until = valid_until.min(next);
                        }
                        valid_from = valid_from.max(crl.this_update() - CLOCK_SKEW_SECS);
                    }
                    continue;
                }
                Outcome::Revoked(e) => (
                    ReasonCode::Revoked,
                    format!(
                        "certificate {} (serial {}) was revoked at {} ({})",
                        cert.subject,
                        hex(&cert.serial),
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

    /// RFC 5280 §6.3.3: the status of `cert`, issued by `path[issuer_at]`,
    /// from every loaded CRL of the issuer's name. `depth` counts how many
    /// CRL-signer certificates are being checked above this one.
    fn check_cert(
        &self,
        cert: &CertInfo,
        is_ca: bool,
        path: &[Arc<CertInfo>],
        issuer_at: usize,
        now: i64,
        depth: u8,
    ) -> Check {
        let issuer = &path[issuer_at];
        let implicit = [crate::cert::DistributionPoint::default()];
        let dps: &[crate::cert::DistributionPoint] = cert.crl_dps.as_deref().unwrap_or(&implicit);
        let mut mask = 0u16;
        let mut best_good: Option<Arc<VerifiedCrl>> = None;
        let mut failure: Option<(ReasonCode, String, Option<Arc<VerifiedCrl>>)> = None;
        let mut fail = |code: ReasonCode, detail: String, crl: Option<Arc<VerifiedCrl>>| {
            if failure
                .as_ref()
                .is_none_or(|(c, ..)| code.rank() > c.rank())
            {
                failure = Some((code, detail, crl));
            }
        };
        let mut deltas: Vec<Arc<VerifiedCrl>> = Vec::new();
        let mut held: Option<(RevokedEntry, Arc<VerifiedCrl>)> = None;

        for slot in self.crls.iter().filter(|s| s.issuer_key == cert.issuer_key) {
            let crl = match self.crl_from_accepted_signer(slot, cert, path, issuer_at, now, depth) {
                Ok(crl) => crl,
                Err(SlotError::OtherSigner) => {
                    fail(
                        ReasonCode::UnsupportedCrlSigner,
                        "the CRL is signed by another key of the issuer's name whose certificate could not be validated".into(),
                        None,
                    );
                    continue;
                }
                Err(SlotError::Crl(CrlError::SignerNotCrlSigner)) => {
                    fail(
                        ReasonCode::CrlSignerNotAuthorized,
                        format!("issuer {} may not sign CRLs (no cRLSign)", issuer.subject),
                        None,
                    );
                    continue;
                }
                Err(SlotError::Crl(e)) => {
                    fail(
                        ReasonCode::CrlSignatureInvalid,
                        format!("CRL of {} rejected: {e}", issuer.subject),
                        None,
                    );
                    continue;
                }
            };
            // §6.3.3 (b)(2): the CRL's scope must cover this certificate.
            let dp_reasons = match crl_covers(&crl, cert, dps, is_ca) {
                Scope::Covers(reasons) => reasons,
                Scope::Outside => continue,
                Scope::Unsupported(code, why) => {
                    fail(code, why, Some(crl.clone()));
                    continue;
                }
            };
            if crl.delta_base().is_some() && crl.unsupported().is_none() {
                // A delta CRL (RFC 5280 §5.2.4): combined with a complete CRL
                // below. In a delta CRL, removeFromCRL un-revokes a hold
                // (§5.3.1), so only other entries are revocations.
                if let Some(entry) = crl.lookup(&cert.serial) {
                    if entry.reason != Some(Reason::RemoveFromCrl) {
                        return Check {
                            outcome: Outcome::Revoked(entry),
                            crl: Some(crl),
                        };
                    }
                }
                deltas.push(crl);
                continue;
            }
            if let Some(what) = crl.unsupported() {
                // A CRL that says "revoked" is believed even when Vigil can't
                // use it to say "good": failing closed.
                if let Some(entry) = crl.lookup(&cert.serial) {
                    if entry.reason != Some(Reason::RemoveFromCrl) {
                        return Check {
                            outcome: Outcome::Revoked(entry),
                            crl: Some(crl),
                        };
                    }
                }
                let (code, why) = match what {
                    Unsupported::IndirectCrl => (
                        ReasonCode::UnsupportedIndirectCrl,
                        "indirect CRLs are not supported".to_owned(),
                    ),
                    Unsupported::CriticalExtension(oid) => (
                        ReasonCode::UnsupportedCriticalCrlExtension,
                        format!("the CRL has an unsupported critical extension {oid}"),
                    ),
                    Unsupported::RelativeDistributionPoint => (
                        ReasonCode::UnsupportedCrlScope,
                        "nameRelativeToCRLIssuer distribution points are not supported".to_owned(),
                    ),
                };
                fail(code, why, Some(crl.clone()));
                continue;
            }
            if let Some(entry) = crl.lookup(&cert.serial) {
                // Revocation from verified data stands even if the data is
                // stale. A hold may be released by a delta CRL, so it waits
                // until every CRL was seen.
                if entry.reason != Some(Reason::CertificateHold) {
                    return Check {
                        outcome: Outcome::Revoked(entry),
                        crl: Some(crl),
                    };
                }
                held = Some((entry, crl.clone()));
            }
            // §6.3.3 (a)(2) / §5.1.2.4-5: freshness.
            if crl.this_update() > now + CLOCK_SKEW_SECS {
                fail(
                    ReasonCode::RevocationDataNotYetValid,
                    format!(
                        "the CRL's thisUpdate {} is in the future",
                        rfc3339(crl.this_update())
                    ),
                    Some(crl.clone()),
                );
                continue;
            }
            if crl.next_update().is_some_and(|next| next < now) {
                fail(
                    ReasonCode::RevocationDataStale,
                    format!(
                        "the CRL expired at {}",
                        rfc3339(crl.next_update().unwrap_or_default())
                    ),
                    Some(crl.clone()),
                );
                continue;
            }
            mask |= crl.reasons() & dp_reasons;
            if best_good
                .as_ref()
                .is_none_or(|b| crl.this_update() > b.this_update())
            {
                best_good = Some(crl);
            }
        }

        let mut source = best_good.clone();
        if let Some(delta) = deltas
            .iter()
            .max_by(|a, b| cmp_numbers(a.number(), b.number()))
        {
            // §6.3.3 (c): the newest delta CRL applies to a complete CRL whose
            // number is at least the delta's BaseCRLNumber; otherwise the
            // complete CRL misses revocations the delta assumes known.
            let based = best_good.as_ref().is_some_and(|complete| {
                cmp_numbers(complete.number(), delta.delta_base()) != std::cmp::Ordering::Less
            });
            let stale = delta.next_update().is_some_and(|next| next < now)
                || delta.this_update() > now + CLOCK_SKEW_SECS;
            if !based || stale {
                let (code, detail) = if stale {
                    (
                        ReasonCode::RevocationDataStale,
                        "the delta CRL is not current".to_owned(),
                    )
                } else {
                    (
                        ReasonCode::RevocationDataMissing,
                        "no current complete CRL is the base of the delta CRL".to_owned(),
                    )
                };
                return Check {
                    outcome: Outcome::Failed(code, detail),
                    crl: Some(delta.clone()),
                };
            }
            if held.is_some()
                && delta
                    .lookup(&cert.serial)
                    .is_some_and(|e| e.reason == Some(Reason::RemoveFromCrl))
            {
                held = None;
            }
            source = Some(delta.clone());
        }
        if let Some((entry, crl)) = held {
            return Check {
                outcome: Outcome::Revoked(entry),
                crl: Some(crl),
            };
        }
        if mask & reasons::ALL == reasons::ALL {
            return Check {
                outcome: Outcome::Good,
                crl: source,
            };
        }
        if let Some(crl) = best_good {
            if failure.is_none() {
                return Check {
                    outcome: Outcome::Failed(
                        ReasonCode::UnsupportedCrlScope,
                        "the CRLs found cover only some revocation reasons".into(),
                    ),
                    crl: Some(crl),
                };
            }
        }
        if let Some((code, detail, crl)) = failure {
            return Check {
                outcome: Outcome::Failed(code, detail),
                crl,
            };
        }
        if dps.iter().all(|d| d.has_crl_issuer) {
            return Check {
                outcome: Outcome::Failed(
                    ReasonCode::UnsupportedIndirectCrl,
                    "the certificate's CRLs are issued by a separate CRL issuer (indirect CRL)"
                        .into(),
                ),
                crl: None,
            };
        }
        Check {
            outcome: Outcome::Failed(
                ReasonCode::RevocationDataMissing,
                format!("no CRL from {} covers it", cert.issuer),
            ),
            crl: None,
        }
    }
}

struct Check {
    outcome: Outcome,
    crl: Option<Arc<VerifiedCrl>>,
}

enum Outcome {
    Good,
    Revoked(RevokedEntry),
    Failed(ReasonCode, String),
}

enum Scope {
    Covers(u16),
    Outside,
    Unsupported(ReasonCode, String),
}

/// RFC 5280 §6.3.3 (b)(2) and (d): does this CRL's issuingDistributionPoint
/// cover the certificate, and for which reasons.
fn crl_covers(
    crl: &VerifiedCrl,
    cert: &CertInfo,
    dps: &[crate::cert::DistributionPoint],
    is_ca: bool,
) -> Scope {
    let Some(idp) = crl.scope() else {
        // No IDP: a complete CRL for every certificate of the issuer. A
        // certificate whose distribution points all name another CRL issuer
        // is not covered by the issuer's own CRL.
        if dps.iter().all(|d| d.has_crl_issuer) {
            return Scope::Outside;
        }
        return Scope::Covers(reasons_of(dps.iter().filter(|d| !d.has_crl_issuer)));
    };
    if idp.only_attribute || (idp.only_user && is_ca) || (idp.only_ca && !is_ca) {
        return Scope::Outside;
    }
    let matching: Vec<&crate::cert::DistributionPoint> = if idp.full_names.is_empty() {
        dps.iter().filter(|d| !d.has_crl_issuer).collect()
    } else {
        dps.iter()
            .filter(|d| !d.has_crl_issuer)
            .filter(|d| {
                if d.full_names.is_empty() && !d.relative_name {
                    // Implicit point: the CRL issuer's name is the DP name.
                    idp.full_names
                        .iter()
                        .any(|n| directory_name_is(n, &cert.issuer_der))
                } else {
                    d.full_names.iter().any(|n| idp.full_names.contains(n))
                }
            })
            .collect()
    };
    if matching.is_empty() {
        if dps.iter().any(|d| d.relative_name) {
            return Scope::Unsupported(
                ReasonCode::UnsupportedCrlScope,
                "nameRelativeToCRLIssuer distribution points are not supported".into(),
            );
        }
        return Scope::Outside;
    }
    Scope::Covers(reasons_of(matching.into_iter()))
}

fn reasons_of<'a>(dps: impl Iterator<Item = &'a crate::cert::DistributionPoint>) -> u16 {
    dps.fold(0u16, |acc, d| acc | d.reasons.unwrap_or(reasons::ALL))
}

/// Whether a GeneralName (DER) is directoryName [4] holding `name`.
fn directory_name_is(general_name: &[u8], name: &[u8]) -> bool {
    let mut r = crate::der::Reader::new(general_name);
    match r.read_any() {
        Ok((0xa4, inner, _)) => crate::name::names_match(inner, name),
        _ => false,
    }
}

enum SlotError {
    OtherSigner,
    Crl(CrlError),
}

impl CrlSlot {
    fn try_parsed(&mut self, parsed: &ParsedCrl<'_>, signer: &CrlSigner) {
        if self
            .verified
            .iter()
            .any(|v| v.signer_fingerprint() == &signer.fingerprint)
            || self.failures.iter().any(|(f, _)| f == &signer.fingerprint)
        {
            return;
        }
        match parsed.verify(signer) {
            Ok(v) => self.verified.push(Arc::new(v)),
            Err(e) => self.failures.push((signer.fingerprint, e)),
        }
    }

    fn try_signer(&mut self, signer: &CrlSigner) {
        let Some(der) = self.pending.clone() else {
            return;
        };
        if let Ok(parsed) = ParsedCrl::from_der(&der) {
            self.try_parsed(&parsed, signer);
        }
        if !self.verified.is_empty() {
            self.pending = None;
        }
    }

    /// This CRL as verified by `issuer`'s key, verifying a pending CRL now.
    fn for_signer(&self, issuer: &CertInfo) -> Result<Arc<VerifiedCrl>, SlotError> {
        if let Some(v) = self
            .verified
            .iter()
            .find(|v| v.signer_fingerprint() == &issuer.sha256)
        {
            return Ok(v.clone());
        }
        if let Some((_, e)) = self.failures.iter().find(|(f, _)| f == &issuer.sha256) {
            return Err(SlotError::Crl(e.clone()));
        }
        if let Some(der) = &self.pending {
            // Issuer first seen in this chain: verify now (not memoised, as
            // the chain's certificates are not retained).
            let parsed = ParsedCrl::from_der(der).map_err(SlotError::Crl)?;
            return parsed
                .verify(&CrlSigner::from_info(issuer))
                .map(Arc::new)
                .map_err(SlotError::Crl);
        }
        if !self.verified.is_empty() {
            return Err(SlotError::OtherSigner);
        }
        Err(SlotError::Crl(
            self.failures
                .last()
                .map(|(_, e)| e.clone())
                .unwrap_or(CrlError::BadSignature),
        ))
    }
}

impl Verifier {
    /// RFC 5280 §6.3.3 (f): the CRL must be signed by the certificate's
    /// issuer, or by another key of the same name whose certificate is
    /// itself validated: a certificate of the validated path (a rolled-over
    /// key, §6.1 self-issued), or a separate CRL-signing certificate issued
    /// by a CA of the path, currently valid and itself not revoked.
    fn crl_from_accepted_signer(
        &self,
        slot: &CrlSlot,
        cert: &CertInfo,
        path: &[Arc<CertInfo>],
        issuer_at: usize,
        now: i64,
        depth: u8,
    ) -> Result<Arc<VerifiedCrl>, SlotError> {
        let direct = slot.for_signer(&path[issuer_at]);
        if !matches!(
            direct,
            Err(SlotError::OtherSigner)
                | Err(SlotError::Crl(
                    CrlError::SignerNotCrlSigner | CrlError::BadSignature
                ))
        ) {
            return direct;
        }
        for crl in &slot.verified {
            let fp = crl.signer_fingerprint();
            if path[issuer_at..]
                .iter()
                .any(|p| &p.sha256 == fp && p.subject_key == cert.issuer_key)
            {
                return Ok(crl.clone());
            }
            if depth == 0 {
                if let Some(signer) = self.cas.iter().find(|c| &c.info.sha256 == fp) {
                    if self.signer_is_valid(signer, path, issuer_at, now, depth) {
                        return Ok(crl.clone());
                    }
                }
            }
        }
        match direct {
            Err(SlotError::Crl(CrlError::BadSignature)) if !slot.verified.is_empty() => {
                Err(SlotError::OtherSigner)
            }
            other => other,
        }
    }

    /// A separate CRL signer must chain to a certificate of the validated
    /// path, be valid now, and not be revoked itself.
    fn signer_is_valid(
        &self,
        signer: &CaCert,
        path: &[Arc<CertInfo>],
        issuer_at: usize,
        now: i64,
        depth: u8,
    ) -> bool {
        let info = &signer.info;
        if now < info.not_before || now > info.not_after {
            return false;
        }
        let Some(parent_at) = (issuer_at..path.len()).find(|&j| {
            path[j].subject_key == info.issuer_key
                && crate::cert::signed_by(&signer.der, &path[j].spki_der)
        }) else {
            return false;
        };
        matches!(
            self.check_cert(info, info.is_ca, path, parent_at, now, depth + 1)
                .outcome,
            Outcome::Good
        )
    }
}

/// Orders cRLNumbers (non-negative INTEGER content octets); an absent
/// number sorts lowest.
fn cmp_numbers(a: Option<&[u8]>, b: Option<&[u8]>) -> std::cmp::Ordering {
    let trim = |n: &[u8]| -> Vec<u8> { n.iter().copied().skip_while(|b| *b == 0).collect() };
    match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => {
            let (a, b) = (trim(a), trim(b));
            a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
        }
    }
}

fn summarize(path: &ValidatedPath) -> Vec<CertSummary> {
    path.certs
        .iter()
        .map(|c| CertSummary {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            serial: hex(&c.serial),
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

fn unix_secs(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn cache_key(
    seed: &hashbrown::DefaultHashBuilder,
    chain: &[CertificateDer<'_>],
    options: &VerifyOptions,
) -> u64 {
    let mut h = seed.build_hasher();
    for c in chain {
        c.as_ref().hash(&mut h);
    }
    options.hash(&mut h);
    h.finish()
}

#[derive(Default)]
struct VerdictCache {
    entries: HashMap<u64, CacheEntry>,
}

struct CacheEntry {
    chain: Vec<Vec<u8>>,
    options: VerifyOptions,
    generation: u64,
    valid_from: i64,
    valid_until: i64,
    verdict: Arc<Verdict>,
}

impl VerdictCache {
    fn get(
        &self,
        key: u64,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        generation: u64,
        now: i64,
    ) -> Option<Arc<Verdict>> {
        let e = self.entries.get(&key)?;
        // The key is a fast hash: confirm the chain and options exactly.
        (e.generation == generation
            && now >= e.valid_from
            && now < e.valid_until
            && &e.options == options
            && e.chain.len() == chain.len()
            && e.chain
                .iter()
                .zip(chain)
                .all(|(a, b)| a.as_slice() == b.as_ref()))
        .then(|| e.verdict.clone())
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        key: u64,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        generation: u64,
        valid_from: i64,
        valid_until: i64,
        verdict: Arc<Verdict>,
    ) {
        if self.entries.len() >= CACHE_CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            CacheEntry {
                chain: chain.iter().map(|c| c.as_ref().to_vec()).collect(),
                options: options.clone(),
                generation,
                valid_from,
                valid_until,
                verdict,
            },
        );
    }

    fn clear(&mut self) {
        self.entries.clear();
    }
}
