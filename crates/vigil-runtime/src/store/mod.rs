//! Persistent revocation state behind the [`Store`] trait: the raw bytes of
//! each CRL/OCSP source with its metadata, and the "revoked stays revoked"
//! facts (issue 3, items 4 and 6).
//!
//! Nothing read from a store is trusted: bodies are re-verified by the core
//! before use. What a store guarantees is integrity of each record (a record
//! is written as one value, never half), durability of every write that
//! returned, and that a CRL is never replaced by one with a lower CRL number
//! (RFC 5280 §5.2.3), even by concurrent writers.
//!
//! Store methods block on disk I/O: call them from `spawn_blocking` in async
//! code.

mod codec;
mod memory;
mod sled_store;

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
pub use sled_store::SledStore;

use crate::fetch::Validators;

/// Storage for revocation sources and revocation facts.
///
/// Implementations must make each [`put`](Store::put) atomic (readers see
/// the old record or the new one, never a mix), must refuse to replace a CRL
/// with one whose CRL number is lower (see [`PutOutcome::RefusedOlder`]),
/// and must report a record that cannot be decoded as
/// [`StoreError::Corrupt`] rather than return it or skip it silently.
pub trait Store: Send + Sync + 'static {
    /// The record for `url`, with its latest [`SourceStatus`].
    fn get(&self, url: &str) -> Result<Option<SourceRecord>, StoreError>;

    /// Stores `record` (content and status) unless it would replace a CRL
    /// with an older one. A `put` that returned `Stored` is durable.
    fn put(&self, record: &SourceRecord) -> Result<PutOutcome, StoreError>;

    /// Updates only the fetch status of the source at `url`, without
    /// rewriting its body. Returns `false` (and stores nothing) when there is
    /// no record for `url`. Status is advisory scheduling state: it is
    /// written to disk soon, not synchronously.
    fn put_status(&self, url: &str, status: &SourceStatus) -> Result<bool, StoreError>;

    /// Metadata of every stored source, without bodies. A record that cannot
    /// be decoded is an `Err` entry naming its URL; the others are still
    /// listed. Meant for start-up: a store may have to read every value
    /// (bodies included) to answer, so serve live listings from memory.
    fn list(&self) -> Result<Vec<Result<SourceMeta, StoreError>>, StoreError>;

    /// Every stored record, handed to `f` one at a time (start-up: each is
    /// loaded and dropped before the next is read). A record that cannot be
    /// decoded is an `Err` naming its URL; the others still come. The
    /// default reads [`list`](Store::list) then [`get`](Store::get)s each;
    /// a store that can read each value once should.
    fn for_each_record(
        &self,
        f: &mut dyn FnMut(Result<SourceRecord, StoreError>),
    ) -> Result<(), StoreError> {
        for meta in self.list()? {
            match meta {
                Ok(meta) => {
                    if let Some(record) = self.get(&meta.url)? {
                        f(Ok(record));
                    }
                }
                Err(e) => f(Err(e)),
            }
        }
        Ok(())
    }

    /// Removes the source at `url`; `true` if there was one.
    fn remove(&self, url: &str) -> Result<bool, StoreError>;

    /// Records that a certificate is revoked, replacing any fact with the
    /// same key. Durable when it returns.
    fn put_revocation(&self, key: &RevocationKey, fact: &StoredFact) -> Result<(), StoreError>;

    /// Every revocation fact. An entry that cannot be decoded is an `Err`:
    /// callers must not treat a lost fact as "not revoked".
    #[allow(clippy::type_complexity)]
    fn revocations(
        &self,
    ) -> Result<Vec<Result<(RevocationKey, StoredFact), StoreError>>, StoreError>;

    /// Drops the facts whose certificate expired before `now` (Unix
    /// seconds); returns how many were dropped.
    fn prune_revocations(&self, now: i64) -> Result<usize, StoreError>;

    /// Writes everything buffered to disk.
    fn flush(&self) -> Result<(), StoreError>;

    /// Stores `value` under `key` in `table`, replacing any value; durable
    /// when it returns.
    fn put_entry(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// Removes `key` from `table`; `true` if it was there. Durable when it
    /// returns.
    fn delete_entry(&self, table: Table, key: &[u8]) -> Result<bool, StoreError>;

    /// Every (key, value) of `table`, in key order.
    #[allow(clippy::type_complexity)]
    fn entries(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;

    /// Applies several writes to `table` as one: `Some(value)` stores,
    /// `None` removes. Durable when it returns. The default applies them one
    /// by one (each durable); a store that can should apply them as one
    /// atomic batch with one flush, so that bulk registrations (the
    /// sidecar's group commit) do not cost an fsync each.
    fn apply_entries(
        &self,
        table: Table,
        ops: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        for (key, value) in ops {
            match value {
                Some(value) => self.put_entry(table, key, value)?,
                None => {
                    self.delete_entry(table, key)?;
                }
            }
        }
        Ok(())
    }
}

/// The small tables kept for the sidecar, values encoded by their users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Registered connections (chain, labels, lease), so they outlive a
    /// restart.
    Connections,
    /// The operator's deny list.
    Denials,
}

impl Table {
    /// The table's name in a store.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::Denials => "denials",
        }
    }
}

/// Which protocol a source speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A CRL distribution point (RFC 5280 §4.2.1.13).
    Crl,
    /// An OCSP responder (RFC 6960); the body is one OCSPResponse.
    Ocsp,
}

/// One revocation source as stored: the raw DER body and what is known
/// about it. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRecord {
    /// Where it was fetched from; the key of the record.
    pub url: String,
    /// CRL or OCSP.
    pub kind: SourceKind,
    /// Raw DER (a CertificateList or an OCSPResponse). Shared, not copied,
    /// with the fetch buffer it came from.
    pub body: bytes::Bytes,
    /// When `body` was fetched.
    pub fetched_at: i64,
    /// The ETag the server sent with `body`.
    pub etag: Option<String>,
    /// The Last-Modified the server sent with `body`.
    pub last_modified: Option<String>,
    /// thisUpdate of the CRL or OCSP answer.
    pub this_update: Option<i64>,
    /// nextUpdate of the CRL or OCSP answer.
    pub next_update: Option<i64>,
    /// cRLNumber, unsigned big-endian (leading zero octets are ignored).
    pub crl_number: Option<Vec<u8>>,
    /// The last fetch or verification error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When the source was last tried.
    pub last_attempt: Option<i64>,
    /// When the scheduler means to try it next.
    pub next_attempt: Option<i64>,
}

impl SourceRecord {
    /// A record for a freshly fetched body, with no status yet.
    pub fn new(
        url: impl Into<String>,
        kind: SourceKind,
        body: impl Into<bytes::Bytes>,
        fetched_at: i64,
    ) -> Self {
        Self {
            url: url.into(),
            kind,
            body: body.into(),
            fetched_at,
            etag: None,
            last_modified: None,
            this_update: None,
            next_update: None,
            crl_number: None,
            last_error: None,
            last_attempt: None,
            next_attempt: None,
        }
    }

    /// The fetch status part of the record.
    pub fn status(&self) -> SourceStatus {
        SourceStatus {
            last_error: self.last_error.clone(),
            last_attempt: self.last_attempt,
            next_attempt: self.next_attempt,
        }
    }

    /// The HTTP validators to send with the next conditional GET.
    pub fn validators(&self) -> Validators {
        Validators {
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        }
    }

    /// Everything but the body.
    pub fn meta(&self) -> SourceMeta {
        SourceMeta {
            url: self.url.clone(),
            kind: self.kind,
            body_len: self.body.len() as u64,
            fetched_at: self.fetched_at,
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
            this_update: self.this_update,
            next_update: self.next_update,
            crl_number: self.crl_number.clone(),
            last_error: self.last_error.clone(),
            last_attempt: self.last_attempt,
            next_attempt: self.next_attempt,
        }
    }

    fn set_status(&mut self, status: SourceStatus) {
        self.last_error = status.last_error;
        self.last_attempt = status.last_attempt;
        self.next_attempt = status.next_attempt;
    }
}

/// A [`SourceRecord`] without its body, as [`Store::list`] returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMeta {
    /// Where it was fetched from.
    pub url: String,
    /// CRL or OCSP.
    pub kind: SourceKind,
    /// Size of the stored body in bytes.
    pub body_len: u64,
    /// When the body was fetched.
    pub fetched_at: i64,
    /// ETag sent with the body.
    pub etag: Option<String>,
    /// Last-Modified sent with the body.
    pub last_modified: Option<String>,
    /// thisUpdate.
    pub this_update: Option<i64>,
    /// nextUpdate.
    pub next_update: Option<i64>,
    /// cRLNumber, unsigned big-endian.
    pub crl_number: Option<Vec<u8>>,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When the source was last tried.
    pub last_attempt: Option<i64>,
    /// When it will be tried next.
    pub next_attempt: Option<i64>,
}

/// The scheduling part of a source: how the last attempt went and when the
/// next one is due. Updated far more often than the body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The last error, or `None` if the last attempt succeeded.
    pub last_error: Option<String>,
    /// When the source was last tried.
    pub last_attempt: Option<i64>,
    /// When it will be tried next.
    pub next_attempt: Option<i64>,
}

/// What [`Store::put`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The record replaced the previous one (or was the first).
    Stored,
    /// The stored CRL has a higher CRL number than the offered one (or the
    /// offered one has none): nothing was written. A replayed or rolled back
    /// CRL is refused here even if it verifies (RFC 5280 §5.2.3).
    RefusedOlder {
        /// The stored CRL number.
        stored: Vec<u8>,
        /// The offered CRL number, `None` when the offered CRL has none.
        offered: Option<Vec<u8>>,
    },
}

/// Which certificate a revocation fact is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevocationKey {
    /// Identifies the issuer (e.g. a hash of its name and key), at most
    /// 65535 bytes.
    pub issuer_key: Vec<u8>,
    /// The certificate serial number, big-endian as in the certificate.
    pub serial: Vec<u8>,
}

/// A revocation fact as stored (the core's [`vigil_core::revocation::RevocationFact`],
/// keyed by [`RevocationKey`]): "this certificate is revoked", kept until the certificate expires even
/// when the CRL or OCSP answer that said so goes stale (issue 3, item 4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFact {
    /// revocationDate, Unix seconds.
    pub revoked_at: i64,
    /// CRLReason code (RFC 5280 §5.3.1), if given.
    pub reason: Option<u8>,
    /// Where the fact came from, e.g. the CRL or OCSP URL.
    pub source: String,
    /// The certificate's notAfter, Unix seconds: the fact may be dropped
    /// after it.
    pub expires_at: i64,
}

/// Why a store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage backend failed (I/O, lock held by another process, ...).
    Backend {
        /// What was being done, e.g. `open` or `put`.
        operation: &'static str,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value could not be decoded; it is not used.
    Corrupt {
        /// The record's key: the URL, or a hex key for revocation facts.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The input cannot be stored as given.
    Invalid {
        /// What is wrong with it.
        detail: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend { operation, source } => write!(f, "store {operation} failed: {source}"),
            Self::Corrupt { key, detail } => write!(f, "stored record {key} is corrupt: {detail}"),
            Self::Invalid { detail } => write!(f, "cannot store: {detail}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Decides whether `offered` may replace `stored` (RFC 5280 §5.2.3: CRL
/// numbers increase monotonically). Only CRL-over-CRL is constrained; an
/// equal number is allowed so that metadata can be rewritten.
fn check_order(
    stored_kind: SourceKind,
    stored_number: Option<&[u8]>,
    offered: &SourceRecord,
) -> PutOutcome {
    if stored_kind != SourceKind::Crl || offered.kind != SourceKind::Crl {
        return PutOutcome::Stored;
    }
    let Some(stored_number) = stored_number else {
        return PutOutcome::Stored;
    };
    match &offered.crl_number {
        Some(n) if compare_crl_numbers(n, stored_number) != Ordering::Less => PutOutcome::Stored,
        offered => PutOutcome::RefusedOlder {
            stored: stored_number.to_vec(),
            offered: offered.clone(),
        },
    }
}

/// Compares two unsigned big-endian integers of any length.
pub(crate) fn compare_crl_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_leading_zeros(a);
    let b = strip_leading_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_leading_zeros(n: &[u8]) -> &[u8] {
    let first = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    &n[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_numbers_compare_as_unsigned_integers() {
        assert_eq!(
            compare_crl_numbers(&[0x00, 0x80], &[0x7f]),
            Ordering::Greater
        );
        assert_eq!(
            compare_crl_numbers(&[0x01, 0x00], &[0xff]),
            Ordering::Greater
        );
        assert_eq!(compare_crl_numbers(&[0x00, 0x05], &[0x05]), Ordering::Equal);
        assert_eq!(compare_crl_numbers(&[], &[0x00]), Ordering::Equal);
        assert_eq!(compare_crl_numbers(&[0x02], &[0x00, 0x03]), Ordering::Less);
    }
}
