//! Status from OCSP answers (RFC 6960, RFC 5019): which held answers
//! speak of a certificate, verify for its issuer, and are fresh.

use super::*;

/// An OCSP response given to the verifier, parsed at load time.
pub(crate) struct OcspSlot {
    /// Replacement key given by [`crate::Verifier::set_ocsp_response`].
    pub(crate) key: Option<String>,
    /// Held only to report why it was refused
    /// ([`crate::Verifier::hold_rejected_ocsp`]).
    pub(crate) rejected: bool,
    pub(crate) der: Vec<u8>,
    pub(crate) responses: Vec<crate::revocation::SingleResponse>,
    /// Issuers (certificate SHA-256) the response verified for, with the
    /// delegated responder that signed it: the signature is checked once
    /// per issuer, not on every verification.
    pub(crate) verified: std::sync::Mutex<Vec<VerifiedFor>>,
}

/// An issuer's certificate SHA-256 and the delegated responder, if any.
pub(crate) type VerifiedFor = ([u8; 32], Option<Arc<CertInfo>>);

impl OcspSlot {
    /// RFC 6960 §3.2 / §4.2.2.2 verification of the response for `issuer`
    /// at `now`, from the per-issuer cache when it verified before (a
    /// delegated responder's validity period is checked again at `now`).
    fn verify_for(&self, issuer: &CertInfo, now: i64) -> Result<Option<Arc<CertInfo>>, OcspError> {
        let cached = self
            .verified
            .lock()
            .ok()
            .and_then(|v| v.iter().find(|(d, _)| *d == issuer.sha256).cloned());
        if let Some((_, responder)) = cached {
            let current = responder
                .as_ref()
                .is_none_or(|r| r.not_before <= now && now <= r.not_after);
            if current {
                return Ok(responder);
            }
        }
        let responder = crate::revocation::ParsedOcsp::from_der(&self.der)
            .and_then(|parsed| parsed.verify(issuer, now))?
            .map(Arc::new);
        if let Ok(mut v) = self.verified.lock() {
            v.retain(|(d, _)| *d != issuer.sha256);
            v.push((issuer.sha256, responder.clone()));
        }
        Ok(responder)
    }
}

impl RevocationData {
    /// The status of `cert` from OCSP answers matching its CertID, if any:
    /// the response must verify (RFC 6960 §3.2, §4.2.2.2) and be current.
    pub(super) fn check_ocsp(
        &self,
        cert: &CertInfo,
        path: &[Arc<CertInfo>],
        issuer_at: usize,
        now: i64,
        depth: u8,
    ) -> Option<Check> {
        let issuer = &path[issuer_at];
        // Answers whose signature or responder failed RFC 6960 §3.2 / §4.2.2.2
        // are nobody's word: any verified answer (good, revoked, unknown,
        // even stale) outranks them, whatever order they came in. They
        // decide only when nothing verified is held, and are reported.
        let mut best: Option<Check> = None;
        let mut unverified: Option<Check> = None;
        let mut consider = |check: Check| {
            let forged = matches!(
                check.outcome,
                Outcome::Failed(
                    ReasonCode::OcspSignatureInvalid | ReasonCode::OcspResponderNotAuthorized,
                    _
                )
            );
            let slot = if forged { &mut unverified } else { &mut best };
            let better = match &*slot {
                None => true,
                Some(b) => match (&check.outcome, &b.outcome) {
                    // RFC 6960 §3.2 (4): the most recent answer counts.
                    (Outcome::Good, Outcome::Good) => check.times().0 > b.times().0,
                    (Outcome::Good, _) => b.rank() < ReasonCode::CrlSignatureInvalid.rank(),
                    _ => check.rank() > b.rank(),
                },
            };
            if better {
                *slot = Some(check);
            }
        };
        for slot in &self.ocsp {
            for single in slot.responses.iter().filter(|r| r.is_for(cert, issuer)) {
                let times = Some((single.this_update, single.next_update));
                let failed = |code, detail: String| Check {
                    outcome: Outcome::Failed(code, detail),
                    crl: None,
                    ocsp: times,
                    remembered: None,
                    warning: None,
                };
                let verified = slot
                    .verify_for(issuer, now)
                    .and_then(|responder| match responder {
                        // RFC 6960 §4.2.2.2.1: a delegated responder's own
                        // certificate is checked against the issuer's CRLs
                        // when Vigil has them (id-pkix-ocsp-nocheck exempts
                        // it). A revoked responder is not trusted; an
                        // undeterminable one is, as the RFC leaves it to
                        // the client and responders are commonly short-lived.
                        Some(r) if !r.ocsp_nocheck && depth == 0 => {
                            match self
                                .check_crls(&r, false, path, issuer_at, now, depth + 1)
                                .outcome
                            {
                                Outcome::Revoked(_) => Err(OcspError::UnauthorizedResponder {
                                    detail: format!(
                                        "responder certificate {} is revoked",
                                        r.subject
                                    ),
                                }),
                                _ => Ok(()),
                            }
                        }
                        _ => Ok(()),
                    });
                if let Err(e) = verified {
                    let code = match e {
                        OcspError::UnauthorizedResponder { .. } => {
                            ReasonCode::OcspResponderNotAuthorized
                        }
                        _ => ReasonCode::OcspSignatureInvalid,
                    };
                    consider(failed(code, e.to_string()));
                    continue;
                }
                match single.status {
                    // A verified "revoked" stands even when the answer is old.
                    OcspCertStatus::Revoked { at, reason } => {
                        return Some(Check {
                            outcome: Outcome::Revoked(RevokedEntry {
                                revoked_at: at,
                                reason,
                            }),
                            crl: None,
                            ocsp: times,
                            remembered: None,
                            warning: None,
                        })
                    }
                    OcspCertStatus::Unknown => consider(failed(
                        ReasonCode::OcspUnknown,
                        "the OCSP responder does not know the certificate".into(),
                    )),
                    OcspCertStatus::Good => {
                        // RFC 6960 §3.2 (4)-(5) and RFC 5019 §4: current answers only.
                        let expires = single
                            .next_update
                            .unwrap_or(single.this_update + self.config.ocsp_max_age_secs);
                        let freshness =
                            self.config
                                .ocsp_freshness(single.this_update, single.next_update, now);
                        if let Freshness::NotYetValid { this_update } = freshness {
                            consider(failed(
                                ReasonCode::RevocationDataNotYetValid,
                                format!(
                                    "the OCSP answer's thisUpdate {} is in the future",
                                    rfc3339(this_update)
                                ),
                            ));
                        } else if let Freshness::Stale { expired } = freshness {
                            consider(failed(
                                ReasonCode::RevocationDataStale,
                                format!("the OCSP answer expired at {}", rfc3339(expired)),
                            ));
                        } else {
                            consider(Check {
                                outcome: Outcome::Good,
                                crl: None,
                                ocsp: Some((single.this_update, Some(expires))),
                                remembered: None,
                                warning: None,
                            });
                        }
                    }
                }
            }
        }
        match (best, unverified) {
            (
                Some(mut verified),
                Some(Check {
                    outcome: Outcome::Failed(_, why),
                    ..
                }),
            ) => {
                verified.warning = Some(format!("an OCSP answer was set aside: {why}"));
                Some(verified)
            }
            (Some(verified), _) => Some(verified),
            (None, unverified) => unverified,
        }
    }
}
