//! X.509 pieces shared by certificates (`cert`) and CRLs
//! (`revocation::crl`) alike, below both: distribution point names,
//! ReasonFlags, GeneralName URIs and the OCSP access descriptions of the
//! Authority Information Access extension (RFC 5280 §4.2.1.13, §4.2.2.1,
//! §5.2.5).

use crate::der::{self, tag, DerError, Reader};

/// id-ad-ocsp (RFC 5280 §4.2.2.1).
const OID_AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
/// uniformResourceIdentifier [6] IA5String in a GeneralName.
const URI: u8 = 0x86;

/// The http(s) URIs of the id-ad-ocsp access descriptions of an
/// AuthorityInfoAccessSyntax value (RFC 5280 §4.2.2.1), in order; `None`
/// when the value is malformed.
pub(crate) fn ocsp_uris(aia: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut r = Reader::new(der::single(aia, tag::SEQUENCE).ok()?);
    while !r.is_empty() {
        let mut ad = Reader::new(r.read(tag::SEQUENCE).ok()?);
        let method = ad.read(tag::OID).ok()?;
        let (_, _, location) = ad.read_any().ok()?;
        if method == OID_AD_OCSP {
            out.extend(http_uri(location));
        }
    }
    Some(out)
}

/// The URI of a GeneralName (DER), when it is an http(s) one.
pub(crate) fn http_uri(general_name: &[u8]) -> Option<String> {
    match Reader::new(general_name).read_any().ok()? {
        (URI, value, _) => {
            let text = std::str::from_utf8(value).ok()?;
            let lower = text.to_ascii_lowercase();
            (lower.starts_with("http://") || lower.starts_with("https://")).then(|| text.to_owned())
        }
        _ => None,
    }
}

/// A DistributionPointName: fullName GeneralNames (each as DER), or the
/// nameRelativeToCRLIssuer RDN (as a DER SET).
pub(crate) type DistributionPointName = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// DistributionPointName ::= CHOICE { fullName [0] GeneralNames,
/// nameRelativeToCRLIssuer [1] RDN }. Returns each GeneralName's DER, or
/// the relative name as a DER RelativeDistinguishedName (a SET).
pub(crate) fn distribution_point_name(dpn: &[u8]) -> Result<DistributionPointName, DerError> {
    let mut r = Reader::new(dpn);
    let (t, value, _) = r.read_any()?;
    r.finish()?;
    match t {
        0xa0 => {
            let mut names = Vec::new();
            let mut g = Reader::new(value);
            while !g.is_empty() {
                let (_, _, whole) = g.read_any()?;
                names.push(whole.to_vec());
            }
            Ok((names, None))
        }
        // [1] IMPLICIT RelativeDistinguishedName: re-tag as a SET.
        0xa1 => Ok((Vec::new(), Some(der::encode(0x31, value)))),
        found => Err(DerError::UnexpectedTag {
            expected: 0xa0,
            found,
        }),
    }
}

/// ReasonFlags bits (RFC 5280 §4.2.1.13), bit n of the BIT STRING as `1 << n`.
pub(crate) mod reasons {
    pub(crate) const KEY_COMPROMISE: u16 = 1 << 1;
    pub(crate) const CA_COMPROMISE: u16 = 1 << 2;
    pub(crate) const AFFILIATION_CHANGED: u16 = 1 << 3;
    pub(crate) const SUPERSEDED: u16 = 1 << 4;
    pub(crate) const CESSATION: u16 = 1 << 5;
    pub(crate) const HOLD: u16 = 1 << 6;
    pub(crate) const PRIVILEGE_WITHDRAWN: u16 = 1 << 7;
    pub(crate) const AA_COMPROMISE: u16 = 1 << 8;
    /// Every reason: what a certificate's status must be checked against
    /// (RFC 5280 §6.3.3, reasons_mask must reach all-reasons).
    pub(crate) const ALL: u16 = KEY_COMPROMISE
        | CA_COMPROMISE
        | AFFILIATION_CHANGED
        | SUPERSEDED
        | CESSATION
        | HOLD
        | PRIVILEGE_WITHDRAWN
        | AA_COMPROMISE;

    /// Decodes a ReasonFlags BIT STRING value (first octet = unused bits).
    pub(crate) fn from_bit_string(value: &[u8]) -> Option<u16> {
        let (&unused, bits) = value.split_first()?;
        if unused > 7 || bits.len() > 2 || (bits.is_empty() && unused != 0) {
            return None;
        }
        let mut mask = 0u16;
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    mask |= 1 << (i * 8 + bit);
                }
            }
        }
        Some(mask & (ALL | 1))
    }
}
