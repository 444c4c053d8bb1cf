//! Revocation status of one certificate from the data a snapshot holds:
//! [`RevocationData::status`] asks the OCSP answers ([`from_ocsp`]) and the
//! CRLs ([`from_crls`], RFC 5280 §6.3.3) as the configured methods say,
//! and ranks what they answer ([`Check`]).

use std::sync::Arc;

use super::data::RevocationData;
use crate::cert::CertInfo;
use crate::options::{Freshness, Methods};
use crate::revocation::crl::Unsupported;
use crate::revocation::{
    reasons, CrlError, CrlSigner, OcspCertStatus, OcspError, ParsedCrl, Reason, RevokedEntry,
    VerifiedCrl,
};
use crate::text::rfc3339;
use crate::verdict::{ReasonCode, Source};

mod from_crls;
mod from_ocsp;

pub(crate) use from_crls::CrlSlot;
pub(crate) use from_ocsp::OcspSlot;

/// An admitted (or candidate) CA certificate.
#[derive(Clone)]
pub(crate) struct CaCert {
    pub(crate) info: Arc<CertInfo>,
}

impl RevocationData {
    /// RFC 5280 §6.3.3 and RFC 6960: the status of `cert`, issued by
    /// `path[issuer_at]` (a validated path, leaf first), from every loaded
    /// CRL and OCSP answer, and the memory of revocations; also remembers a
    /// revocation it finds. `depth` counts how many CRL-signer certificates
    /// are being checked above this one.
    pub(crate) fn status(
        &self,
        cert: &CertInfo,
        is_ca: bool,
        path: &[Arc<CertInfo>],
        issuer_at: usize,
        now: i64,
        depth: u8,
    ) -> Check {
        let check = self.check_sources(cert, is_ca, path, issuer_at, now, depth);
        // Keyed by the key of the issuer on the validated path (its SPKI),
        // never by its name: only data signed for that key speaks of its
        // certificates.
        let issuer = &path[issuer_at].spki_sha256;
        if let Outcome::Revoked(entry) = &check.outcome {
            self.memory.remember(
                issuer,
                cert.serial(),
                *entry,
                check.source(),
                Some(cert.not_after),
            );
            return check;
        }
        // The sources no longer say so (stale, gone, or a later issue left
        // it out), but a verified source once did.
        match self.memory.recall(issuer, cert.serial(), now) {
            Some((entry, source)) => Check {
                outcome: Outcome::Revoked(entry),
                crl: None,
                ocsp: None,
                remembered: Some(source),
                warning: None,
            },
            None => check,
        }
    }

    /// Every enabled source is consulted: "revoked" from any wins; otherwise
    /// a good answer decides, the first method in the configured order
    /// first; otherwise the most specific failure.
    fn check_sources(
        &self,
        cert: &CertInfo,
        is_ca: bool,
        path: &[Arc<CertInfo>],
        issuer_at: usize,
        now: i64,
        depth: u8,
    ) -> Check {
        let methods = self.config.methods;
        let ocsp = methods
            .uses_ocsp()
            .then(|| self.check_ocsp(cert, path, issuer_at, now, depth))
            .flatten();
        if methods != Methods::CrlThenOcsp {
            if let Some(
                check @ Check {
                    outcome: Outcome::Revoked(_),
                    ..
                },
            ) = ocsp
            {
                return check;
            }
        }
        let crl = methods
            .uses_crl()
            .then(|| self.check_crls(cert, is_ca, path, issuer_at, now, depth));
        let (first, second) = match methods {
            Methods::CrlThenOcsp => (crl, ocsp),
            _ => (ocsp, crl),
        };
        let candidates = [first, second].into_iter().flatten();
        let mut best: Option<Check> = None;
        for c in candidates {
            let better = match (&best, &c.outcome) {
                (None, _) => true,
                // The first revoked answer in method order is reported.
                (Some(b), Outcome::Revoked(_)) => !matches!(b.outcome, Outcome::Revoked(_)),
                (Some(b), Outcome::Good) => {
                    !matches!(b.outcome, Outcome::Good | Outcome::Revoked(_))
                }
                // Failures of verified data outrank those of data that
                // failed its signature or authorisation check, whichever
                // method each came from.
                (Some(b), Outcome::Failed(..)) => {
                    matches!(b.outcome, Outcome::Failed(..))
                        && (c.trust_class(), c.rank()) > (b.trust_class(), b.rank())
                }
            };
            if better {
                best = Some(c);
            }
        }
        best.unwrap_or(Check {
            outcome: Outcome::Failed(
                ReasonCode::RevocationDataMissing,
                "no revocation method is enabled".into(),
            ),
            crl: None,
            ocsp: None,
            remembered: None,
            warning: None,
        })
    }
}

pub(crate) struct Check {
    pub(crate) outcome: Outcome,
    pub(crate) crl: Option<Arc<VerifiedCrl>>,
    /// thisUpdate and nextUpdate of the OCSP answer that decided, if one did.
    pub(crate) ocsp: Option<(i64, Option<i64>)>,
    /// A remembered revocation decided, first said by this kind of source.
    pub(crate) remembered: Option<Source>,
    /// Data about the certificate that failed a check and was set aside
    /// (e.g. an OCSP answer from an unauthorised responder beside a
    /// verified one): reported, never decisive over verified data.
    pub(crate) warning: Option<String>,
}

impl Check {
    /// Where the answer came from.
    pub(crate) fn source(&self) -> Source {
        if let Some(source) = self.remembered {
            source
        } else if self.ocsp.is_some() {
            Source::Ocsp
        } else if self.crl.is_some() {
            Source::Crl
        } else {
            Source::None
        }
    }

    /// thisUpdate and nextUpdate of the data used.
    pub(crate) fn times(&self) -> (Option<i64>, Option<i64>) {
        match (&self.ocsp, &self.crl) {
            (Some((this, next)), _) => (Some(*this), *next),
            (None, Some(crl)) => (Some(crl.this_update()), crl.next_update()),
            (None, None) => (None, None),
        }
    }

    /// How much a failure says: about verified data (stale, out of scope,
    /// unsupported, unknown to the responder) 2; about data that no
    /// acceptable key signed 1; no data at all 0.
    fn trust_class(&self) -> u8 {
        match self.outcome {
            Outcome::Failed(
                ReasonCode::OcspSignatureInvalid
                | ReasonCode::OcspResponderNotAuthorized
                | ReasonCode::CrlSignatureInvalid
                | ReasonCode::UnsupportedCrlSigner
                | ReasonCode::CrlSignerNotAuthorized,
                _,
            ) => 1,
            Outcome::Failed(ReasonCode::RevocationDataMissing, _) => 0,
            _ => 2,
        }
    }

    fn rank(&self) -> u8 {
        match &self.outcome {
            Outcome::Good => 0,
            Outcome::Revoked(_) => ReasonCode::Revoked.rank(),
            Outcome::Failed(code, _) => code.rank(),
        }
    }
}

pub(crate) enum Outcome {
    Good,
    Revoked(RevokedEntry),
    Failed(ReasonCode, String),
}
