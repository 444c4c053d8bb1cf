//! Revocation data: CRLs (RFC 5280 §5, §6.3) and the policy that turns them
//! into a per-certificate status.

pub(crate) mod crl;
mod index;
pub(crate) mod memory;
pub(crate) mod ocsp;
pub(crate) mod policy;
mod sources;
pub(crate) mod status;

pub use crl::{CrlError, CrlSigner, ParsedCrl, VerifiedCrl};
pub use index::RevokedEntry;
pub use memory::RevocationFact;
pub use ocsp::{build_request, CertIdHash, OcspCertStatus, OcspError, ParsedOcsp, SingleResponse};
pub use policy::{Depth, RevocationPolicy};
pub use sources::{revocation_sources, Sources};

use serde::Serialize;

/// CRLReason (RFC 5280 §5.3.1). The discriminants are the wire codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Reason {
    /// unspecified (0)
    Unspecified = 0,
    /// keyCompromise (1)
    KeyCompromise = 1,
    /// cACompromise (2)
    #[serde(rename = "cACompromise")]
    CaCompromise = 2,
    /// affiliationChanged (3)
    AffiliationChanged = 3,
    /// superseded (4)
    Superseded = 4,
    /// cessationOfOperation (5)
    CessationOfOperation = 5,
    /// certificateHold (6)
    CertificateHold = 6,
    /// removeFromCRL (8), only meaningful in delta CRLs
    #[serde(rename = "removeFromCRL")]
    RemoveFromCrl = 8,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn = 9,
    /// aACompromise (10)
    #[serde(rename = "aACompromise")]
    AaCompromise = 10,
}

impl Reason {
    /// Maps a CRLReason code; 7 is unused and anything above 10 is undefined.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            _ => return None,
        })
    }

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
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
