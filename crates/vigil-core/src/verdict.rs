//! The one verdict shape that the library, the HTTP API, the CLI and events
//! all serialize.

use std::sync::Arc;

use serde::Serialize;

use crate::cert::CertInfo;

/// Accepted or rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The chain may be used.
    Accepted,
    /// The chain must not be used.
    Rejected,
}

/// What is known about the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Valid path; every covered certificate has a fresh, verified "not revoked".
    Good,
    /// A covered certificate is revoked.
    Revoked,
    /// Valid path, but the revocation status of some certificate could not be
    /// determined (missing, stale, unusable or unsupported data).
    Unknown,
    /// The chain or its revocation data is invalid (bad path, bad signature).
    Invalid,
}

/// Stable, machine-readable reason codes. These strings are a contract: they
/// are never renamed, only added to.
///
/// | code | verdict | status | meaning |
/// |---|---|---|---|
/// | `ok` | accepted | good | valid path, revocation checked and good |
/// | `revocation_not_checked` | accepted | unknown | valid path, policy `off` |
/// | `revocation_unknown_soft_fail` | accepted | unknown | valid path, status unknown, policy `prefer` |
/// | `revoked` | rejected | revoked | a certificate in scope is revoked |
/// | `denied` | rejected | revoked | a certificate of the path is on the operator's deny list (see [`crate::DenyRule`]) |
/// | `revocation_data_missing` | rejected | unknown | no CRL covers a certificate in scope |
/// | `revocation_data_stale` | rejected | unknown | the only covering CRL is past its nextUpdate |
/// | `revocation_data_not_yet_valid` | rejected | unknown | the covering CRL's thisUpdate is in the future |
/// | `crl_signer_not_authorized` | rejected | unknown | the CRL issuer's key usage lacks cRLSign |
/// | `ocsp_unknown` | rejected | unknown | the OCSP responder answered `unknown` for the certificate (not good) |
/// | `ocsp_signature_invalid` | rejected | invalid | an OCSP answer for the certificate does not verify (never soft-failed) |
/// | `ocsp_responder_not_authorized` | rejected | invalid | an OCSP answer is signed by neither the issuer nor a responder it delegated to (never soft-failed) |
/// | `crl_signature_invalid` | rejected | invalid | a CRL for the issuer does not verify with its key (never soft-failed) |
/// | `unsupported_delta_crl` | rejected | unknown | a delta CRL Vigil cannot combine with a complete CRL (reserved; not emitted by this version) |
/// | `unsupported_indirect_crl` | rejected | unknown | the CRL lists certificateIssuer entries without being marked indirect (RFC 5280 §5.3.3) |
/// | `unsupported_critical_crl_extension` | rejected | unknown | the CRL has a critical (entry) extension Vigil cannot process |
/// | `unsupported_crl_scope` | rejected | unknown | the CRLs in scope cover only some revocation reasons (onlySomeReasons partitions left incomplete) |
/// | `unsupported_crl_signer` | rejected | unknown | the CRL is signed by another key (separate CRL signer, indirect CRL issuer) whose certificate could not be validated |
/// | `unknown_issuer` | rejected | invalid | no path to a trust anchor |
/// | `unsupported_name_matching` | rejected | invalid | names chain only after RFC 5280 §7.1 normalization, which path building does not do |
/// | `bad_signature` | rejected | invalid | a certificate's signature does not verify |
/// | `expired` | rejected | invalid | a certificate in the path is past notAfter |
/// | `not_yet_valid` | rejected | invalid | a certificate in the path is before notBefore |
/// | `wrong_usage` | rejected | invalid | the leaf's extended key usage does not allow the requested usage |
/// | `name_mismatch` | rejected | invalid | the leaf is not valid for the expected name |
/// | `not_a_ca` | rejected | invalid | an issuing certificate is not a CA (basicConstraints) |
/// | `unsupported_ca_end_entity` | rejected | invalid | the leaf is a CA certificate; RFC 5280 permits this, Vigil (like rustls-webpki) refuses it |
/// | `unsupported_self_issued_intermediate` | rejected | invalid | path building failed on a path with a self-issued intermediate (key rollover), which path-length processing does not exempt |
/// | `unsupported_certificate_encoding` | rejected | invalid | the path validator rejects an encoding RFC 5280 permits (e.g. a UTCTime before 1970, unique identifiers) |
/// | `path_len_exceeded` | rejected | invalid | a pathLenConstraint is violated |
/// | `key_usage_violation` | rejected | invalid | an issuing CA's keyUsage lacks keyCertSign |
/// | `name_constraint_violation` | rejected | invalid | a name constraint is violated |
/// | `unsupported_signature_algorithm` | rejected | invalid | a signature or key algorithm Vigil does not support (e.g. DSA, SHA-1) |
/// | `unsupported_critical_extension` | rejected | invalid | a certificate has a critical extension Vigil cannot process |
/// | `malformed_certificate` | rejected | invalid | a certificate is not valid DER/X.509 |
/// | `path_too_complex` | rejected | invalid | path building hit its limits |
/// | `distrusted` | rejected | invalid | the path uses a distrusted CA key |
/// | `invalid_chain` | rejected | invalid | any other path validation failure |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum ReasonCode {
    Ok,
    RevocationNotChecked,
    RevocationUnknownSoftFail,
    Revoked,
    Denied,
    RevocationDataMissing,
    RevocationDataStale,
    RevocationDataNotYetValid,
    CrlSignerNotAuthorized,
    CrlSignatureInvalid,
    OcspUnknown,
    OcspSignatureInvalid,
    OcspResponderNotAuthorized,
    UnsupportedDeltaCrl,
    UnsupportedIndirectCrl,
    UnsupportedCriticalCrlExtension,
    UnsupportedCrlScope,
    UnsupportedCrlSigner,
    UnknownIssuer,
    UnsupportedNameMatching,
    BadSignature,
    Expired,
    NotYetValid,
    WrongUsage,
    NameMismatch,
    NotACa,
    UnsupportedCaEndEntity,
    UnsupportedSelfIssuedIntermediate,
    UnsupportedCertificateEncoding,
    PathLenExceeded,
    KeyUsageViolation,
    NameConstraintViolation,
    UnsupportedSignatureAlgorithm,
    UnsupportedCriticalExtension,
    MalformedCertificate,
    PathTooComplex,
    Distrusted,
    InvalidChain,
}

/// The wire string of every code; a unit test keeps it total and unique.
const CODES: &[(ReasonCode, &str)] = &[
    (ReasonCode::Ok, "ok"),
    (ReasonCode::RevocationNotChecked, "revocation_not_checked"),
    (
        ReasonCode::RevocationUnknownSoftFail,
        "revocation_unknown_soft_fail",
    ),
    (ReasonCode::Revoked, "revoked"),
    (ReasonCode::Denied, "denied"),
    (ReasonCode::RevocationDataMissing, "revocation_data_missing"),
    (ReasonCode::RevocationDataStale, "revocation_data_stale"),
    (
        ReasonCode::RevocationDataNotYetValid,
        "revocation_data_not_yet_valid",
    ),
    (
        ReasonCode::CrlSignerNotAuthorized,
        "crl_signer_not_authorized",
    ),
    (ReasonCode::CrlSignatureInvalid, "crl_signature_invalid"),
    (ReasonCode::OcspUnknown, "ocsp_unknown"),
    (ReasonCode::OcspSignatureInvalid, "ocsp_signature_invalid"),
    (
        ReasonCode::OcspResponderNotAuthorized,
        "ocsp_responder_not_authorized",
    ),
    (ReasonCode::UnsupportedDeltaCrl, "unsupported_delta_crl"),
    (
        ReasonCode::UnsupportedIndirectCrl,
        "unsupported_indirect_crl",
    ),
    (
        ReasonCode::UnsupportedCriticalCrlExtension,
        "unsupported_critical_crl_extension",
    ),
    (ReasonCode::UnsupportedCrlScope, "unsupported_crl_scope"),
    (ReasonCode::UnsupportedCrlSigner, "unsupported_crl_signer"),
    (ReasonCode::UnknownIssuer, "unknown_issuer"),
    (
        ReasonCode::UnsupportedNameMatching,
        "unsupported_name_matching",
    ),
    (ReasonCode::BadSignature, "bad_signature"),
    (ReasonCode::Expired, "expired"),
    (ReasonCode::NotYetValid, "not_yet_valid"),
    (ReasonCode::WrongUsage, "wrong_usage"),
    (ReasonCode::NameMismatch, "name_mismatch"),
    (ReasonCode::NotACa, "not_a_ca"),
    (
        ReasonCode::UnsupportedCaEndEntity,
        "unsupported_ca_end_entity",
    ),
    (
        ReasonCode::UnsupportedSelfIssuedIntermediate,
        "unsupported_self_issued_intermediate",
    ),
    (
        ReasonCode::UnsupportedCertificateEncoding,
        "unsupported_certificate_encoding",
    ),
    (ReasonCode::PathLenExceeded, "path_len_exceeded"),
    (ReasonCode::KeyUsageViolation, "key_usage_violation"),
    (
        ReasonCode::NameConstraintViolation,
        "name_constraint_violation",
    ),
    (
        ReasonCode::UnsupportedSignatureAlgorithm,
        "unsupported_signature_algorithm",
    ),
    (
        ReasonCode::UnsupportedCriticalExtension,
        "unsupported_critical_extension",
    ),
    (ReasonCode::MalformedCertificate, "malformed_certificate"),
    (ReasonCode::PathTooComplex, "path_too_complex"),
    (ReasonCode::Distrusted, "distrusted"),
    (ReasonCode::InvalidChain, "invalid_chain"),
];

impl Serialize for ReasonCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl ReasonCode {
    /// Every code.
    pub fn all() -> impl Iterator<Item = ReasonCode> {
        CODES.iter().map(|(c, _)| *c)
    }

    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        CODES
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("invalid_chain", |(_, s)| s)
    }

    /// Revocation-status failures that `prefer` may soft-fail: status unknown.
    pub(crate) fn is_unknown_status(self) -> bool {
        matches!(
            self,
            Self::RevocationDataMissing
                | Self::RevocationDataStale
                | Self::RevocationDataNotYetValid
                | Self::CrlSignerNotAuthorized
                | Self::OcspUnknown
                | Self::UnsupportedDeltaCrl
                | Self::UnsupportedIndirectCrl
                | Self::UnsupportedCriticalCrlExtension
                | Self::UnsupportedCrlScope
                | Self::UnsupportedCrlSigner
        )
    }

    /// How specific a revocation failure is, to report the best one when
    /// several sources failed (higher wins).
    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Revoked => 100,
            Self::CrlSignatureInvalid
            | Self::OcspSignatureInvalid
            | Self::OcspResponderNotAuthorized => 90,
            Self::OcspUnknown => 65,
            Self::UnsupportedDeltaCrl
            | Self::UnsupportedIndirectCrl
            | Self::UnsupportedCriticalCrlExtension
            | Self::UnsupportedCrlScope
            | Self::UnsupportedCrlSigner => 80,
            Self::CrlSignerNotAuthorized => 70,
            Self::RevocationDataStale => 60,
            Self::RevocationDataNotYetValid => 50,
            Self::RevocationDataMissing => 10,
            _ => 0,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One certificate of the validated path, leaf first, anchor last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Subject DN (RFC 4514 style).
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number: the DER INTEGER content octets (minimal form);
    /// lowercase hex in JSON.
    #[serde(serialize_with = "crate::text::ser::hex")]
    pub serial: Vec<u8>,
    /// SHA-256 of the certificate DER; lowercase hex in JSON.
    #[serde(serialize_with = "crate::text::ser::hex")]
    pub sha256: [u8; 32],
    /// notBefore, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "crate::text::ser::rfc3339")]
    pub not_before: i64,
    /// notAfter, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "crate::text::ser::rfc3339")]
    pub not_after: i64,
}

impl CertSummary {
    pub(crate) fn of(cert: &crate::cert::CertInfo) -> Self {
        Self {
            subject: cert.subject.clone(),
            issuer: cert.issuer.to_string(),
            serial: cert.serial().to_vec(),
            sha256: cert.sha256,
            not_before: cert.not_before,
            not_after: cert.not_after,
        }
    }

    /// The summary of a DER certificate on its own (no path needed), e.g.
    /// to show a certificate whose path did not validate.
    pub fn from_der(der: &[u8]) -> Result<Self, crate::input::InputError> {
        crate::cert::CertInfo::parse(der).map(|c| Self::of(&c))
    }
}

/// Where a revocation answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A verified CRL.
    Crl,
    /// A verified OCSP response.
    Ocsp,
    /// No usable source.
    None,
}

/// Revocation status of one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    /// Not revoked, per fresh verified data.
    Good,
    /// Revoked.
    Revoked,
    /// Could not be determined.
    Unknown,
}

/// The revocation result for one certificate of the path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RevocationResult {
    /// Serial number (INTEGER content octets); lowercase hex in JSON.
    #[serde(serialize_with = "crate::text::ser::hex")]
    pub serial: Vec<u8>,
    /// Which source answered.
    pub source: Source,
    /// What that source says of the certificate: good, revoked or unknown.
    pub status: CertStatus,
    /// thisUpdate of the data used, Unix seconds; RFC 3339 in JSON, null
    /// when no data was used.
    #[serde(serialize_with = "crate::text::ser::rfc3339_opt")]
    pub this_update: Option<i64>,
    /// nextUpdate of the data used, Unix seconds; RFC 3339 in JSON, null
    /// when no data was used or it names none.
    #[serde(serialize_with = "crate::text::ser::rfc3339_opt")]
    pub next_update: Option<i64>,
    /// For `revoked`: the CRL reason (e.g. `keyCompromise`); for `unknown`:
    /// the reason code explaining why; null for `good`.
    pub reason: Option<String>,
    /// Subject DN of the certificate (an extension of the contract shape).
    pub subject: String,
    /// For `revoked`: the revocation date, Unix seconds; RFC 3339 in JSON.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::text::ser::rfc3339_opt"
    )]
    pub revoked_at: Option<i64>,
    /// Data about this certificate that failed a check and was set aside
    /// (an extension of the contract shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The outcome of verifying a chain. Only the verifier makes one
/// (`#[non_exhaustive]`, and an accepted verdict carries a private proof):
/// [`Verdict::accepted_path`] turns an accepted verdict into the
/// [`AcceptedPath`] that [`crate::Registry::track`] requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Verdict {
    /// Accepted or rejected.
    pub verdict: Decision,
    /// What is known.
    pub status: Status,
    /// Stable machine-readable reason.
    pub reason: ReasonCode,
    /// One human-readable sentence.
    pub detail: String,
    /// The validated path, leaf first (empty when no path was found).
    pub chain: Vec<CertSummary>,
    /// Per-certificate revocation results, leaf first.
    pub revocation: Vec<RevocationResult>,
    /// When this verdict stops holding on its own (earliest notAfter or
    /// nextUpdate), Unix seconds; RFC 3339 in JSON, null when no path was
    /// found.
    #[serde(serialize_with = "crate::text::ser::rfc3339_opt")]
    pub valid_until: Option<i64>,
    /// What only an accepted verification carries (never serialized).
    #[serde(skip)]
    pub(crate) proof: Option<Arc<Proof>>,
}

/// The validated path and the facts the registry tracks a connection by,
/// set by the verifier on accepted verdicts only. Private: the public
/// fields of a [`Verdict`] clone can be rewritten, these cannot.
pub(crate) struct Proof {
    /// The validated path, leaf first, anchor last.
    pub(crate) path: Arc<[Arc<CertInfo>]>,
    /// Unix seconds: as [`Verdict::valid_until`].
    pub(crate) valid_until: i64,
    /// Accepted although the revocation status is unknown (soft-fail, or
    /// revocation checking off).
    pub(crate) degraded: bool,
}

impl PartialEq for Proof {
    fn eq(&self, other: &Self) -> bool {
        self.valid_until == other.valid_until
            && self.degraded == other.degraded
            && self.path.len() == other.path.len()
            && self
                .path
                .iter()
                .zip(other.path.iter())
                .all(|(a, b)| a.sha256 == b.sha256)
    }
}

impl Eq for Proof {}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("certificates", &self.path.len())
            .field("valid_until", &self.valid_until)
            .field("degraded", &self.degraded)
            .finish()
    }
}

/// Proof that a chain was verified and accepted, as rustls's
/// `ClientCertVerified`: only an accepted [`Verdict`] made by the verifier
/// yields one ([`Verdict::accepted_path`]), and it is the only thing
/// [`crate::Registry::track`] tracks. It holds the validated path itself
/// (parsed, leaf first, anchor last), so the registry indexes what was
/// verified, not what a caller says was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedPath {
    verdict: Arc<Verdict>,
    proof: Arc<Proof>,
}

impl AcceptedPath {
    /// The accepted verdict.
    pub fn verdict(&self) -> &Arc<Verdict> {
        &self.verdict
    }

    /// The validated path, leaf first, anchor last (never empty).
    pub(crate) fn path(&self) -> &[Arc<CertInfo>] {
        &self.proof.path
    }

    /// When the verdict stops holding on its own, Unix seconds.
    pub(crate) fn valid_until(&self) -> i64 {
        self.proof.valid_until
    }

    /// Accepted with the revocation status unknown.
    pub(crate) fn degraded(&self) -> bool {
        self.proof.degraded
    }
}

impl Verdict {
    /// Whether the chain was accepted.
    pub fn is_accepted(&self) -> bool {
        self.verdict == Decision::Accepted
    }

    /// The proof the registry tracks a connection by: `Some` only for a
    /// verdict the verifier accepted.
    pub fn accepted_path(self: &Arc<Self>) -> Option<AcceptedPath> {
        let proof = self.proof.clone().filter(|_| self.is_accepted())?;
        Some(AcceptedPath {
            verdict: Arc::clone(self),
            proof,
        })
    }

    /// A rejection with no path, for tests of code that maps verdicts
    /// (e.g. reason codes to TLS alerts). It carries no proof: it can never
    /// be tracked.
    #[doc(hidden)]
    pub fn rejected_for_tests(status: Status, reason: ReasonCode, detail: &str) -> Self {
        Self {
            verdict: Decision::Rejected,
            status,
            reason,
            detail: detail.to_owned(),
            chain: Vec::new(),
            revocation: Vec::new(),
            valid_until: None,
            proof: None,
        }
    }

    /// JSON, the contract shape.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"serialization\",\"detail\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_unique_snake_case_name() {
        let names: std::collections::BTreeSet<&str> =
            ReasonCode::all().map(ReasonCode::as_str).collect();
        assert_eq!(names.len(), CODES.len());
        for code in ReasonCode::all() {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json.as_str(), Some(code.as_str()));
            assert!(code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(
            ReasonCode::UnsupportedDeltaCrl.as_str(),
            "unsupported_delta_crl"
        );
    }
}
