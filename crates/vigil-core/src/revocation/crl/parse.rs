//! Parsing a DER CertificateList (RFC 5280 §5.1): one walk, no allocation
//! per entry; nothing in a [`ParsedCrl`] is trusted until it verifies.

use super::*;
use crate::x509::distribution_point_name;

/// A CRL whose structure was parsed but whose signature is not yet verified.
/// Nothing in it may be trusted until [`ParsedCrl::verify`] succeeds.
pub struct ParsedCrl<'a> {
    pub(super) tbs: &'a [u8],
    pub(super) sig_alg: &'a [u8],
    pub(super) signature: &'a [u8],
    pub(super) signature_well_formed: bool,
    pub(super) issuer: &'a [u8],
    pub(super) this_update: i64,
    pub(super) next_update: Option<i64>,
    pub(super) revoked: Option<&'a [u8]>,
    pub(super) number: Option<Vec<u8>>,
    pub(super) delta_base: Option<Vec<u8>>,
    pub(super) aki: Option<Vec<u8>>,
    pub(super) idp: Option<IdpScope>,
    pub(super) freshest: bool,
    pub(super) unsupported: Option<Unsupported>,
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
