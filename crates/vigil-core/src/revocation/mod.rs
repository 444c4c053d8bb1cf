//! Revocation data: CRLs (RFC 5280 §5, §6.3), OCSP (RFC 6960), the memory
//! of revocations, and the policy that turns them into a per-certificate
//! status (`RevocationData` answers it).

pub(crate) mod crl;
mod data;
mod index;
pub(crate) mod memory;
pub(crate) mod ocsp;
pub(crate) mod policy;
mod sources;
pub(crate) mod status;

pub use crl::{CrlError, CrlSigner, ParsedCrl, VerifiedCrl};
pub(crate) use data::RevocationData;
pub use index::RevokedEntry;
pub use memory::RevocationFact;
pub use ocsp::{build_request, CertIdHash, OcspCertStatus, OcspError, ParsedOcsp, SingleResponse};
// `Depth` and `RevocationPolicy` are verification options: named at the
// crate root only (`vigil_core::RevocationPolicy`), one path per type.
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

pub(crate) use crate::x509::reasons;
