//! Deny records as they travel on the bus: one KV key per rule, its value
//! an envelope `{"record": "<JSON text>", "sig": "<base64>"}`. The record
//! is kept as text so that the signature covers exactly the octets that
//! were signed; nothing is re-serialised before checking.
//!
//! A record is checked in full before it is used ([`Record::open`]): size,
//! signature (when verify keys are configured), fleet, the key's normal
//! form, and that it sits under the KV key its rule derives. A lift is a
//! record too (`"op": "lift"`), so that it carries who, when and a
//! signature; a bare KV delete counts as a lift only when no verify key is
//! configured.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use vigil_core::{DenyKey, DenyRule};

use crate::signing::{SigningKey, VerifyKey};

/// Largest envelope accepted (and the bucket's maximum message size).
pub(crate) const MAX_ENVELOPE: usize = 8 * 1024;

/// What a record does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Op {
    Set,
    Lift,
}

/// One deny record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub(crate) op: Op,
    pub(crate) fleet: String,
    /// The node that wrote it.
    pub(crate) node: String,
    pub(crate) key: DenyKey,
    /// Unix milliseconds on the writer's clock; of two records for one key
    /// the later wins.
    pub(crate) at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) set_by: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    record: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sig: Option<String>,
}

/// Why a record was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Refused {
    #[error("larger than {MAX_ENVELOPE} bytes")]
    TooLarge,
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("unsigned, and a verify key is configured")]
    Unsigned,
    #[error("bad signature")]
    BadSignature,
    #[error("for fleet '{0}'")]
    OtherFleet(String),
    #[error("under KV key {found}, its rule belongs under {expected}")]
    WrongKey { found: String, expected: String },
    #[error("a bare delete, and a verify key is configured (lifts must be signed)")]
    UnsignedDelete,
}

/// The KV key of a deny key: SHA-256 of its normal form's JSON, hex (KV
/// keys allow only `[-/_=.a-zA-Z0-9]`).
pub(crate) fn kv_key(key: &DenyKey) -> String {
    let json = serde_json::to_vec(key).unwrap_or_default();
    format!("r.{}", vigil_core::text::hex(&vigil_core::sha256(&json)))
}

impl Record {
    /// The record for setting `rule` (its `set_at` is the record's time).
    pub(crate) fn set(fleet: &str, node: &str, rule: &DenyRule, at: i64) -> Self {
        Self {
            op: Op::Set,
            fleet: fleet.to_owned(),
            node: node.to_owned(),
            key: rule.key.clone(),
            at,
            reason: Some(rule.reason.clone()),
            expires: rule.expires,
            set_by: rule.set_by.clone(),
        }
    }

    /// The record for lifting `key`.
    pub(crate) fn lift(fleet: &str, node: &str, key: &DenyKey, at: i64) -> Self {
        Self {
            op: Op::Lift,
            fleet: fleet.to_owned(),
            node: node.to_owned(),
            key: key.clone(),
            at,
            reason: None,
            expires: None,
            set_by: None,
        }
    }

    /// The rule a `set` record sets.
    pub(crate) fn rule(&self) -> Option<DenyRule> {
        (self.op == Op::Set).then(|| DenyRule {
            key: self.key.clone(),
            reason: self.reason.clone().unwrap_or_default(),
            expires: self.expires,
            set_by: self
                .set_by
                .clone()
                .or_else(|| Some(format!("node {}", self.node))),
            set_at: Some(self.at),
        })
    }

    /// The envelope's octets, signed when a key is given.
    pub(crate) fn seal(&self, key: Option<&SigningKey>) -> Vec<u8> {
        let record = serde_json::to_string(self).unwrap_or_default();
        let sig = key
            .map(|k| base64::engine::general_purpose::STANDARD.encode(k.sign(record.as_bytes())));
        serde_json::to_vec(&Envelope { record, sig }).unwrap_or_default()
    }

    /// Opens and checks an envelope found under `kv_key` (see the module
    /// comment for what is checked).
    pub(crate) fn open(
        bytes: &[u8],
        kv_key_found: &str,
        fleet: &str,
        verify: &[VerifyKey],
    ) -> Result<Self, Refused> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(Refused::TooLarge);
        }
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| Refused::Malformed(e.to_string()))?;
        if !verify.is_empty() {
            let sig = envelope.sig.as_deref().ok_or(Refused::Unsigned)?;
            let sig = base64::engine::general_purpose::STANDARD
                .decode(sig)
                .map_err(|_| Refused::BadSignature)?;
            if !verify
                .iter()
                .any(|k| k.verifies(envelope.record.as_bytes(), &sig))
            {
                return Err(Refused::BadSignature);
            }
        }
        let record: Record = serde_json::from_str(&envelope.record)
            .map_err(|e| Refused::Malformed(e.to_string()))?;
        if record.fleet != fleet {
            return Err(Refused::OtherFleet(record.fleet));
        }
        let normal = record
            .key
            .clone()
            .normalized()
            .map_err(|e| Refused::Malformed(format!("key: {e}")))?;
        if normal != record.key {
            return Err(Refused::Malformed("key not in its normal form".into()));
        }
        let expected = kv_key(&record.key);
        if expected != kv_key_found {
            return Err(Refused::WrongKey {
                found: kv_key_found.to_owned(),
                expected,
            });
        }
        let long =
            |s: &Option<String>, max: usize| s.as_ref().is_some_and(|s| s.chars().count() > max);
        if long(&record.reason, DenyRule::MAX_REASON) || long(&record.set_by, DenyRule::MAX_SET_BY)
        {
            return Err(Refused::Malformed("reason or set_by too long".into()));
        }
        if record.op == Op::Set && record.reason.as_deref().is_none_or(str::is_empty) {
            return Err(Refused::Malformed("a set record needs a reason".into()));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DenyKey {
        DenyKey::CertSha256("ab".repeat(32))
    }

    fn signing() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("k.pem");
        let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        std::fs::write(
            &path,
            format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
        )
        .expect("write");
        SigningKey::from_pem_file(&path).expect("signing key")
    }

    #[test]
    fn records_are_checked_before_use() {
        let rule = DenyRule::new(key(), "leaked", None);
        let rec = Record::set("f", "a", &rule, 7);
        let k = kv_key(&rule.key);
        // Unsigned, no verify key: accepted as written.
        let plain = rec.seal(None);
        assert_eq!(Record::open(&plain, &k, "f", &[]), Ok(rec.clone()));
        assert_eq!(
            Record::open(&plain, &k, "g", &[]),
            Err(Refused::OtherFleet("f".into()))
        );
        assert!(matches!(
            Record::open(&plain, "r.00", "f", &[]),
            Err(Refused::WrongKey { .. })
        ));
        // With a verify key: unsigned and wrongly signed are refused.
        let key = signing();
        let vk = [key.verify_key()];
        assert_eq!(Record::open(&plain, &k, "f", &vk), Err(Refused::Unsigned));
        let signed = rec.seal(Some(&key));
        assert_eq!(Record::open(&signed, &k, "f", &vk), Ok(rec.clone()));
        assert_eq!(
            Record::open(&signed, &k, "f", &[signing().verify_key()]),
            Err(Refused::BadSignature)
        );
        // A signed record altered on the bus.
        let text = String::from_utf8(signed)
            .expect("utf-8")
            .replace("leaked", "lifted");
        assert_eq!(
            Record::open(text.as_bytes(), &k, "f", &vk),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            Record::open(&vec![b' '; MAX_ENVELOPE + 1], &k, "f", &[]),
            Err(Refused::TooLarge)
        );
        assert!(matches!(
            Record::open(b"{}", &k, "f", &[]),
            Err(Refused::Malformed(_))
        ));
        // A key that is not in its normal form.
        let upper = Record {
            key: DenyKey::CertSha256("AB".repeat(32)),
            ..rec
        };
        assert!(matches!(
            Record::open(&upper.seal(None), &k, "f", &[]),
            Err(Refused::Malformed(_))
        ));
    }
}
