//! CRL parsing and verification (RFC 5280 §5 and §6.3.3).
//!
//! Parsing walks the DER once without allocating per entry; verification
//! checks the signature over tbsCertList with the issuer's key (ring, through
//! rustls-webpki's algorithm table) and then builds a hash index of the
//! revoked serials, so that later lookups never touch the signature again.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls_pki_types::SignatureVerificationAlgorithm;

use super::index::{RevokedEntry, SerialIndex, SerialIndexBuilder};
use super::{reasons, Reason};
use crate::der::{self, tag, DerError, Reader};

mod parse;
#[cfg(test)]
mod tests;

pub use parse::ParsedCrl;
pub(crate) use parse::{dotted, for_each_extension};

/// OIDs (content octets) of the CRL and entry extensions Vigil knows.
mod oid {
    pub(super) const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
    pub(super) const REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
    pub(super) const INVALIDITY_DATE: &[u8] = &[0x55, 0x1d, 0x18];
    pub(super) const DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
    pub(super) const ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1d, 0x1c];
    pub(super) const CERTIFICATE_ISSUER: &[u8] = &[0x55, 0x1d, 0x1d];
    pub(super) const AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
    pub(super) const FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
    pub(super) const ISSUER_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x12];
    pub(super) const AUTHORITY_INFO_ACCESS: &[u8] =
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
}

/// Why a CRL could not be parsed or verified.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlError {
    /// The bytes are not a DER CertificateList.
    Malformed {
        /// Which part failed and how.
        detail: String,
    },
    /// A version other than v1 or v2 (RFC 5280 §5.1.2.1).
    UnsupportedVersion,
    /// tbsCertList.signature differs from signatureAlgorithm (RFC 5280 §5.1.1.2).
    SignatureAlgorithmMismatch,
    /// No supported algorithm for this signature and issuer key.
    UnsupportedSignatureAlgorithm,
    /// The signature does not verify with the issuer's key.
    BadSignature,
    /// The CRL's issuer name is not the signer's subject name.
    IssuerMismatch,
    /// The signer's keyUsage lacks cRLSign (RFC 5280 §4.2.1.3, §6.3.3 (f)).
    SignerNotCrlSigner,
    /// The CRL has no cRLNumber extension, which RFC 5280 §5.2.3 requires in
    /// every CRL (complete and delta, §5.2.4); without it CRL issues can't be
    /// ordered, so a rollback to an older issue could not be told apart.
    MissingCrlNumber,
    /// The CRL's cRLNumber extension is marked critical (RFC 5280 §5.2.3:
    /// it MUST be non-critical).
    CriticalCrlNumber,
}

impl fmt::Display for CrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { detail } => write!(f, "malformed CRL: {detail}"),
            Self::UnsupportedVersion => f.write_str("unsupported CRL version"),
            Self::SignatureAlgorithmMismatch => {
                f.write_str("CRL signature algorithm fields disagree")
            }
            Self::UnsupportedSignatureAlgorithm => {
                f.write_str("unsupported CRL signature algorithm for the issuer's key")
            }
            Self::BadSignature => {
                f.write_str("CRL signature does not verify with the issuer's key")
            }
            Self::IssuerMismatch => f.write_str("CRL issuer does not match the signer"),
            Self::SignerNotCrlSigner => f.write_str("CRL signer's key usage lacks cRLSign"),
            Self::MissingCrlNumber => {
                f.write_str("CRL has no cRLNumber extension (required by RFC 5280 §5.2.3)")
            }
            Self::CriticalCrlNumber => {
                f.write_str("CRL's cRLNumber extension is critical (RFC 5280 §5.2.3: non-critical)")
            }
        }
    }
}

impl std::error::Error for CrlError {}

fn malformed(what: &str) -> impl Fn(DerError) -> CrlError + '_ {
    move |e| CrlError::Malformed {
        detail: format!("{what}: {e}"),
    }
}

/// Scope of a CRL from its issuingDistributionPoint (RFC 5280 §5.2.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdpScope {
    /// fullName GeneralNames, each the DER of one GeneralName.
    pub full_names: Vec<Vec<u8>>,
    /// nameRelativeToCRLIssuer, as a DER RelativeDistinguishedName.
    pub relative_name: Option<Vec<u8>>,
    /// onlyContainsUserCerts
    pub only_user: bool,
    /// onlyContainsCACerts
    pub only_ca: bool,
    /// onlySomeReasons as a ReasonFlags mask.
    pub only_some_reasons: Option<u16>,
    /// indirectCRL
    pub indirect: bool,
    /// onlyContainsAttributeCerts
    pub only_attribute: bool,
}

/// A feature of a CRL that Vigil does not implement; such a CRL is never used
/// to say a certificate is good (RFC 5280 §5.2, §5.3: unprocessable critical
/// extensions make a CRL unusable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// A critical CRL or entry extension Vigil cannot process (dotted OID).
    CriticalExtension(String),
    /// certificateIssuer entries in a CRL that is not marked indirect
    /// (RFC 5280 §5.3.3 allows them only in indirect CRLs).
    IndirectCrl,
}

/// Revoked entries: by serial, or for indirect CRLs by (certificate
/// issuer's name key, serial).
enum Index {
    Direct(SerialIndex),
    Indirect(IndirectIndex),
}

/// (certificate issuer's name key, serial) -> entry.
type IndirectIndex = HashMap<(Vec<u8>, Vec<u8>), RevokedEntry>;

/// Orders non-negative INTEGER content octets numerically.
pub(crate) fn cmp_unsigned(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let trim = |n: &[u8]| -> usize { n.iter().take_while(|b| **b == 0).count() };
    let (a, b) = (&a[trim(a)..], &b[trim(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The name key of the first directoryName in GeneralNames (DER).
pub(crate) fn directory_name_key(general_names: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader::new(der::single(general_names, tag::SEQUENCE).ok()?);
    while !r.is_empty() {
        if let (0xa4, inner, _) = r.read_any().ok()? {
            return Some(crate::name::name_key(inner));
        }
    }
    None
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// revokedCertificates at least this long (about 20,000 entries) are
/// indexed while their signature is checked on another thread; below it a
/// thread costs more than it saves.
const PARALLEL_CHECK_BYTES: usize = 1 << 20;

/// A CRL whose signature, issuer and signer were verified. Only
/// [`ParsedCrl::verify`] makes one.
pub struct VerifiedCrl {
    issuer: Vec<u8>,
    this_update: i64,
    next_update: Option<i64>,
    number: Option<Vec<u8>>,
    delta_base: Option<Vec<u8>>,
    idp: Option<IdpScope>,
    freshest: bool,
    unsupported: Option<Unsupported>,
    signer_fingerprint: [u8; 32],
    index: Index,
    issuer_key: Vec<u8>,
    serial: u64,
}

impl VerifiedCrl {
    /// Parses and verifies in one step.
    pub fn from_der(der: &[u8], signer: &CrlSigner) -> Result<Self, CrlError> {
        ParsedCrl::from_der(der)?.verify(signer)
    }

    /// The issuer Name, DER.
    pub fn issuer(&self) -> &[u8] {
        &self.issuer
    }

    /// thisUpdate, Unix seconds.
    pub fn this_update(&self) -> i64 {
        self.this_update
    }

    /// nextUpdate, Unix seconds (absent in non-conforming CRLs).
    pub fn next_update(&self) -> Option<i64> {
        self.next_update
    }

    /// cRLNumber content octets (RFC 5280 §5.2.3).
    pub fn number(&self) -> Option<&[u8]> {
        self.number.as_deref()
    }

    /// The issuingDistributionPoint scope, if any.
    pub fn scope(&self) -> Option<&IdpScope> {
        self.idp.as_ref()
    }

    /// Whether the CRL points to delta CRLs (freshestCRL, RFC 5280 §5.2.6).
    pub fn has_freshest_crl(&self) -> bool {
        self.freshest
    }

    /// The delta CRL's base CRL number, for delta CRLs.
    pub fn delta_base(&self) -> Option<&[u8]> {
        self.delta_base.as_deref()
    }

    /// What in this CRL Vigil does not implement, if anything.
    pub fn unsupported(&self) -> Option<&Unsupported> {
        self.unsupported.as_ref()
    }

    /// SHA-256 of the certificate whose key verified the signature.
    pub fn signer_fingerprint(&self) -> &[u8; 32] {
        &self.signer_fingerprint
    }

    /// Number of revoked entries.
    pub fn len(&self) -> usize {
        match &self.index {
            Index::Direct(i) => i.len(),
            Index::Indirect(m) => m.len(),
        }
    }

    /// Whether the CRL lists no certificate.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry for a certificate serial (raw INTEGER content octets)
    /// issued by the CRL issuer itself.
    pub fn lookup(&self, serial: &[u8]) -> Option<RevokedEntry> {
        match &self.index {
            Index::Direct(i) => i.get(serial),
            Index::Indirect(m) => m.get(&(self.issuer_key.clone(), serial.to_vec())).copied(),
        }
    }

    /// The entry for a certificate of the issuer whose name key is given
    /// (indirect CRLs list certificates of several issuers).
    pub(crate) fn lookup_cert(&self, issuer_key: &[u8], serial: &[u8]) -> Option<RevokedEntry> {
        match &self.index {
            Index::Direct(i) if issuer_key == self.issuer_key.as_slice() => i.get(serial),
            Index::Direct(_) => None,
            Index::Indirect(m) => m.get(&(issuer_key.to_vec(), serial.to_vec())).copied(),
        }
    }

    /// Every entry as (certificate issuer's name key, serial, entry).
    pub(crate) fn entries(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8], RevokedEntry)> + '_> {
        match &self.index {
            Index::Direct(i) => Box::new(
                i.iter()
                    .map(move |(serial, e)| (self.issuer_key.as_slice(), serial, e)),
            ),
            Index::Indirect(m) => Box::new(
                m.iter()
                    .map(|((issuer, serial), e)| (issuer.as_slice(), serial.as_slice(), *e)),
            ),
        }
    }

    /// Whether this is `parsed` as loaded: same issuer Name, thisUpdate,
    /// nextUpdate, cRLNumber, delta base and scope. Two CRLs alike in all of
    /// these are the same issue of one series (a verifier keeps one of them).
    pub(crate) fn is_issue_of(&self, parsed: &ParsedCrl<'_>) -> bool {
        self.issuer == parsed.issuer
            && self.this_update == parsed.this_update
            && self.next_update == parsed.next_update
            && self.number == parsed.number
            && self.delta_base == parsed.delta_base
            && self.idp == parsed.idp
    }

    /// Whether `other` is another issue of the same CRL: same issuer, same
    /// signing key, same scope, both complete or both delta (RFC 5280
    /// §5.2.3: cRLNumber increases within such a series).
    pub(crate) fn same_series(&self, other: &VerifiedCrl) -> bool {
        self.issuer_key == other.issuer_key
            && self.signer_fingerprint == other.signer_fingerprint
            && self.idp == other.idp
            && self.delta_base.is_some() == other.delta_base.is_some()
    }

    /// Orders two issues of one series: by cRLNumber when both have one,
    /// else by thisUpdate.
    pub(crate) fn series_order(&self, other: &VerifiedCrl) -> std::cmp::Ordering {
        match (self.number(), other.number()) {
            (Some(a), Some(b)) => cmp_unsigned(a, b),
            _ => self.this_update.cmp(&other.this_update),
        }
    }

    /// Whether this is an indirect CRL (issuingDistributionPoint indirectCRL).
    pub fn is_indirect(&self) -> bool {
        matches!(self.index, Index::Indirect(_))
    }

    /// The RFC 5280 §7.1 comparison key of the issuer name.
    pub(crate) fn issuer_key(&self) -> &[u8] {
        &self.issuer_key
    }

    /// Heap bytes retained by this CRL's index.
    pub fn retained_bytes(&self) -> usize {
        let index = match &self.index {
            Index::Direct(i) => i.heap_bytes(),
            Index::Indirect(m) => m.iter().map(|((a, b), _)| a.len() + b.len() + 64).sum(),
        };
        index + self.issuer.len() + self.issuer_key.len()
    }

    /// A process-unique identity of this loaded CRL, for cache keys.
    pub fn load_serial(&self) -> u64 {
        self.serial
    }

    /// Reasons this CRL covers: onlySomeReasons, or all of them.
    pub(crate) fn reasons(&self) -> u16 {
        self.idp
            .as_ref()
            .and_then(|i| i.only_some_reasons)
            .map_or(reasons::ALL, |m| m & reasons::ALL)
    }
}

impl fmt::Debug for VerifiedCrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCrl")
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

/// A key that may sign CRLs: a CA certificate (or trust anchor certificate).
#[derive(Clone, Debug)]
pub struct CrlSigner {
    pub(crate) subject: Vec<u8>,
    pub(crate) spki: Vec<u8>,
    pub(crate) ski: Option<Vec<u8>>,
    pub(crate) crl_sign: bool,
    pub(crate) fingerprint: [u8; 32],
}

impl CrlSigner {
    /// Takes the subject, key and keyUsage from a DER certificate. Whether the
    /// certificate itself is trusted is the caller's business.
    pub fn from_cert_der(der: &[u8]) -> Result<Self, crate::input::InputError> {
        Ok(Self::from_info(&crate::cert::CertInfo::parse(der)?))
    }

    pub(crate) fn from_info(info: &crate::cert::CertInfo) -> Self {
        Self {
            crl_sign: info
                .key_usage
                .is_none_or(|ku| ku & crate::cert::KU_CRL_SIGN != 0),
            subject: info.subject_der().to_vec(),
            spki: info.spki_der().to_vec(),
            ski: info.ski.clone(),
            fingerprint: info.sha256,
        }
    }

    /// The signer's subject Name, DER.
    pub fn subject(&self) -> &[u8] {
        &self.subject
    }

    /// The signer's subjectKeyIdentifier, when present.
    pub fn key_id(&self) -> Option<&[u8]> {
        self.ski.as_deref()
    }
}

/// RFC 5280 §6.3.3 (g): verify the CRL's signature with the signer's public
/// key. The algorithm is chosen by matching both the signatureAlgorithm and
/// the key's algorithm identifier, so a key can't be used with the wrong
/// algorithm.
pub(crate) fn verify_signature(
    spki: &[u8],
    sig_alg: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CrlError> {
    let (key_alg, key) = split_spki(spki).ok_or(CrlError::UnsupportedSignatureAlgorithm)?;
    let alg: &dyn SignatureVerificationAlgorithm = webpki::ALL_VERIFICATION_ALGS
        .iter()
        .copied()
        .find(|alg| {
            alg.signature_alg_id().as_ref() == sig_alg
                && alg.public_key_alg_id().as_ref() == key_alg
        })
        .ok_or(CrlError::UnsupportedSignatureAlgorithm)?;
    alg.verify_signature(key, message, signature)
        .map_err(|_| CrlError::BadSignature)
}

/// SubjectPublicKeyInfo -> (algorithm contents, public key bits).
fn split_spki(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut r = Reader::new(der::single(spki, tag::SEQUENCE).ok()?);
    let alg = r.read(tag::SEQUENCE).ok()?;
    let bits = r.read(tag::BIT_STRING).ok()?;
    r.finish().ok()?;
    match bits.split_first() {
        Some((0, key)) => Some((alg, key)),
        _ => None,
    }
}
