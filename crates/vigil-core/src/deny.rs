//! The operator's deny list: certificates refused at once, without waiting
//! for their CA to publish a revocation. Checked on every certificate of a
//! validated path (anchor included), before revocation status.

use serde::{Deserialize, Serialize};

use crate::cert::{hex, sha256, CertInfo};

/// What a deny rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyKey {
    /// A certificate by issuer DN (as verdicts render it, e.g.
    /// `CN=Vigil Test Intermediate,O=Vigil`) and serial (lowercase hex of
    /// the INTEGER content, as verdicts show it).
    IssuerSerial {
        /// Issuer DN.
        issuer: String,
        /// Serial, hex.
        serial: String,
    },
    /// A certificate by the SHA-256 of its DER, lowercase hex.
    CertSha256(String),
    /// Every certificate with this public key: SHA-256 of the
    /// SubjectPublicKeyInfo DER, lowercase hex.
    SpkiSha256(String),
}

impl DenyKey {
    /// The key with hex normalised (lowercase, no `:` separators, no
    /// leading zero octets in serials); an error for a malformed value.
    pub fn normalized(self) -> Result<Self, String> {
        let clean = |s: &str| -> Result<String, String> {
            let h: String = s
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if h.is_empty()
                || !h.len().is_multiple_of(2)
                || !h.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(format!("'{s}' is not an even-length hex string"));
            }
            Ok(h)
        };
        match self {
            Self::IssuerSerial { issuer, serial } => {
                if issuer.trim().is_empty() {
                    return Err("issuer must not be empty".into());
                }
                let mut serial = clean(&serial)?;
                // Minimal INTEGER content: a leading 00 only before a byte
                // with the high bit set.
                while serial.len() > 2
                    && serial.starts_with("00")
                    && u8::from_str_radix(&serial[2..4], 16).is_ok_and(|b| b < 0x80)
                {
                    serial.drain(..2);
                }
                Ok(Self::IssuerSerial {
                    issuer: issuer.trim().to_owned(),
                    serial,
                })
            }
            Self::CertSha256(h) => {
                let h = clean(&h)?;
                if h.len() != 64 {
                    return Err("a SHA-256 is 64 hex digits".into());
                }
                Ok(Self::CertSha256(h))
            }
            Self::SpkiSha256(h) => {
                let h = clean(&h)?;
                if h.len() != 64 {
                    return Err("a SHA-256 is 64 hex digits".into());
                }
                Ok(Self::SpkiSha256(h))
            }
        }
    }

    pub(crate) fn matches(&self, cert: &CertInfo) -> bool {
        match self {
            Self::IssuerSerial { issuer, serial } => {
                *serial == hex(cert.serial()) && issuer.as_str() == &*cert.issuer
            }
            Self::CertSha256(h) => *h == hex(&cert.sha256),
            Self::SpkiSha256(h) => *h == hex(&sha256(cert.spki_der())),
        }
    }
}

/// One entry of the deny list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyRule {
    /// What it matches.
    pub key: DenyKey,
    /// Why (shown in verdicts and teardown events).
    pub reason: String,
    /// Unix seconds after which the rule no longer applies; none: until
    /// lifted.
    pub expires: Option<i64>,
}

impl DenyRule {
    /// Whether the rule applies at `now` (Unix seconds).
    pub fn is_active(&self, now: i64) -> bool {
        self.expires.is_none_or(|t| now < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_normalised_and_bad_ones_refused() {
        let k = DenyKey::IssuerSerial {
            issuer: " CN=x ".into(),
            serial: "00:7F:0a".into(),
        };
        assert_eq!(
            k.normalized(),
            Ok(DenyKey::IssuerSerial {
                issuer: "CN=x".into(),
                serial: "7f0a".into()
            })
        );
        // A leading zero before a high bit stays (minimal INTEGER content).
        let k = DenyKey::IssuerSerial {
            issuer: "CN=x".into(),
            serial: "0080".into(),
        };
        assert!(
            matches!(k.normalized(), Ok(DenyKey::IssuerSerial { serial, .. }) if serial == "0080")
        );
        for bad in ["", "abc", "zz", "0g"] {
            let k = DenyKey::IssuerSerial {
                issuer: "CN=x".into(),
                serial: bad.into(),
            };
            assert!(k.normalized().is_err(), "{bad}");
        }
        assert!(DenyKey::CertSha256("ab".into()).normalized().is_err());
        assert!(DenyKey::SpkiSha256("AB".repeat(32)).normalized().is_ok());
        let json = serde_json::to_string(&DenyKey::CertSha256("00".into())).unwrap_or_default();
        assert_eq!(json, r#"{"cert_sha256":"00"}"#);
    }

    #[test]
    fn rules_expire() {
        let rule = DenyRule {
            key: DenyKey::CertSha256("00".repeat(32)),
            reason: "r".into(),
            expires: Some(100),
        };
        assert!(rule.is_active(99));
        assert!(!rule.is_active(100));
    }
}
