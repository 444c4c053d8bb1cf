//! From a rejected [`Verdict`] to the rustls error, and so to the TLS alert
//! the peer receives.

use std::sync::Arc;

#[cfg(doc)]
use crate::{VigilClientVerifier, VigilServerVerifier};

use rustls::{CertificateError, OtherError};
use vigil_core::{ReasonCode, Verdict};

/// A rejected verdict, carried in [`CertificateError::Other`] when no more
/// specific rustls error fits; downcast the [`OtherError`] to read it.
#[derive(Clone, Debug)]
pub struct Rejected(pub Arc<Verdict>);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.reason, self.0.detail)
    }
}

impl std::error::Error for Rejected {}

/// The rustls error for a rejected verdict (what a verifier returns).
///
/// | reason | error | alert (rustls) |
/// |---|---|---|
/// | `revoked` | `Revoked` | `certificate_revoked` |
/// | unknown status (`revocation_data_missing`, `_stale`, `ocsp_unknown`, unsupported CRLs...) | `Other(Rejected)` | `certificate_unknown` (the alert the issue contract names; rustls would send `unknown_ca` for `UnknownRevocationStatus`) |
/// | `ocsp_signature_invalid`, `ocsp_responder_not_authorized` | `InvalidOcspResponse` | `bad_certificate_status_response` |
/// | `expired` / `not_yet_valid` | `Expired` / `NotValidYet` | `certificate_expired` |
/// | `unknown_issuer`, `unsupported_name_matching`, `distrusted` | `UnknownIssuer` | `unknown_ca` |
/// | `bad_signature` | `BadSignature` | `decrypt_error` |
/// | `name_mismatch` | `NotValidForName` | `bad_certificate` |
/// | `wrong_usage` | `InvalidPurpose` | `unsupported_certificate` |
/// | `malformed_certificate`, `unsupported_certificate_encoding` | `BadEncoding` | `bad_certificate` |
/// | `unsupported_critical_extension` | `UnhandledCriticalExtension` | `bad_certificate` |
/// | anything else (e.g. `crl_signature_invalid`, `not_a_ca`) | `Other(Rejected)` | `certificate_unknown` |
///
/// An accepted verdict has no error; this returns
/// `ApplicationVerificationFailure` for one, as a fail-closed default.
pub fn verdict_error(verdict: &Arc<Verdict>) -> rustls::Error {
    if verdict.is_accepted() {
        return CertificateError::ApplicationVerificationFailure.into();
    }
    let error = match verdict.reason {
        ReasonCode::Revoked => CertificateError::Revoked,
        ReasonCode::OcspSignatureInvalid | ReasonCode::OcspResponderNotAuthorized => {
            CertificateError::InvalidOcspResponse
        }
        ReasonCode::Expired => CertificateError::Expired,
        ReasonCode::NotYetValid => CertificateError::NotValidYet,
        ReasonCode::UnknownIssuer
        | ReasonCode::UnsupportedNameMatching
        | ReasonCode::Distrusted => CertificateError::UnknownIssuer,
        ReasonCode::BadSignature => CertificateError::BadSignature,
        ReasonCode::NameMismatch => CertificateError::NotValidForName,
        ReasonCode::WrongUsage => CertificateError::InvalidPurpose,
        ReasonCode::MalformedCertificate | ReasonCode::UnsupportedCertificateEncoding => {
            CertificateError::BadEncoding
        }
        ReasonCode::UnsupportedCriticalExtension => CertificateError::UnhandledCriticalExtension,
        _ => CertificateError::Other(OtherError(Arc::new(Rejected(Arc::clone(verdict))))),
    };
    rustls::Error::InvalidCertificate(error)
}

/// An application's own decision on a peer, asked only after Vigil has
/// accepted the peer's chain (path, usage, name, revocation): `Ok` admits
/// the peer, `Err(reason)` refuses it. Authorization, not authentication,
/// e.g. "only these SPIFFE IDs" ([`VigilClientVerifier::with_authorizer`],
/// [`VigilServerVerifier::with_authorizer`]).
pub type Authorizer =
    Arc<dyn Fn(&rustls::pki_types::CertificateDer<'_>) -> Result<(), String> + Send + Sync>;

/// Runs `authorizer` (if any) on the leaf of an accepted chain. A refusal is
/// `ApplicationVerificationFailure`, which rustls sends as `access_denied`
/// (RFC 8446 §6.2: a valid certificate, not authorized here).
pub(crate) fn authorize(
    authorizer: Option<&Authorizer>,
    leaf: &rustls::pki_types::CertificateDer<'_>,
) -> Result<(), rustls::Error> {
    let Some(authorizer) = authorizer else {
        return Ok(());
    };
    authorizer(leaf).map_err(|reason| {
        tracing::info!(%reason, "peer refused by the authorizer");
        CertificateError::ApplicationVerificationFailure.into()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rustls::AlertDescription;
    use vigil_core::Status;

    fn rejected(reason: ReasonCode, status: Status) -> Arc<Verdict> {
        // Every reason code, so not all from real verifications.
        Arc::new(Verdict::rejected_for_tests(status, reason, "test"))
    }

    fn alert(e: rustls::Error) -> AlertDescription {
        match e {
            rustls::Error::InvalidCertificate(c) => c.into(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_rejection_maps_to_the_closest_alert() {
        use AlertDescription as A;
        let cases = [
            (ReasonCode::Revoked, Status::Revoked, A::CertificateRevoked),
            (
                ReasonCode::RevocationDataMissing,
                Status::Unknown,
                A::CertificateUnknown,
            ),
            (
                ReasonCode::RevocationDataStale,
                Status::Unknown,
                A::CertificateUnknown,
            ),
            (
                ReasonCode::OcspUnknown,
                Status::Unknown,
                A::CertificateUnknown,
            ),
            (
                ReasonCode::OcspSignatureInvalid,
                Status::Invalid,
                A::BadCertificateStatusResponse,
            ),
            (ReasonCode::Expired, Status::Invalid, A::CertificateExpired),
            (
                ReasonCode::NotYetValid,
                Status::Invalid,
                A::CertificateExpired,
            ),
            (ReasonCode::UnknownIssuer, Status::Invalid, A::UnknownCA),
            (ReasonCode::BadSignature, Status::Invalid, A::DecryptError),
            (ReasonCode::NameMismatch, Status::Invalid, A::BadCertificate),
            (
                ReasonCode::WrongUsage,
                Status::Invalid,
                A::UnsupportedCertificate,
            ),
            (ReasonCode::NotACa, Status::Invalid, A::CertificateUnknown),
            (
                ReasonCode::CrlSignatureInvalid,
                Status::Invalid,
                A::CertificateUnknown,
            ),
        ];
        for (reason, status, expected) in cases {
            assert_eq!(
                alert(verdict_error(&rejected(reason, status))),
                expected,
                "{reason}"
            );
        }
        let revoked = verdict_error(&rejected(ReasonCode::Revoked, Status::Revoked));
        assert_eq!(
            revoked,
            rustls::Error::InvalidCertificate(CertificateError::Revoked)
        );
        assert!(matches!(
            verdict_error(&rejected(ReasonCode::UnsupportedCrlScope, Status::Unknown)),
            rustls::Error::InvalidCertificate(CertificateError::Other(_))
        ));
    }

    #[test]
    fn the_rest_carries_the_verdict() {
        let e = verdict_error(&rejected(ReasonCode::PathLenExceeded, Status::Invalid));
        let rustls::Error::InvalidCertificate(CertificateError::Other(other)) = e else {
            panic!("{e:?}");
        };
        let inner = other.0.downcast_ref::<Rejected>().unwrap();
        assert_eq!(inner.0.reason, ReasonCode::PathLenExceeded);
    }
}
