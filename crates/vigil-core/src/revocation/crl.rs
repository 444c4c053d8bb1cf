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
use crate::x509::distribution_point_name;

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

/// A CRL whose structure was parsed but whose signature is not yet verified.
/// Nothing in it may be trusted until [`ParsedCrl::verify`] succeeds.
pub struct ParsedCrl<'a> {
    tbs: &'a [u8],
    sig_alg: &'a [u8],
    signature: &'a [u8],
    signature_well_formed: bool,
    issuer: &'a [u8],
    this_update: i64,
    next_update: Option<i64>,
    revoked: Option<&'a [u8]>,
    number: Option<Vec<u8>>,
    delta_base: Option<Vec<u8>>,
    aki: Option<Vec<u8>>,
    idp: Option<IdpScope>,
    freshest: bool,
    unsupported: Option<Unsupported>,
}

impl<'a> ParsedCrl<'a> {
    /// Parses a DER CertificateList (RFC 5280 §5.1). Entries are checked for
    /// well-formedness only when the CRL is verified and indexed.
    pub fn from_der(der: &'a [u8]) -> Result<Self, CrlError> {
        let cert_list = der::single(der, tag::SEQUENCE).map_err(malformed("CertificateList"))?;
        let mut outer = Reader::new(cert_list);
        let tbs = outer
            .read_element(tag::SEQUENCE)
            .map_err(malformed("tbsCertList"))?;
        let sig_alg = outer
            .read(tag::SEQUENCE)
            .map_err(malformed("signatureAlgorithm"))?;
        let sig_bits = outer
            .read(tag::BIT_STRING)
            .map_err(malformed("signatureValue"))?;
        outer.finish().map_err(malformed("CertificateList"))?;
        // A signature BIT STRING with unused bits can't be a valid signature;
        // that is a bad signature (PKITS 4.4.4), not an unreadable CRL.
        let (signature, signature_well_formed) = match sig_bits.split_first() {
            Some((0, sig)) => (sig, true),
            Some((_, sig)) => (sig, false),
            None => {
                return Err(CrlError::Malformed {
                    detail: "empty signatureValue".into(),
                })
            }
        };

        let mut r = Reader::new(der::single(tbs, tag::SEQUENCE).map_err(malformed("tbsCertList"))?);
        let version = match r
            .read_optional(tag::INTEGER)
            .map_err(malformed("version"))?
        {
            None => 1,
            Some(v) => match der::small_unsigned(v) {
                Ok(1) => 2,
                _ => return Err(CrlError::UnsupportedVersion),
            },
        };
        let inner_alg = r.read(tag::SEQUENCE).map_err(malformed("signature"))?;
        if inner_alg != sig_alg {
            return Err(CrlError::SignatureAlgorithmMismatch);
        }
        let issuer = r.read_element(tag::SEQUENCE).map_err(malformed("issuer"))?;
        let this_update = read_time(&mut r).map_err(malformed("thisUpdate"))?;
        let next_update = match r.peek_tag() {
            Some(tag::UTC_TIME | tag::GENERALIZED_TIME) => {
                Some(read_time(&mut r).map_err(malformed("nextUpdate"))?)
            }
            _ => None,
        };
        let revoked = r
            .read_optional(tag::SEQUENCE)
            .map_err(malformed("revokedCertificates"))?;
        let extensions = r
            .read_optional(tag::CONTEXT_0)
            .map_err(malformed("crlExtensions"))?;
        r.finish().map_err(malformed("tbsCertList"))?;

        let mut crl = Self {
            tbs,
            sig_alg,
            signature,
            signature_well_formed,
            issuer,
            this_update,
            next_update,
            revoked,
            number: None,
            delta_base: None,
            aki: None,
            idp: None,
            freshest: false,
            unsupported: None,
        };
        if let Some(extensions) = extensions {
            if version == 1 {
                return Err(CrlError::Malformed {
                    detail: "v1 CRL with extensions".into(),
                });
            }
            crl.read_extensions(extensions)?;
        }
        // RFC 5280 §5.2.3: "conforming CRL issuers MUST include this
        // extension in all CRLs" (delta CRLs too, §5.2.4), so a v1 CRL, which
        // has no extensions, is refused as well. Refusing at parse time keeps
        // every path (fetch, `--crl`, store, `vigil check`) on the same rule.
        if crl.number.is_none() {
            return Err(CrlError::MissingCrlNumber);
        }
        Ok(crl)
    }

    /// RFC 5280 §5.2: CRL extensions.
    fn read_extensions(&mut self, explicit: &[u8]) -> Result<(), CrlError> {
        let list = der::single(explicit, tag::SEQUENCE).map_err(malformed("crlExtensions"))?;
        let mut seen: Vec<&[u8]> = Vec::new();
        for_each_extension(list, |id, critical, value| {
            if seen.contains(&id) {
                return Err(CrlError::Malformed {
                    detail: "duplicate CRL extension".into(),
                });
            }
            seen.push(id);
            match id {
                oid::CRL_NUMBER => {
                    // RFC 5280 §5.2.3: "This extension MUST NOT be marked critical."
                    if critical {
                        return Err(CrlError::CriticalCrlNumber);
                    }
                    let n = der::single(value, tag::INTEGER).map_err(malformed("cRLNumber"))?;
                    self.number = Some(crl_number(n)?);
                }
                oid::DELTA_CRL_INDICATOR => {
                    let n =
                        der::single(value, tag::INTEGER).map_err(malformed("deltaCRLIndicator"))?;
                    self.delta_base = Some(crl_number(n)?);
                }
                oid::AUTHORITY_KEY_IDENTIFIER => {
                    let aki = der::single(value, tag::SEQUENCE)
                        .map_err(malformed("authorityKeyIdentifier"))?;
                    let mut r = Reader::new(aki);
                    // keyIdentifier [0] IMPLICIT OCTET STRING
                    self.aki = r
                        .read_optional(0x80)
                        .map_err(malformed("authorityKeyIdentifier"))?
                        .map(<[u8]>::to_vec);
                }
                oid::ISSUING_DISTRIBUTION_POINT => {
                    let idp = parse_idp(value)?;
                    self.idp = Some(idp);
                }
                oid::FRESHEST_CRL => self.freshest = true,
                oid::ISSUER_ALT_NAME | oid::AUTHORITY_INFO_ACCESS => {}
                other if critical => self.mark(Unsupported::CriticalExtension(dotted(other))),
                _ => {}
            }
            Ok(())
        })
    }

    fn mark(&mut self, what: Unsupported) {
        if self.unsupported.is_none() {
            self.unsupported = Some(what);
        }
    }

    /// The issuer Name, DER.
    pub fn issuer(&self) -> &'a [u8] {
        self.issuer
    }

    /// The authorityKeyIdentifier keyIdentifier, when present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.aki.as_deref()
    }

    /// thisUpdate, Unix seconds.
    pub fn this_update(&self) -> i64 {
        self.this_update
    }

    /// cRLNumber content octets, when present (unverified until
    /// [`ParsedCrl::verify`]).
    pub fn number(&self) -> Option<&[u8]> {
        self.number.as_deref()
    }

    /// nextUpdate, Unix seconds.
    pub fn next_update(&self) -> Option<i64> {
        self.next_update
    }

    /// The signer checks of [`ParsedCrl::verify`] without indexing: issuer
    /// name, cRLSign, and the signature over tbsCertList (RFC 5280 §6.3.3
    /// (f), (g)).
    pub fn check_signature(&self, signer: &CrlSigner) -> Result<(), CrlError> {
        if !crate::name::names_match(self.issuer, &signer.subject) {
            return Err(CrlError::IssuerMismatch);
        }
        if !signer.crl_sign {
            return Err(CrlError::SignerNotCrlSigner);
        }
        if !self.signature_well_formed {
            return Err(CrlError::BadSignature);
        }
        verify_signature(&signer.spki, self.sig_alg, self.tbs, self.signature)
    }

    /// Verifies the CRL against `signer` (RFC 5280 §6.3.3 (f), (g)) and
    /// indexes its entries (§5.1.2.6, §5.3).
    pub fn verify(&self, signer: &CrlSigner) -> Result<VerifiedCrl, CrlError> {
        let mut unsupported = self.unsupported.clone();
        let index = if self.revoked.map_or(0, <[u8]>::len) >= PARALLEL_CHECK_BYTES {
            // A large CRL: the signature (a hash over every octet) is
            // checked on a second thread while the entries are indexed;
            // the index is used only if the signature verifies.
            std::thread::scope(|scope| {
                let signature = std::thread::Builder::new()
                    .name("vigil-crl-signature".into())
                    .spawn_scoped(scope, || self.check_signature(signer));
                let index = self.index_entries(&mut unsupported);
                match signature {
                    Ok(handle) => handle.join().unwrap_or(Err(CrlError::BadSignature))?,
                    // No thread to be had: check it here.
                    Err(_) => self.check_signature(signer)?,
                }
                index
            })?
        } else {
            self.check_signature(signer)?;
            self.index_entries(&mut unsupported)?
        };
        let issuer_key = crate::name::name_key(self.issuer);
        Ok(VerifiedCrl {
            issuer: self.issuer.to_vec(),
            this_update: self.this_update,
            next_update: self.next_update,
            number: self.number.clone(),
            delta_base: self.delta_base.clone(),
            idp: self.idp.clone(),
            freshest: self.freshest,
            unsupported,
            signer_fingerprint: signer.fingerprint,
            index,
            issuer_key,
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// revokedCertificates (RFC 5280 §5.1.2.6, §5.3). In an indirect CRL
    /// (§5.2.5, §5.3.3) each entry belongs to the certificate issuer named by
    /// the nearest certificateIssuer extension at or before it, or to the
    /// CRL issuer before the first one.
    fn index_entries(&self, unsupported: &mut Option<Unsupported>) -> Result<Index, CrlError> {
        let indirect = self.idp.as_ref().is_some_and(|i| i.indirect);
        let list = self.revoked.unwrap_or_default();
        // Count first (headers only) so the index is allocated once, exactly.
        let mut count = 0usize;
        let mut r = Reader::new(list);
        while !r.is_empty() {
            r.read_any().map_err(malformed("revokedCertificates"))?;
            count += 1;
        }
        let mut direct = SerialIndexBuilder::with_capacity(if indirect { 0 } else { count });
        let mut by_issuer = IndirectIndex::new();
        let mut current = indirect.then(|| crate::name::name_key(self.issuer));
        let mut r = Reader::new(list);
        while !r.is_empty() {
            let entry = r
                .read(tag::SEQUENCE)
                .map_err(malformed("revokedCertificate"))?;
            let mut e = Reader::new(entry);
            let serial = e.read(tag::INTEGER).map_err(malformed("userCertificate"))?;
            let serial = der::integer(serial).map_err(malformed("userCertificate"))?;
            let revoked_at = read_time(&mut e).map_err(malformed("revocationDate"))?;
            let (reason, certificate_issuer) = match e.rest() {
                [] => (None, None),
                // The common shape, a lone non-critical reasonCode, decoded
                // without the generic walk (same checks, a fraction of the cost).
                [0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, code] => {
                    (
                        Some(Reason::from_code(*code).ok_or_else(unknown_reason)?),
                        None,
                    )
                }
                _ => entry_extensions(&mut e, unsupported)?,
            };
            let entry = RevokedEntry { revoked_at, reason };
            match (&mut current, certificate_issuer) {
                (Some(issuer), Some(named)) => *issuer = named,
                (None, Some(_)) => {
                    unsupported.get_or_insert(Unsupported::IndirectCrl);
                }
                _ => {}
            }
            match &current {
                Some(issuer) => {
                    by_issuer
                        .entry((issuer.clone(), serial.to_vec()))
                        .or_insert(entry);
                }
                None => direct.insert(serial, entry),
            }
        }
        Ok(if indirect {
            Index::Indirect(by_issuer)
        } else {
            Index::Direct(direct.build())
        })
    }
}

/// crlEntryExtensions (RFC 5280 §5.3) in general form: the reason code and
/// the certificateIssuer's name key, if any.
fn entry_extensions(
    e: &mut Reader<'_>,
    unsupported: &mut Option<Unsupported>,
) -> Result<(Option<Reason>, Option<Vec<u8>>), CrlError> {
    let mut reason = None;
    let mut certificate_issuer = None;
    if let Some(exts) = e
        .read_optional(tag::SEQUENCE)
        .map_err(malformed("crlEntryExtensions"))?
    {
        for_each_extension(exts, |id, critical, value| {
            match id {
                oid::REASON_CODE => {
                    let code =
                        der::single(value, tag::ENUMERATED).map_err(malformed("reasonCode"))?;
                    reason = Some(match code {
                        [c] => Reason::from_code(*c).ok_or_else(unknown_reason)?,
                        _ => return Err(unknown_reason()),
                    });
                }
                oid::CERTIFICATE_ISSUER => {
                    certificate_issuer =
                        Some(directory_name_key(value).ok_or(CrlError::Malformed {
                            detail: "certificateIssuer without a directoryName".into(),
                        })?);
                }
                oid::INVALIDITY_DATE => {}
                other if critical => {
                    unsupported.get_or_insert(Unsupported::CriticalExtension(dotted(other)));
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    e.finish().map_err(malformed("revokedCertificate"))?;
    Ok((reason, certificate_issuer))
}

fn unknown_reason() -> CrlError {
    CrlError::Malformed {
        detail: "unknown reasonCode".into(),
    }
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

fn read_time(r: &mut Reader<'_>) -> Result<i64, DerError> {
    let (t, value, _) = r.read_any()?;
    der::time(t, value)
}

fn crl_number(value: &[u8]) -> Result<Vec<u8>, CrlError> {
    let n = der::integer(value).map_err(malformed("cRLNumber"))?;
    // RFC 5280 §5.2.3: a non-negative integer of at most 20 octets.
    if n[0] & 0x80 != 0 || n.len() > 21 {
        return Err(CrlError::Malformed {
            detail: "cRLNumber out of range".into(),
        });
    }
    Ok(n.to_vec())
}

/// Calls `f(oid, critical, extnValue)` for each Extension (RFC 5280 §4.1).
pub(crate) fn for_each_extension<'a>(
    list: &'a [u8],
    mut f: impl FnMut(&'a [u8], bool, &'a [u8]) -> Result<(), CrlError>,
) -> Result<(), CrlError> {
    let mut r = Reader::new(list);
    while !r.is_empty() {
        let ext = r.read(tag::SEQUENCE).map_err(malformed("extension"))?;
        let mut e = Reader::new(ext);
        let id = e.read(tag::OID).map_err(malformed("extnID"))?;
        let critical = match e
            .read_optional(tag::BOOLEAN)
            .map_err(malformed("critical"))?
        {
            Some(b) => der::boolean(b).map_err(malformed("critical"))?,
            None => false,
        };
        let value = e.read(tag::OCTET_STRING).map_err(malformed("extnValue"))?;
        e.finish().map_err(malformed("extension"))?;
        f(id, critical, value)?;
    }
    Ok(())
}

/// issuingDistributionPoint (RFC 5280 §5.2.5).
fn parse_idp(value: &[u8]) -> Result<IdpScope, CrlError> {
    let bad = malformed("issuingDistributionPoint");
    let mut r = Reader::new(der::single(value, tag::SEQUENCE).map_err(&bad)?);
    let mut scope = IdpScope::default();
    if let Some(dpn) = r.read_optional(0xa0).map_err(&bad)? {
        let (names, relative) = distribution_point_name(dpn).map_err(&bad)?;
        scope.full_names = names;
        scope.relative_name = relative;
    }
    let flag = |r: &mut Reader<'_>, t: u8| -> Result<bool, CrlError> {
        match r.read_optional(t).map_err(&bad)? {
            Some(v) => der::boolean(v).map_err(&bad),
            None => Ok(false),
        }
    };
    scope.only_user = flag(&mut r, 0x81)?;
    scope.only_ca = flag(&mut r, 0x82)?;
    if let Some(bits) = r.read_optional(0x83).map_err(&bad)? {
        scope.only_some_reasons =
            Some(reasons::from_bit_string(bits).ok_or(CrlError::Malformed {
                detail: "issuingDistributionPoint: bad onlySomeReasons".into(),
            })?);
    }
    scope.indirect = flag(&mut r, 0x84)?;
    scope.only_attribute = flag(&mut r, 0x85)?;
    r.finish().map_err(&bad)?;
    if u8::from(scope.only_user) + u8::from(scope.only_ca) + u8::from(scope.only_attribute) > 1 {
        return Err(CrlError::Malformed {
            detail: "issuingDistributionPoint asserts more than one only* scope".into(),
        });
    }
    Ok(scope)
}

/// Dotted-decimal form of an OID's content octets, for messages.
pub(crate) fn dotted(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc = 0u64;
    for (i, b) in oid.iter().enumerate() {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let first = (acc / 40).min(2);
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_oids() {
        assert_eq!(dotted(oid::CRL_NUMBER), "2.5.29.20");
        assert_eq!(dotted(oid::AUTHORITY_INFO_ACCESS), "1.3.6.1.5.5.7.1.1");
    }

    /// What to do with the cRLNumber extension when re-issuing a CRL.
    #[derive(Clone, Copy)]
    enum Number {
        Keep,
        Drop,
        Critical,
    }

    /// The fixture intermediate's CRL, re-issued (re-signed with the
    /// intermediate's P-256 key) with its cRLNumber kept, dropped or marked
    /// critical, optionally with a deltaCRLIndicator added or without any
    /// extension at all (a v1 CRL). Returns (CRL DER, signer certificate DER).
    fn reissued(number: Number, delta: bool, v1: bool) -> (Vec<u8>, Vec<u8>) {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).unwrap();
        let ca = pki.ca("intermediate").unwrap();
        let original = &pki.crl("intermediate.crl").unwrap().der;
        let mut outer = Reader::new(der::single(original, tag::SEQUENCE).unwrap());
        let tbs = outer.read(tag::SEQUENCE).unwrap();
        let alg = outer.read_element(tag::SEQUENCE).unwrap();
        let mut r = Reader::new(tbs);
        let version = r.read_element(tag::INTEGER).unwrap();
        let mut content = if v1 { Vec::new() } else { version.to_vec() };
        while r.peek_tag().is_some() {
            let (t, value, whole) = r.read_any().unwrap();
            if t != tag::CONTEXT_0 {
                content.extend_from_slice(whole);
                continue;
            }
            if v1 {
                continue;
            }
            let mut list = Vec::new();
            for_each_extension(
                der::single(value, tag::SEQUENCE).unwrap(),
                |id, critical, v| {
                    let mut ext = der::encode(tag::OID, id);
                    let critical = match (id == oid::CRL_NUMBER, number) {
                        (true, Number::Drop) => return Ok(()),
                        (true, Number::Critical) => true,
                        _ => critical,
                    };
                    if critical {
                        ext.extend(der::encode(tag::BOOLEAN, &[0xff]));
                    }
                    ext.extend(der::encode(tag::OCTET_STRING, v));
                    list.extend(der::encode(tag::SEQUENCE, &ext));
                    Ok(())
                },
            )
            .unwrap();
            if delta {
                // deltaCRLIndicator (RFC 5280 §5.2.4), critical, BaseCRLNumber 1.
                let mut ext = der::encode(tag::OID, oid::DELTA_CRL_INDICATOR);
                ext.extend(der::encode(tag::BOOLEAN, &[0xff]));
                ext.extend(der::encode(
                    tag::OCTET_STRING,
                    &der::encode(tag::INTEGER, &[1]),
                ));
                list.extend(der::encode(tag::SEQUENCE, &ext));
            }
            content.extend(der::encode(
                tag::CONTEXT_0,
                &der::encode(tag::SEQUENCE, &list),
            ));
        }
        let tbs = der::encode(tag::SEQUENCE, &content);
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &ca.cert.key_pkcs8_der,
            &rng,
        )
        .unwrap();
        let signature = key.sign(&rng, &tbs).unwrap();
        let mut bits = vec![0u8];
        bits.extend_from_slice(signature.as_ref());
        let mut body = tbs;
        body.extend_from_slice(alg);
        body.extend(der::encode(tag::BIT_STRING, &bits));
        (der::encode(tag::SEQUENCE, &body), ca.cert.der.clone())
    }

    /// A CRL long enough to be indexed while its signature is checked on
    /// another thread: the index is kept only when the signature verifies.
    #[test]
    fn a_large_crl_is_used_only_when_its_signature_verifies() {
        let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).unwrap();
        let spec = pki_fixtures::CrlSpec::synthetic(&pki.options, 40_000);
        let crl = pki.intermediate.crl(&spec).unwrap().der;
        let parsed = ParsedCrl::from_der(&crl).unwrap();
        assert!(parsed.revoked.map_or(0, <[u8]>::len) >= PARALLEL_CHECK_BYTES);
        let signer = CrlSigner::from_cert_der(&pki.intermediate.cert.der).unwrap();
        let verified = VerifiedCrl::from_der(&crl, &signer).unwrap();
        let mut listed = vec![0x5a; 12];
        listed.extend_from_slice(&39_999u32.to_be_bytes());
        assert_eq!(verified.len(), 40_000);
        assert!(verified.lookup(&listed).is_some());

        // The last octet of the signature changed: refused, not indexed.
        let mut bad = crl.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        assert!(matches!(
            VerifiedCrl::from_der(&bad, &signer),
            Err(CrlError::BadSignature | CrlError::Malformed { .. })
        ));
        // A CA of the same name with another key (a forgery).
        let forged = pki
            .intermediate
            .forged_crl(&spec, pki_fixtures::KeyAlg::EcdsaP256)
            .unwrap()
            .der;
        assert_eq!(
            VerifiedCrl::from_der(&forged, &signer).err(),
            Some(CrlError::BadSignature)
        );
    }

    #[test]
    fn a_crl_with_a_non_critical_crl_number_is_accepted() {
        let (crl, signer) = reissued(Number::Keep, false, false);
        let signer = CrlSigner::from_cert_der(&signer).unwrap();
        let verified = VerifiedCrl::from_der(&crl, &signer).unwrap();
        assert!(verified.number().is_some());
    }

    #[test]
    fn a_crl_without_crl_number_is_refused() {
        // RFC 5280 §5.2.3: conforming CRL issuers MUST include cRLNumber.
        let (crl, signer) = reissued(Number::Drop, false, false);
        assert_eq!(
            ParsedCrl::from_der(&crl).err(),
            Some(CrlError::MissingCrlNumber)
        );
        let signer = CrlSigner::from_cert_der(&signer).unwrap();
        assert_eq!(
            VerifiedCrl::from_der(&crl, &signer).err(),
            Some(CrlError::MissingCrlNumber)
        );
    }

    #[test]
    fn a_crl_with_a_critical_crl_number_is_refused() {
        // RFC 5280 §5.2.3: "This extension MUST NOT be marked critical."
        let (crl, _) = reissued(Number::Critical, false, false);
        assert_eq!(
            ParsedCrl::from_der(&crl).err(),
            Some(CrlError::CriticalCrlNumber)
        );
    }

    #[test]
    fn a_v1_crl_has_no_crl_number_and_is_refused() {
        let (crl, _) = reissued(Number::Keep, false, true);
        assert_eq!(
            ParsedCrl::from_der(&crl).err(),
            Some(CrlError::MissingCrlNumber)
        );
    }

    #[test]
    fn a_delta_crl_needs_its_own_crl_number() {
        // RFC 5280 §5.2.4: a delta CRL carries cRLNumber as well.
        let (crl, _) = reissued(Number::Drop, true, false);
        assert_eq!(
            ParsedCrl::from_der(&crl).err(),
            Some(CrlError::MissingCrlNumber)
        );
        let (crl, signer) = reissued(Number::Keep, true, false);
        let signer = CrlSigner::from_cert_der(&signer).unwrap();
        let verified = VerifiedCrl::from_der(&crl, &signer).unwrap();
        assert_eq!(verified.delta_base(), Some(&[0x01][..]));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x00",
            b"hello world",
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(
                matches!(ParsedCrl::from_der(bad), Err(CrlError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }
}
