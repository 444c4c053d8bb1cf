//! Path validation (RFC 5280 §6.1) with rustls-webpki, plus the checks
//! webpki leaves out. Time is always an argument.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage};

use crate::cert::{CertInfo, KU_KEY_CERT_SIGN};
use crate::trust::TrustStore;
use crate::verdict::ReasonCode;

/// The extended key usage the leaf must allow (RFC 5280 §4.2.1.12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Usage {
    /// id-kp-clientAuth, when the leaf has an EKU extension.
    Client,
    /// id-kp-serverAuth, when the leaf has an EKU extension.
    Server,
    /// Any usage.
    #[default]
    Any,
}

impl FromStr for Usage {
    type Err = crate::revocation::policy::ParseWordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client" => Ok(Self::Client),
            "server" => Ok(Self::Server),
            "any" => Ok(Self::Any),
            _ => Err(crate::revocation::policy::ParseWordError::new(
                "client|server|any",
                s,
            )),
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Server => "server",
            Self::Any => "any",
        })
    }
}

/// A validated path: leaf first, then intermediates, then the anchor.
pub(crate) struct ValidatedPath {
    pub(crate) certs: Vec<Arc<CertInfo>>,
}

/// Why no valid path was found.
pub(crate) struct PathFailure {
    pub(crate) code: ReasonCode,
    pub(crate) detail: String,
}

struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

pub(crate) fn validate(
    trust: &TrustStore,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    at: UnixTime,
    usage: Usage,
    name: Option<&ServerName<'_>>,
    known: &dyn Fn(&[u8]) -> Option<Arc<CertInfo>>,
) -> Result<ValidatedPath, PathFailure> {
    let fail = |code, detail: String| PathFailure { code, detail };
    let leaf_info = CertInfo::parse(leaf).map_err(|e| {
        fail(
            ReasonCode::MalformedCertificate,
            format!("leaf certificate: {e}"),
        )
    })?;
    let ee = EndEntityCert::try_from(leaf).map_err(|e| match map_error(&e) {
        // x509-parser read it, so webpki refuses an encoding RFC 5280 allows.
        ReasonCode::MalformedCertificate => fail(
            ReasonCode::UnsupportedCertificateEncoding,
            format!("the path validator rejects the leaf's encoding ({e:?})"),
        ),
        code => fail(code, format!("leaf certificate: {e:?}")),
    })?;

    let found: RefCell<Option<(Vec<Vec<u8>>, usize)>> = RefCell::new(None);
    let record = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
        let ders = path
            .intermediate_certificates()
            .map(|c| c.der().as_ref().to_vec())
            .collect();
        let anchor = trust
            .webpki_anchors()
            .iter()
            .position(|a| {
                a.subject.as_ref() == path.anchor().subject.as_ref()
                    && a.subject_public_key_info.as_ref()
                        == path.anchor().subject_public_key_info.as_ref()
            })
            .unwrap_or(usize::MAX);
        *found.borrow_mut() = Some((ders, anchor));
        Ok(())
    };
    let algs = webpki::ALL_VERIFICATION_ALGS;
    let anchors = trust.webpki_anchors();
    let result = match usage {
        Usage::Client => ee.verify_for_usage(
            algs,
            anchors,
            intermediates,
            at,
            KeyUsage::client_auth(),
            None,
            Some(&record),
        ),
        Usage::Server => ee.verify_for_usage(
            algs,
            anchors,
            intermediates,
            at,
            KeyUsage::server_auth(),
            None,
            Some(&record),
        ),
        Usage::Any => ee.verify_for_usage(
            algs,
            anchors,
            intermediates,
            at,
            AnyEku,
            None,
            Some(&record),
        ),
    };
    if let Err(e) = result {
        return Err(explain(&e, &leaf_info, intermediates, trust, at));
    }
    let Some((ders, anchor_index)) = found.into_inner() else {
        return Err(fail(
            ReasonCode::InvalidChain,
            "path builder returned no path".into(),
        ));
    };
    if let Some(name) = name {
        ee.verify_is_valid_for_subject_name(name).map_err(|_| {
            fail(
                ReasonCode::NameMismatch,
                format!("certificate is not valid for name {}", name.to_str()),
            )
        })?;
    }

    let mut certs = Vec::with_capacity(ders.len() + 2);
    certs.push(Arc::new(leaf_info));
    for der in &ders {
        let info = match known(der) {
            Some(info) => info,
            None => Arc::new(CertInfo::parse(der).map_err(|e| {
                fail(
                    ReasonCode::MalformedCertificate,
                    format!("intermediate: {e}"),
                )
            })?),
        };
        // RFC 5280 §4.2.1.3 and §6.1.4 (n): a CA key that signs certificates
        // must assert keyCertSign when keyUsage is present. webpki ignores
        // keyUsage, so it is checked here.
        if info.key_usage.is_some_and(|ku| ku & KU_KEY_CERT_SIGN == 0) {
            return Err(fail(
                ReasonCode::KeyUsageViolation,
                format!(
                    "CA certificate {} does not assert keyCertSign",
                    info.subject
                ),
            ));
        }
        certs.push(info);
    }
    let anchor = trust.anchor_info(anchor_index).cloned().ok_or_else(|| {
        fail(
            ReasonCode::InvalidChain,
            "path ended at an unknown anchor".into(),
        )
    })?;
    certs.push(anchor);
    Ok(ValidatedPath { certs })
}

/// Turns a webpki error into a reason code and a sentence naming the
/// certificate concerned where it can be found.
fn explain(
    e: &webpki::Error,
    leaf: &CertInfo,
    intermediates: &[CertificateDer<'_>],
    trust: &TrustStore,
    at: UnixTime,
) -> PathFailure {
    let code = map_error(e);
    let now = i64::try_from(at.as_secs()).unwrap_or(i64::MAX);
    let others: Vec<CertInfo> = intermediates
        .iter()
        .filter_map(|d| CertInfo::parse(d).ok())
        .collect();
    let parsed_all = others.len() == intermediates.len();
    if code == ReasonCode::MalformedCertificate && parsed_all {
        // x509-parser read every certificate, so the DER is sound: webpki
        // refuses something RFC 5280 allows (UTCTime years before 1970,
        // issuer/subject unique identifiers, ...).
        return PathFailure {
            code: ReasonCode::UnsupportedCertificateEncoding,
            detail: format!(
                "the path validator rejects a certificate encoding RFC 5280 permits ({e:?})"
            ),
        };
    }
    if matches!(code, ReasonCode::PathLenExceeded | ReasonCode::BadSignature)
        && others.iter().any(|c| c.is_ca && c.self_issued())
    {
        // RFC 5280 §6.1.4 (l): self-issued certificates do not count toward
        // path length; webpki counts them, and a rollover certificate also
        // offers a same-named candidate whose signature fails.
        return PathFailure {
            code: ReasonCode::UnsupportedSelfIssuedIntermediate,
            detail: format!(
                "path building failed on a path with a self-issued intermediate ({e:?})"
            ),
        };
    }
    let detail = match code {
        ReasonCode::Expired | ReasonCode::NotYetValid => {
            let culprit = std::iter::once(leaf)
                .chain(others.iter())
                .find(|c| now > c.not_after || now < c.not_before);
            match culprit {
                Some(c) if now > c.not_after => format!(
                    "certificate {} expired at {}",
                    c.subject,
                    crate::text::rfc3339(c.not_after)
                ),
                Some(c) => format!(
                    "certificate {} is not valid before {}",
                    c.subject,
                    crate::text::rfc3339(c.not_before)
                ),
                None => format!("a certificate in the path is outside its validity period ({e:?})"),
            }
        }
        ReasonCode::UnknownIssuer => {
            // RFC 5280 §7.1 allows names that differ in case or whitespace to
            // chain; webpki compares bytes. Say so instead of "unknown".
            let issuers = std::iter::once(leaf).chain(others.iter());
            let normalized_only = issuers.clone().any(|c| {
                let byte_match = others.iter().any(|o| o.subject_der() == c.issuer_der())
                    || trust.has_subject_bytes(c.issuer_der());
                !byte_match
                    && (others
                        .iter()
                        .any(|o| crate::name::names_match(o.subject_der(), c.issuer_der()))
                        || trust.has_subject(c.issuer_der()))
            });
            if normalized_only {
                return PathFailure {
                    code: ReasonCode::UnsupportedNameMatching,
                    detail: "issuer and subject names match only after RFC 5280 §7.1 normalization, which path building does not support".into(),
                };
            }
            format!("no path from {} to a trust anchor", leaf.subject)
        }
        ReasonCode::WrongUsage => format!(
            "certificate {} does not allow the requested usage",
            leaf.subject
        ),
        ReasonCode::BadSignature => "a certificate signature in the path does not verify".into(),
        _ => format!("path validation failed: {e:?}"),
    };
    PathFailure { code, detail }
}

#[allow(deprecated)]
fn map_error(e: &webpki::Error) -> ReasonCode {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => ReasonCode::UnknownIssuer,
        E::CertExpired { .. } => ReasonCode::Expired,
        E::CertNotValidYet { .. } => ReasonCode::NotYetValid,
        E::InvalidSignatureForPublicKey => ReasonCode::BadSignature,
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            ReasonCode::WrongUsage
        }
        E::CertNotValidForName(_) => ReasonCode::NameMismatch,
        E::EndEntityUsedAsCa => ReasonCode::NotACa,
        E::CaUsedAsEndEntity => ReasonCode::UnsupportedCaEndEntity,
        E::PathLenConstraintViolated => ReasonCode::PathLenExceeded,
        E::NameConstraintViolation | E::MalformedNameConstraint => {
            ReasonCode::NameConstraintViolation
        }
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => ReasonCode::UnsupportedSignatureAlgorithm,
        E::UnsupportedCriticalExtension => ReasonCode::UnsupportedCriticalExtension,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::ExtensionValueInvalid
        | E::MalformedExtensions
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::UnsupportedCertVersion => ReasonCode::MalformedCertificate,
        E::MaximumPathDepthExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumNameConstraintComparisonsExceeded => ReasonCode::PathTooComplex,
        E::CertDistrusted => ReasonCode::Distrusted,
        _ => ReasonCode::InvalidChain,
    }
}
