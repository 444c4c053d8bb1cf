//! Status from CRLs (RFC 5280 §6.3.3): which loaded CRLs are authoritative
//! for a certificate, signed by an acceptable key, in scope and fresh.

use super::*;

impl RevocationData {
    pub(super) fn check_crls(
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
        // CRLs no acceptable key signed are nobody's word: a failure of
        // verified data (stale, out of scope, unsupported) outranks them
        // (RFC 5280 §6.3.3 (f) rejects them before anything else is read).
        let mut unverified: Option<(ReasonCode, String, Option<Arc<VerifiedCrl>>)> = None;
        let mut fail = |code: ReasonCode, detail: String, crl: Option<Arc<VerifiedCrl>>| {
            let slot = if matches!(
                code,
                ReasonCode::CrlSignatureInvalid
                    | ReasonCode::UnsupportedCrlSigner
                    | ReasonCode::CrlSignerNotAuthorized
            ) {
                &mut unverified
            } else {
                &mut failure
            };
            if slot.as_ref().is_none_or(|(c, ..)| code.rank() > c.rank()) {
                *slot = Some((code, detail, crl));
            }
        };
        let mut deltas: Vec<Arc<VerifiedCrl>> = Vec::new();
        let mut held: Option<(RevokedEntry, Arc<VerifiedCrl>)> = None;

        // Candidate CRLs: the issuer's own, and those of every cRLIssuer its
        // distribution points name (indirect CRLs, RFC 5280 §5.2.5).
        let crl_issuers: Vec<Vec<u8>> = dps
            .iter()
            .filter_map(|d| d.crl_issuer.as_ref())
            .flatten()
            .filter_map(|n| directory_key(n))
            .collect();
        for slot in self.crls.iter().filter(|s| {
            s.issuer_key[..] == cert.issuer_key[..] || crl_issuers.contains(&s.issuer_key)
        }) {
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
            };
            if crl.delta_base().is_some() && crl.unsupported().is_none() {
                // A delta CRL (RFC 5280 §5.2.4): combined with a complete CRL
                // below. In a delta CRL, removeFromCRL un-revokes a hold
                // (§5.3.1), so only other entries are revocations.
                if let Some(entry) = crl.lookup_cert(&cert.issuer_key, cert.serial()) {
                    if entry.reason != Some(Reason::RemoveFromCrl) {
                        return Check {
                            outcome: Outcome::Revoked(entry),
                            crl: Some(crl),
                            ocsp: None,
                            remembered: None,
                            warning: None,
                        };
                    }
                }
                deltas.push(crl);
                continue;
            }
            if let Some(what) = crl.unsupported() {
                // A CRL that says "revoked" is believed even when Vigil can't
                // use it to say "good": failing closed.
                if let Some(entry) = crl.lookup_cert(&cert.issuer_key, cert.serial()) {
                    if entry.reason != Some(Reason::RemoveFromCrl) {
                        return Check {
                            outcome: Outcome::Revoked(entry),
                            crl: Some(crl),
                            ocsp: None,
                            remembered: None,
                            warning: None,
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
                };
                fail(code, why, Some(crl.clone()));
                continue;
            }
            if let Some(entry) = crl.lookup_cert(&cert.issuer_key, cert.serial()) {
                // Revocation from verified data stands even if the data is
                // stale. A hold may be released by a delta CRL, so it waits
                // until every CRL was seen.
                if entry.reason != Some(Reason::CertificateHold) {
                    return Check {
                        outcome: Outcome::Revoked(entry),
                        crl: Some(crl),
                        ocsp: None,
                        remembered: None,
                        warning: None,
                    };
                }
                held = Some((entry, crl.clone()));
            }
            // §6.3.3 (a)(2) / §5.1.2.4-5: freshness.
            let freshness = self
                .config
                .crl_freshness(crl.this_update(), crl.next_update(), now);
            if matches!(freshness, Freshness::NotYetValid { .. }) {
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
            if matches!(freshness, Freshness::Stale { .. }) {
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
            let stale = self
                .config
                .crl_freshness(delta.this_update(), delta.next_update(), now)
                != Freshness::Current;
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
                    ocsp: None,
                    remembered: None,
                    warning: None,
                };
            }
            if held.is_some()
                && delta
                    .lookup_cert(&cert.issuer_key, cert.serial())
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
                ocsp: None,
                remembered: None,
                warning: None,
            };
        }
        if mask & reasons::ALL == reasons::ALL {
            return Check {
                outcome: Outcome::Good,
                crl: source,
                ocsp: None,
                remembered: None,
                warning: unverified.map(|(_, why, _)| format!("a CRL was set aside: {why}")),
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
                    ocsp: None,
                    remembered: None,
                    warning: None,
                };
            }
        }
        if let Some((code, detail, crl)) = failure.or(unverified) {
            return Check {
                outcome: Outcome::Failed(code, detail),
                crl,
                ocsp: None,
                remembered: None,
                warning: None,
            };
        }
        Check {
            outcome: Outcome::Failed(
                ReasonCode::RevocationDataMissing,
                format!("no CRL from {} covers it", cert.issuer),
            ),
            crl: None,
            ocsp: None,
            remembered: None,
            warning: None,
        }
    }
}

/// One loaded CRL: verified against each candidate signer known so far, or
/// kept raw until a signer turns up.
pub(crate) struct CrlSlot {
    /// Verifications of a pending CRL by issuers that chains brought.
    pub(crate) lazy: std::sync::Mutex<LazyVerifications>,
    pub(crate) issuer_key: Vec<u8>,
    pub(crate) verified: Vec<Arc<VerifiedCrl>>,
    pub(crate) pending: Option<crate::verify::CrlDer>,
    pub(crate) failures: Vec<([u8; 32], CrlError)>,
}

enum Scope {
    Covers(u16),
    Outside,
}

/// RFC 5280 §6.3.3 (b) and (d): does this CRL cover the certificate, and
/// for which reasons.
fn crl_covers(
    crl: &VerifiedCrl,
    cert: &CertInfo,
    dps: &[crate::cert::DistributionPoint],
    is_ca: bool,
) -> Scope {
    // (b)(1): a distribution point naming a cRLIssuer is served by that
    // issuer's indirect CRL; one without is served by the certificate
    // issuer's own CRL.
    let direct = crl.issuer_key() == &*cert.issuer_key;
    let applicable: Vec<&crate::cert::DistributionPoint> = dps
        .iter()
        .filter(|d| match &d.crl_issuer {
            None => direct,
            Some(names) => {
                crl.is_indirect()
                    && names
                        .iter()
                        .any(|n| directory_key(n).as_deref() == Some(crl.issuer_key()))
            }
        })
        .collect();
    if applicable.is_empty() {
        return Scope::Outside;
    }
    let Some(idp) = crl.scope() else {
        // No IDP: a complete CRL for every certificate of its issuer.
        return Scope::Covers(reasons_of(applicable.into_iter()));
    };
    if idp.only_attribute || (idp.only_user && is_ca) || (idp.only_ca && !is_ca) {
        return Scope::Outside;
    }
    // (b)(2)(i): when the IDP names a distribution point, one of its names
    // must match one of the certificate's point's names, or, for a point
    // without a name, one of its cRLIssuer names (the certificate issuer
    // when there is no cRLIssuer). Relative names are completed with the
    // CRL issuer's (resp. the point's cRLIssuer's or certificate issuer's)
    // name.
    let idp_names: Vec<Vec<u8>> = match &idp.relative_name {
        Some(rdn) => append_rdn(crl.issuer(), rdn).into_iter().collect(),
        None => idp.full_names.clone(),
    };
    if idp_names.is_empty() {
        return Scope::Covers(reasons_of(applicable.into_iter()));
    }
    let matching: Vec<&crate::cert::DistributionPoint> = applicable
        .into_iter()
        .filter(|d| {
            let base = d
                .crl_issuer
                .as_ref()
                .and_then(|names| names.iter().find_map(|n| directory_inner(n)))
                .unwrap_or(cert.issuer_der());
            let dp_names: Vec<Vec<u8>> = match (&d.relative_name, d.full_names.is_empty()) {
                (Some(rdn), _) => append_rdn(base, rdn).into_iter().collect(),
                (None, false) => d.full_names.clone(),
                (None, true) => match &d.crl_issuer {
                    Some(names) => names.clone(),
                    None => vec![crate::der::encode(0xa4, cert.issuer_der())],
                },
            };
            dp_names
                .iter()
                .any(|a| idp_names.iter().any(|b| general_names_match(a, b)))
        })
        .collect();
    if matching.is_empty() {
        return Scope::Outside;
    }
    Scope::Covers(reasons_of(matching.into_iter()))
}

/// A directoryName GeneralName for `name` (DER Name) with `rdn` appended
/// (RFC 5280 §4.2.1.13, nameRelativeToCRLIssuer).
fn append_rdn(name: &[u8], rdn: &[u8]) -> Option<Vec<u8>> {
    let rdns = crate::der::single(name, crate::der::tag::SEQUENCE).ok()?;
    let mut content = rdns.to_vec();
    content.extend_from_slice(rdn);
    Some(crate::der::encode(
        0xa4,
        &crate::der::encode(crate::der::tag::SEQUENCE, &content),
    ))
}

/// The Name inside a directoryName GeneralName.
fn directory_inner(general_name: &[u8]) -> Option<&[u8]> {
    match crate::der::Reader::new(general_name).read_any() {
        Ok((0xa4, inner, _)) => Some(inner),
        _ => None,
    }
}

fn directory_key(general_name: &[u8]) -> Option<Vec<u8>> {
    directory_inner(general_name).map(crate::name::name_key)
}

/// GeneralName equality: directoryNames compare as names (RFC 5280 §7.1),
/// everything else byte for byte.
fn general_names_match(a: &[u8], b: &[u8]) -> bool {
    match (directory_inner(a), directory_inner(b)) {
        (Some(x), Some(y)) => crate::name::names_match(x, y),
        _ => a == b,
    }
}

fn reasons_of<'a>(dps: impl Iterator<Item = &'a crate::cert::DistributionPoint>) -> u16 {
    dps.fold(0u16, |acc, d| acc | d.reasons.unwrap_or(reasons::ALL))
}

enum SlotError {
    OtherSigner,
    Crl(CrlError),
}

/// (issuer certificate digest, outcome) of verifying a pending CRL.
pub(crate) type LazyVerifications = Vec<([u8; 32], Result<Arc<VerifiedCrl>, CrlError>)>;

impl Clone for CrlSlot {
    fn clone(&self) -> Self {
        let lazy = self
            .lazy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Self {
            lazy: std::sync::Mutex::new(lazy),
            issuer_key: self.issuer_key.clone(),
            verified: self.verified.clone(),
            pending: self.pending.clone(),
            failures: self.failures.clone(),
        }
    }
}

impl CrlSlot {
    pub(crate) fn new(issuer_key: Vec<u8>) -> Self {
        Self {
            lazy: Default::default(),
            issuer_key,
            verified: Vec::new(),
            pending: None,
            failures: Vec::new(),
        }
    }

    /// Whether the key with this certificate digest was tried on it.
    pub(crate) fn has_tried(&self, fingerprint: &[u8; 32]) -> bool {
        self.verified
            .iter()
            .any(|v| v.signer_fingerprint() == fingerprint)
            || self.failures.iter().any(|(f, _)| f == fingerprint)
    }

    pub(crate) fn try_parsed(&mut self, parsed: &ParsedCrl<'_>, signer: &CrlSigner) {
        if self.has_tried(&signer.fingerprint) {
            return;
        }
        match parsed.verify(signer) {
            Ok(v) => self.verified.push(Arc::new(v)),
            Err(e) => self.failures.push((signer.fingerprint, e)),
        }
    }

    pub(crate) fn try_signer(&mut self, signer: &CrlSigner) {
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
            // Issuer first seen in a chain: verify now, once per issuer key
            // (a signature check is a pure function of the CRL and the key).
            let mut lazy = self
                .lazy
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, done)) = lazy.iter().find(|(f, _)| f == &issuer.sha256) {
                return done.clone().map_err(SlotError::Crl);
            }
            let done = ParsedCrl::from_der(der)
                .and_then(|parsed| parsed.verify(&CrlSigner::from_info(issuer)))
                .map(Arc::new);
            if lazy.len() >= 8 {
                drop(lazy.remove(0));
            }
            lazy.push((issuer.sha256, done.clone()));
            return done.map_err(SlotError::Crl);
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

impl RevocationData {
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
                    CrlError::SignerNotCrlSigner
                        | CrlError::BadSignature
                        | CrlError::IssuerMismatch
                ))
        ) {
            return direct;
        }
        for crl in &slot.verified {
            let fp = crl.signer_fingerprint();
            if path[issuer_at..]
                .iter()
                .any(|p| &p.sha256 == fp && p.subject_key[..] == cert.issuer_key[..])
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
            // An indirect CRL whose issuer's certificate is unknown or invalid.
            Err(SlotError::Crl(CrlError::IssuerMismatch)) => Err(SlotError::OtherSigner),
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
            path[j].subject_key[..] == info.issuer_key[..]
                && crate::cert::signed_by(&signer.info.der, path[j].spki_der())
        }) else {
            return false;
        };
        matches!(
            self.status(info, info.is_ca, path, parent_at, now, depth + 1)
                .outcome,
            Outcome::Good
        )
    }
}

/// Orders cRLNumbers (non-negative INTEGER content octets); an absent
/// number sorts lowest.
fn cmp_numbers(a: Option<&[u8]>, b: Option<&[u8]>) -> std::cmp::Ordering {
    match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => crate::revocation::crl::cmp_unsigned(a, b),
    }
}
