//! The operator's deny list: certificates refused at once, without waiting
//! for their CA to publish a revocation. Checked on every certificate of a
//! validated path (anchor included), before revocation status.

use serde::{Deserialize, Serialize};

use crate::cert::{minimal_integer, CertInfo};

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
}

/// A [`DenyKey`] compiled for matching, once, when the rule is set: the
/// issuer as its RFC 5280 §7.1 name key, the serial as minimal INTEGER
/// content octets, digests as bytes. Matching then compares bytes with
/// what [`CertInfo`] already holds; no text is parsed or rendered per
/// verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Matcher {
    IssuerSerial {
        issuer_key: Box<[u8]>,
        serial: Box<[u8]>,
    },
    CertSha256([u8; 32]),
    SpkiSha256([u8; 32]),
    /// A key whose text names no certificate (a DN or hex that does not
    /// parse; [`DenyKey::normalized`] refuses those): matches nothing.
    Nothing,
}

impl Matcher {
    pub(crate) fn new(key: &DenyKey) -> Self {
        let digest = |text: &str| {
            clean_hex(text)
                .ok()
                .and_then(|h| crate::text::unhex(&h))
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        };
        let compiled = match key {
            DenyKey::IssuerSerial { issuer, serial } => {
                let serial = clean_hex(serial).ok().and_then(|h| crate::text::unhex(&h));
                match (crate::name_text::parse(issuer), serial) {
                    (Ok(name), Some(serial)) => Some(Self::IssuerSerial {
                        issuer_key: name.key.into(),
                        serial: minimal_integer(&serial).into(),
                    }),
                    _ => None,
                }
            }
            DenyKey::CertSha256(h) => digest(h).map(Self::CertSha256),
            DenyKey::SpkiSha256(h) => digest(h).map(Self::SpkiSha256),
        };
        compiled.unwrap_or(Self::Nothing)
    }

    pub(crate) fn matches(&self, cert: &CertInfo) -> bool {
        match self {
            Self::IssuerSerial { issuer_key, serial } => {
                **serial == *cert.serial() && **issuer_key == *cert.issuer_key
            }
            Self::CertSha256(d) => *d == cert.sha256,
            Self::SpkiSha256(d) => *d == cert.spki_sha256,
            Self::Nothing => false,
        }
    }
}

/// The deny list as a snapshot holds it: the rules as set (the contract
/// shape), each with its compiled [`Matcher`].
#[derive(Clone, Debug, Default)]
pub(crate) struct DenyList {
    rules: Vec<DenyRule>,
    /// `matchers[i]` is `rules[i]` compiled.
    matchers: Vec<Matcher>,
}

impl DenyList {
    /// The rules, in the order set.
    pub(crate) fn rules(&self) -> &[DenyRule] {
        &self.rules
    }

    /// Whether this very rule is set.
    pub(crate) fn contains(&self, rule: &DenyRule) -> bool {
        self.rules.contains(rule)
    }

    /// Whether a rule with `rule`'s key, reason and expiry is set (whoever
    /// set it, whenever).
    pub(crate) fn has_same_effect(&self, rule: &DenyRule) -> bool {
        self.rules
            .iter()
            .any(|r| r.key == rule.key && r.reason == rule.reason && r.expires == rule.expires)
    }

    /// Whether a rule with this key is set.
    pub(crate) fn has_key(&self, key: &DenyKey) -> bool {
        self.rules.iter().any(|r| &r.key == key)
    }

    /// Sets `rule`, replacing a rule with the same key.
    pub(crate) fn set(&mut self, rule: DenyRule) {
        self.lift(&rule.key);
        self.matchers.push(Matcher::new(&rule.key));
        self.rules.push(rule);
    }

    /// Lifts the rule with this key, if any.
    pub(crate) fn lift(&mut self, key: &DenyKey) {
        while let Some(i) = self.rules.iter().position(|r| &r.key == key) {
            self.rules.remove(i);
            self.matchers.remove(i);
        }
    }

    /// The first rule active at `now` that matches `cert`.
    pub(crate) fn find(&self, cert: &CertInfo, now: i64) -> Option<&DenyRule> {
        self.rules
            .iter()
            .zip(&self.matchers)
            .find(|(rule, m)| rule.is_active(now) && m.matches(cert))
            .map(|(rule, _)| rule)
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
    /// Who set it: the operator's name given with the rule, else the node
    /// that took it (fleet mode); none for rules set before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
    /// When it was set, Unix milliseconds; in fleet mode a rule (or a
    /// lift) replaces the one held only when it is newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_at: Option<i64>,
}

impl DenyRule {
    /// Longest `reason`, characters (the API's and the fleet's bound).
    pub const MAX_REASON: usize = 1024;
    /// Longest `set_by`, characters.
    pub const MAX_SET_BY: usize = 128;

    /// A rule with no provenance (`set_by`, `set_at`).
    pub fn new(key: DenyKey, reason: impl Into<String>, expires: Option<i64>) -> Self {
        Self {
            key,
            reason: reason.into(),
            expires,
            set_by: None,
            set_at: None,
        }
    }

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
    fn compiled_rules_match_by_bytes_whatever_the_spelling() {
        use crate::text::hex;
        let pki = pki_fixtures::generate_shared(&pki_fixtures::PkiOptions::default())
            .expect("fixture PKI");
        let client = CertInfo::parse(&pki.client.der).expect("client certificate");
        let other = CertInfo::parse(&pki.server.der).expect("server certificate");
        // The issuer DN as verdicts render it, respelt: case, spacing and
        // separators differ, the name does not.
        let issuer = client.issuer.to_string();
        let messy = issuer
            .to_uppercase()
            .replace(' ', "  ")
            .replace(",  ", " ; ")
            .replace('=', " = ");
        assert_ne!(messy, issuer);
        let serial = hex(client.serial());
        let by_name = |issuer: &str, serial: &str| {
            Matcher::new(&DenyKey::IssuerSerial {
                issuer: issuer.into(),
                serial: serial.into(),
            })
        };
        assert!(by_name(&messy, &serial).matches(&client));
        assert!(by_name(&messy, &serial.to_uppercase()).matches(&client));
        assert!(!by_name(&messy, &serial).matches(&other));
        let mut wrong = client.serial().to_vec();
        if let Some(last) = wrong.last_mut() {
            *last ^= 1;
        }
        assert!(!by_name(&messy, &hex(&wrong)).matches(&client));
        assert!(!by_name("CN=Someone Else", &serial).matches(&client));

        let cert = Matcher::new(&DenyKey::CertSha256(hex(&client.sha256)));
        assert_eq!(cert, Matcher::CertSha256(client.sha256));
        assert!(cert.matches(&client) && !cert.matches(&other));
        let spki = hex(&crate::cert::sha256(client.spki_der()));
        let key = Matcher::new(&DenyKey::SpkiSha256(spki));
        assert!(key.matches(&client) && !key.matches(&other));

        // Text that names no certificate matches none.
        for key in [
            DenyKey::CertSha256("zz".into()),
            DenyKey::SpkiSha256("ab".into()),
            DenyKey::IssuerSerial {
                issuer: "Nonsense=x".into(),
                serial: serial.clone(),
            },
        ] {
            assert_eq!(Matcher::new(&key), Matcher::Nothing);
            assert!(!Matcher::new(&key).matches(&client));
        }
    }

    #[test]
    fn a_deny_list_keeps_one_rule_per_key_and_finds_active_ones() {
        let pki = pki_fixtures::generate_shared(&pki_fixtures::PkiOptions::default())
            .expect("fixture PKI");
        let client = CertInfo::parse(&pki.client.der).expect("client certificate");
        let key = DenyKey::CertSha256(crate::text::hex(&client.sha256));
        let rule = |expires| DenyRule::new(key.clone(), "r", expires);
        let mut list = DenyList::default();
        list.set(rule(Some(100)));
        list.set(rule(Some(200)));
        assert_eq!(list.rules(), &[rule(Some(200))]);
        assert_eq!(list.find(&client, 199), Some(&rule(Some(200))));
        assert_eq!(list.find(&client, 200), None);
        assert!(list.has_key(&key));
        list.lift(&key);
        assert!(list.rules().is_empty() && list.find(&client, 0).is_none());
    }

    #[test]
    fn rules_expire() {
        let rule = DenyRule::new(DenyKey::CertSha256("00".repeat(32)), "r", Some(100));
        assert!(rule.is_active(99));
        assert!(!rule.is_active(100));
    }
}
