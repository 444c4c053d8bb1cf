//! On-disk encoding of records: a small JSON header followed by the raw
//! body, so a record is one value (written atomically) and its metadata can
//! be read without copying a body of many megabytes.
//!
//! ```text
//! "VGS1" | header length (u32, big-endian) | header (JSON) | body
//! ```

use serde::{Deserialize, Serialize};
use vigil_core::text::hex;

use super::{RevocationKey, SourceKind, SourceMeta, SourceRecord, SourceStatus, StoreError};

const MAGIC: &[u8; 4] = b"VGS1";

/// The content metadata of a stored record (its status is kept apart).
#[derive(Serialize, Deserialize)]
pub(super) struct Header {
    pub(super) url: String,
    pub(super) kind: SourceKind,
    pub(super) fetched_at: i64,
    pub(super) etag: Option<String>,
    pub(super) last_modified: Option<String>,
    pub(super) this_update: Option<i64>,
    pub(super) next_update: Option<i64>,
    pub(super) crl_number: Option<Vec<u8>>,
    pub(super) body_len: u64,
}

impl Header {
    pub(super) fn into_meta(self, status: SourceStatus) -> SourceMeta {
        SourceMeta {
            url: self.url,
            kind: self.kind,
            body_len: self.body_len,
            fetched_at: self.fetched_at,
            etag: self.etag,
            last_modified: self.last_modified,
            this_update: self.this_update,
            next_update: self.next_update,
            crl_number: self.crl_number,
            last_error: status.last_error,
            last_attempt: status.last_attempt,
            next_attempt: status.next_attempt,
        }
    }

    pub(super) fn into_record(self, body: bytes::Bytes, status: SourceStatus) -> SourceRecord {
        let mut record = SourceRecord::new(self.url, self.kind, body, self.fetched_at);
        record.etag = self.etag;
        record.last_modified = self.last_modified;
        record.this_update = self.this_update;
        record.next_update = self.next_update;
        record.crl_number = self.crl_number;
        record.set_status(status);
        record
    }
}

/// Encodes the content part of `record` (not its status).
pub(super) fn encode_record(record: &SourceRecord) -> Result<Vec<u8>, StoreError> {
    let header = Header {
        url: record.url.clone(),
        kind: record.kind,
        fetched_at: record.fetched_at,
        etag: record.etag.clone(),
        last_modified: record.last_modified.clone(),
        this_update: record.this_update,
        next_update: record.next_update,
        crl_number: record.crl_number.clone(),
        body_len: record.body.len() as u64,
    };
    let json = serde_json::to_vec(&header).map_err(|e| StoreError::Invalid {
        detail: format!("record header: {e}"),
    })?;
    let json_len = u32::try_from(json.len()).map_err(|_| StoreError::Invalid {
        detail: "record header over 4 GiB".into(),
    })?;
    let mut out = Vec::with_capacity(8 + json.len() + record.body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&json_len.to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&record.body);
    Ok(out)
}

/// Splits a stored value into its header and body, checking that it is
/// complete and belongs to `url`.
pub(super) fn decode_record<'a>(
    url: &str,
    value: &'a [u8],
) -> Result<(Header, &'a [u8]), StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        key: url.to_owned(),
        detail,
    };
    let rest = value
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt("unknown format (bad magic)".into()))?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("truncated header length".into()))?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(corrupt("truncated header".into()));
    }
    let (json, body) = rest.split_at(len);
    let header: Header =
        serde_json::from_slice(json).map_err(|e| corrupt(format!("bad header: {e}")))?;
    if header.url != url {
        return Err(corrupt(format!(
            "header names another URL ({})",
            header.url
        )));
    }
    if header.body_len != body.len() as u64 {
        return Err(corrupt(format!(
            "body is {} bytes, header says {}",
            body.len(),
            header.body_len
        )));
    }
    Ok((header, body))
}

pub(super) fn encode_status(status: &SourceStatus) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(status).map_err(|e| StoreError::Invalid {
        detail: format!("status: {e}"),
    })
}

/// Decodes a status; a damaged status is only advisory data, so it reads as
/// "no status" rather than hiding the record.
pub(super) fn decode_status(value: Option<&[u8]>) -> SourceStatus {
    value
        .and_then(|v| serde_json::from_slice(v).ok())
        .unwrap_or_default()
}

/// `len(issuer_key) (u16, big-endian) | issuer_key | serial`
pub(super) fn encode_revocation_key(key: &RevocationKey) -> Result<Vec<u8>, StoreError> {
    let len = u16::try_from(key.issuer_key.len()).map_err(|_| StoreError::Invalid {
        detail: "issuer key over 65535 bytes".into(),
    })?;
    let mut out = Vec::with_capacity(2 + key.issuer_key.len() + key.serial.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&key.issuer_key);
    out.extend_from_slice(&key.serial);
    Ok(out)
}

pub(super) fn decode_revocation_key(raw: &[u8]) -> Result<RevocationKey, StoreError> {
    let bad = || StoreError::Corrupt {
        key: hex(raw),
        detail: "malformed revocation key".into(),
    };
    let (len, rest) = raw.split_first_chunk::<2>().ok_or_else(bad)?;
    let len = u16::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad());
    }
    let (issuer_key, serial) = rest.split_at(len);
    Ok(RevocationKey {
        issuer_key: issuer_key.to_vec(),
        serial: serial.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SourceRecord {
        let mut r = SourceRecord::new("http://ca.test/a.crl", SourceKind::Crl, vec![1, 2, 3], 7);
        r.crl_number = Some(vec![5]);
        r
    }

    #[test]
    fn truncated_or_altered_values_are_corrupt() {
        let value = encode_record(&record()).expect("encode");
        assert!(decode_record("http://ca.test/a.crl", &value).is_ok());
        for cut in [0, 3, 6, 10, value.len() - 1] {
            let err = decode_record("http://ca.test/a.crl", &value[..cut]);
            assert!(
                matches!(err, Err(StoreError::Corrupt { .. })),
                "cut at {cut}"
            );
        }
        let mut longer = value.clone();
        longer.push(0);
        assert!(decode_record("http://ca.test/a.crl", &longer).is_err());
        assert!(decode_record("http://ca.test/b.crl", &value).is_err());
    }

    #[test]
    fn revocation_keys_round_trip() {
        let key = RevocationKey {
            issuer_key: vec![9; 32],
            serial: vec![0, 1, 2],
        };
        let raw = encode_revocation_key(&key).expect("encode");
        assert_eq!(decode_revocation_key(&raw).expect("decode"), key);
        assert!(decode_revocation_key(&raw[..10]).is_err());
    }
}
