//! The pieces of a registered connection: its API id, its persisted record
//! and the JSON the API shows.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use vigil_core::{CertificateDer, TeardownEvent, TeardownReason, Usage};

/// A connection's id in the API: 128 random bits, as 32 lowercase hex
/// digits. Random (not a counter) so that ids from before a restart are
/// never reused and cannot be guessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ApiId(pub(crate) u128);

impl ApiId {
    pub(crate) fn random() -> Self {
        Self(rand::random())
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(Self)
    }

    /// The store key.
    pub(crate) fn key(self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }

    pub(crate) fn from_key(key: &[u8]) -> Option<Self> {
        <[u8; 16]>::try_from(key)
            .ok()
            .map(|b| Self(u128::from_be_bytes(b)))
    }
}

impl fmt::Display for ApiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The extended key usage a connection's leaf is verified for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UsageKind {
    Client,
    Server,
    #[default]
    Any,
}

impl UsageKind {
    pub(crate) const ALL: [Self; 3] = [Self::Client, Self::Server, Self::Any];

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Client => 0,
            Self::Server => 1,
            Self::Any => 2,
        }
    }

    pub(crate) fn usage(self) -> Usage {
        match self {
            Self::Client => Usage::Client,
            Self::Server => Usage::Server,
            Self::Any => Usage::Any,
        }
    }
}

/// A registration as persisted in the store's connections table: enough to
/// verify and track it again after a restart. Compact binary (a record is
/// about the size of its leaf certificate):
///
/// ```text
/// 0x01 | usage u8 | registered_at i64 | lease_secs u32 (0: none)
///      | leaf length u32 | leaf DER | n u8 | n x SHA-256 of the other
///      certificates of the chain | labels (JSON object)
/// ```
///
/// The other certificates (intermediates, shared by many connections) are
/// stored once each, under [`ca_key`]. Leases are kept as their length:
/// after a restart each lease starts over, so callers get one full lease to
/// renew after the sidecar was down. A renewal to another length stores
/// that length beside the record, under [`lease_key`], and it wins.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) usage: UsageKind,
    pub(crate) registered_at: i64,
    pub(crate) lease_secs: Option<u32>,
    pub(crate) leaf: Vec<u8>,
    /// SHA-256 of the chain's other certificates, in order.
    pub(crate) rest: Vec<[u8; 32]>,
    pub(crate) labels: BTreeMap<String, String>,
}

const RECORD_V1: u8 = 1;
/// Prefix of the keys under which CA certificates are stored.
const CA_PREFIX: &[u8] = b"ca:";

/// Prefix of the keys under which renewed lease lengths are stored.
const LEASE_PREFIX: &[u8] = b"lease:";

/// The store key of the lease length `id` was last renewed to (a `u32`,
/// big-endian): it overrides the record's.
pub(crate) fn lease_key(id: ApiId) -> Vec<u8> {
    [LEASE_PREFIX, id.0.to_be_bytes().as_slice()].concat()
}

/// The connection a [`lease_key`] belongs to.
pub(crate) fn parse_lease_key(key: &[u8]) -> Option<ApiId> {
    key.strip_prefix(LEASE_PREFIX).and_then(ApiId::from_key)
}

/// The store key of a chain certificate with this SHA-256.
pub(crate) fn ca_key(sha256: &[u8; 32]) -> Vec<u8> {
    [CA_PREFIX, sha256.as_slice()].concat()
}

/// The SHA-256 of a [`ca_key`].
pub(crate) fn parse_ca_key(key: &[u8]) -> Option<[u8; 32]> {
    key.strip_prefix(CA_PREFIX)
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
}

impl Record {
    pub(crate) fn new(
        usage: UsageKind,
        chain: &[CertificateDer<'_>],
        labels: BTreeMap<String, String>,
        lease_secs: Option<u32>,
        registered_at: i64,
    ) -> Self {
        Self {
            usage,
            registered_at,
            lease_secs,
            leaf: chain.first().map(|c| c.to_vec()).unwrap_or_default(),
            rest: chain
                .iter()
                .skip(1)
                .map(|c| vigil_core::sha256(c))
                .collect(),
            labels,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let labels = serde_json::to_vec(&self.labels).unwrap_or_default();
        let mut out =
            Vec::with_capacity(24 + self.leaf.len() + 32 * self.rest.len() + labels.len());
        out.push(RECORD_V1);
        out.push(self.usage.index() as u8);
        out.extend_from_slice(&self.registered_at.to_be_bytes());
        out.extend_from_slice(&self.lease_secs.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&(self.leaf.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.leaf);
        out.push(self.rest.len() as u8);
        for d in &self.rest {
            out.extend_from_slice(d);
        }
        out.extend_from_slice(&labels);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        if r.take(1)? != [RECORD_V1] {
            return Err("unknown record version".into());
        }
        let usage = *UsageKind::ALL
            .get(usize::from(r.take(1)?[0]))
            .ok_or("bad usage")?;
        let registered_at = i64::from_be_bytes(r.array()?);
        let lease = u32::from_be_bytes(r.array()?);
        let leaf_len = u32::from_be_bytes(r.array()?) as usize;
        let leaf = r.take(leaf_len)?.to_vec();
        let n = usize::from(r.take(1)?[0]);
        let mut rest = Vec::with_capacity(n);
        for _ in 0..n {
            rest.push(r.array()?);
        }
        let labels = serde_json::from_slice(r.0).map_err(|e| format!("labels: {e}"))?;
        Ok(Self {
            usage,
            registered_at,
            lease_secs: (lease != 0).then_some(lease),
            leaf,
            rest,
            labels,
        })
    }

    /// The chain, with the other certificates looked up by digest.
    pub(crate) fn chain(
        &self,
        cas: &std::collections::HashMap<[u8; 32], Vec<u8>>,
    ) -> Result<Vec<CertificateDer<'static>>, String> {
        let mut chain = vec![CertificateDer::from(self.leaf.clone())];
        for d in &self.rest {
            let der = cas
                .get(d)
                .ok_or("a chain certificate is missing from the store")?;
            chain.push(CertificateDer::from(der.clone()));
        }
        Ok(chain)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated record".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        self.take(N)
            .and_then(|b| <[u8; N]>::try_from(b).map_err(|_| "truncated record".into()))
    }
}

/// A connection as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ConnectionView {
    pub(crate) id: String,
    /// `active`, or `torn_down` (then `teardown` says why).
    pub(crate) state: &'static str,
    pub(crate) usage: UsageKind,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) registered_at: String,
    pub(crate) lease_secs: Option<u32>,
    pub(crate) lease_expires_at: Option<String>,
    pub(crate) valid_until: Option<String>,
    pub(crate) subject: String,
    #[serde(serialize_with = "vigil_core::text::ser::hex")]
    pub(crate) serial: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) teardown: Option<TeardownOut>,
}

/// The `teardown` event (ARCHITECTURE.md: connection_id, reason, serial,
/// detail, at), with the subject and labels as extensions.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TeardownOut {
    pub(crate) connection_id: String,
    pub(crate) reason: TeardownReason,
    #[serde(serialize_with = "vigil_core::text::ser::hex")]
    pub(crate) serial: Vec<u8>,
    pub(crate) subject: String,
    pub(crate) detail: String,
    #[serde(serialize_with = "vigil_core::text::ser::rfc3339")]
    pub(crate) at: i64,
    pub(crate) labels: BTreeMap<String, String>,
}

impl TeardownOut {
    pub(crate) fn new(id: ApiId, event: &TeardownEvent, labels: &BTreeMap<String, String>) -> Self {
        Self {
            connection_id: id.to_string(),
            reason: event.reason,
            serial: event.serial.clone(),
            subject: event.subject.clone(),
            detail: event.detail.clone(),
            at: event.at,
            labels: labels.clone(),
        }
    }
}

/// RFC 3339 of Unix milliseconds (whole seconds).
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    vigil_core::text::rfc3339(ms.div_euclid(1000))
}

/// Now, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_junk() {
        let id = ApiId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(ApiId::parse(&text), Some(id));
        assert_eq!(ApiId::from_key(&id.key()), Some(id));
        for bad in ["", "xyz", &"0".repeat(31), &"g".repeat(32), &"0".repeat(33)] {
            assert_eq!(ApiId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_round_trip_and_junk_is_refused() {
        let ca = vec![0x30, 0x01, 0x00];
        let r = Record::new(
            UsageKind::Client,
            &[
                CertificateDer::from(vec![0x30, 0x00]),
                CertificateDer::from(ca.clone()),
            ],
            BTreeMap::from([("k".into(), "v".into())]),
            Some(30),
            1,
        );
        let bytes = r.encode();
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(back, r);
        let cas = std::collections::HashMap::from([(vigil_core::sha256(&ca), ca.clone())]);
        let chain = back.chain(&cas).unwrap();
        assert_eq!(chain[0].as_ref(), &[0x30, 0x00]);
        assert_eq!(chain[1].as_ref(), ca.as_slice());
        assert!(back.chain(&Default::default()).is_err());
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err(), "{cut}");
        }
        assert!(Record::decode(b"{\"usage\":1}").is_err());
        let key = ca_key(&vigil_core::sha256(&ca));
        assert_eq!(parse_ca_key(&key), Some(vigil_core::sha256(&ca)));
        assert_eq!(parse_ca_key(&ApiId(7).key()), None);
        assert_eq!(parse_lease_key(&lease_key(ApiId(7))), Some(ApiId(7)));
        assert_eq!(parse_lease_key(&ApiId(7).key()), None);
        assert_eq!(parse_lease_key(&key), None);
        assert_eq!(ApiId::from_key(&lease_key(ApiId(7))), None);
        assert_eq!(parse_ca_key(&lease_key(ApiId(7))), None);
    }
}
