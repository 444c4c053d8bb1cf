//! X.509 pieces shared by certificates (`cert`) and CRLs
//! (`revocation::crl`) alike, below both: distribution point names and
//! ReasonFlags (RFC 5280 §4.2.1.13, §5.2.5).

use crate::der::{self, DerError, Reader};

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
