//! The operator's deny list: certificates refused at once, without waiting
//! for their CA to publish a revocation. Checked on every certificate of a
//! validated path (anchor included), before revocation status.

use serde::{Deserialize, Serialize};

use crate::cert::{sha256, CertInfo};
use crate::text::hex;

/// What a deny rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DenyKey {
    /// A certificate by issuer DN (as verdicts render it, e.g.
    /// `CN=Vigil Test Intermediate, O=Vigil`; RFC 4514 escapes and quoting,
    /// types by name or OID) and serial (lowercase hex of the INTEGER
    /// content, as verdicts show it). The DN is matched by its RFC 5280
    /// §7.1 comparison key, never as a string: spacing, case and type
    /// spelling do not matter. [`DenyKey::normalized`] rewrites it to its
    /// canonical text (case folded, whitespace collapsed), so one name is
    /// one rule.
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
    /// leading zero octets in serials) and the issuer DN in its canonical
    /// text; an error for a malformed value. Hex is pairs of digits,
    /// optionally `:`-separated (`^[0-9a-fA-F]{2}(:?[0-9a-fA-F]{2})*$`).
    pub fn normalized(self) -> Result<Self, String> {
        match self {
            Self::IssuerSerial { issuer, serial } => {
                let name = crate::name_text::parse(&issuer).map_err(|e| format!("issuer: {e}"))?;
                let mut serial = clean_hex(&serial)?;
                // Minimal INTEGER content: a leading 00 only before a byte
                // with the high bit set.
                while serial.len() > 2
                    && serial.starts_with("00")
                    && u8::from_str_radix(&serial[2..4], 16).is_ok_and(|b| b < 0x80)
                {
                    serial.drain(..2);
                }
                Ok(Self::IssuerSerial {
                    issuer: name.canonical,
                    serial,
                })
            }
            Self::CertSha256(h) => Ok(Self::CertSha256(sha256_hex(&h)?)),
            Self::SpkiSha256(h) => Ok(Self::SpkiSha256(sha256_hex(&h)?)),
        }
    }

    pub(crate) fn matches(&self, cert: &CertInfo) -> bool {
        match self {
            // The serial first: the name is parsed only for a certificate
            // that could match.
            Self::IssuerSerial { issuer, serial } => {
                *serial == hex(cert.serial())
                    && crate::name_text::parse(issuer)
                        .is_ok_and(|name| name.key[..] == cert.issuer_key[..])
            }
            Self::CertSha256(h) => *h == hex(&cert.sha256),
            Self::SpkiSha256(h) => *h == hex(&sha256(cert.spki_der())),
        }
    }
}

/// Hex as a deny key takes it: pairs of digits, optionally `:`-separated
/// between pairs; lowercase without separators out.
fn clean_hex(s: &str) -> Result<String, String> {
    let bad = || format!("'{s}' is not hex (pairs of digits, optionally ':'-separated)");
    let mut out = String::with_capacity(s.len());
    let mut digits = 0usize;
    let mut after_colon = false;
    for c in s.chars() {
        if c == ':' {
            // Only between pairs, never doubled, never at either end.
            if digits == 0 || !digits.is_multiple_of(2) || after_colon {
                return Err(bad());
            }
            after_colon = true;
        } else if c.is_ascii_hexdigit() {
            out.push(c.to_ascii_lowercase());
            digits += 1;
            after_colon = false;
        } else {
            return Err(bad());
        }
    }
    if digits == 0 || !digits.is_multiple_of(2) || s.ends_with(':') {
        return Err(bad());
    }
    Ok(out)
}

fn sha256_hex(s: &str) -> Result<String, String> {
    let h = clean_hex(s)?;
    if h.len() != 64 {
        return Err("a SHA-256 is 64 hex digits".into());
    }
    Ok(h)
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
        for bad in [
            "", "abc", "zz", "0g", "::ab", "ab::cd", "a:bcd", "ab:", ":ab",
        ] {
            let k = DenyKey::IssuerSerial {
                issuer: "CN=x".into(),
                serial: bad.into(),
            };
            assert!(k.normalized().is_err(), "{bad}");
        }
        assert!(DenyKey::CertSha256("ab".into()).normalized().is_err());
        assert!(DenyKey::SpkiSha256("AB".repeat(32)).normalized().is_ok());
        assert!(DenyKey::SpkiSha256(["ab"; 32].join(":"))
            .normalized()
            .is_ok());
        let k = DenyKey::IssuerSerial {
            issuer: "Nonsense=x".into(),
            serial: "01".into(),
        };
        assert!(k.normalized().is_err());
        // Two spellings of one name are one key.
        let a = DenyKey::IssuerSerial {
            issuer: "CN=Vigil CA,O=Acme".into(),
            serial: "01".into(),
        };
        let b = DenyKey::IssuerSerial {
            issuer: "cn = vigil  ca ; O=ACME".into(),
            serial: "01".into(),
        };
        assert_eq!(a.normalized(), b.normalized());
        assert!(serde_json::from_str::<DenyKey>(
            r#"{"issuer_serial":{"issuer":"CN=x","serial":"01","extra":1}}"#
        )
        .is_err());
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
