//! The [`Store`] on sled 0.34: one database, three trees.
//!
//! - `sources`: URL -> one value holding the content metadata and the body
//!   (see `codec`), so a body and the CRL number describing it are always
//!   written together.
//! - `status`: URL -> last error / last attempt / next attempt. Kept apart
//!   so that recording a failed attempt does not rewrite a 50 MB CRL.
//! - `revocations`: (issuer key, serial) -> [`StoredFact`].
//!
//! Durability: [`SledStore::put`] and [`SledStore::put_revocation`] flush
//! (fsync) sled's log before returning, so once they return the write
//! survives `kill -9` or power loss. Status updates are flushed by sled's
//! background flusher within about half a second.

use std::path::Path;

use super::codec;
use super::{
    check_order, PutOutcome, RevocationKey, SourceMeta, SourceRecord, SourceStatus, Store,
    StoreError, StoredFact, Table,
};

/// sled's page cache; sled's own default (1 GiB) is far more than a few CRLs
/// need.
const CACHE_CAPACITY: u64 = 8 * 1024 * 1024;

/// A [`Store`] in a sled database directory.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    sources: sled::Tree,
    status: sled::Tree,
    revocations: sled::Tree,
    connections: sled::Tree,
    denials: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. Fails if another process has
    /// it open.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        // sled's background flusher may hold the directory lock for a
        // moment after the previous handle of this process was dropped;
        // a lock held by a live store still fails after the retries.
        let mut attempts = 0;
        let db = loop {
            match sled::Config::new()
                .path(dir.as_ref())
                .cache_capacity(CACHE_CAPACITY)
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if attempts < 20 => {
                    tracing::debug!(error = %e, "store locked; retrying");
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(backend("open")(e)),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(backend("open"));
        Ok(Self {
            sources: tree("sources")?,
            status: tree("status")?,
            revocations: tree("revocations")?,
            connections: tree(Table::Connections.name())?,
            denials: tree(Table::Denials.name())?,
            db,
        })
    }

    fn table(&self, table: Table) -> &sled::Tree {
        match table {
            Table::Connections => &self.connections,
            Table::Denials => &self.denials,
        }
    }

    fn status_of(&self, url: &str) -> Result<SourceStatus, StoreError> {
        let raw = self.status.get(url).map_err(backend("get"))?;
        Ok(codec::decode_status(raw.as_deref()))
    }
}

/// The record stored as `value`, its body a view of `value` (no copy).
fn record_of(
    url: &str,
    value: sled::IVec,
    status: SourceStatus,
) -> Result<SourceRecord, StoreError> {
    let (header, body) = codec::decode_record(url, &value)?;
    // The body is the value's tail (see the codec's layout).
    let start = value.len() - body.len();
    let body = bytes::Bytes::from_owner(value).slice(start..);
    Ok(header.into_record(body, status))
}

impl Store for SledStore {
    fn get(&self, url: &str) -> Result<Option<SourceRecord>, StoreError> {
        let Some(value) = self.sources.get(url).map_err(backend("get"))? else {
            return Ok(None);
        };
        let status = self.status_of(url)?;
        Ok(Some(record_of(url, value, status)?))
    }

    fn for_each_record(
        &self,
        f: &mut dyn FnMut(Result<SourceRecord, StoreError>),
    ) -> Result<(), StoreError> {
        // One read of each value; its body is shared with the value read,
        // not copied (a 1M-entry CRL is ~50 MB: reading it twice and
        // copying it once was half of a restart).
        for item in self.sources.iter() {
            let (key, value) = item.map_err(backend("list"))?;
            let url = String::from_utf8_lossy(&key).into_owned();
            let status = self.status_of(&url)?;
            f(record_of(&url, value, status));
        }
        Ok(())
    }

    fn put(&self, record: &SourceRecord) -> Result<PutOutcome, StoreError> {
        let new: sled::IVec = codec::encode_record(record)?.into();
        let key = record.url.as_bytes();
        // Compare-and-swap loop: the order check and the write are one
        // atomic step, so two writers racing with CRLs 5 and 6 can never
        // leave 5 behind.
        loop {
            let current = self.sources.get(key).map_err(backend("put"))?;
            if let Some(value) = &current {
                // A value that cannot be decoded has no usable number; it is
                // replaced (it would never be used anyway).
                if let Ok((stored, _)) = codec::decode_record(&record.url, value) {
                    let outcome = check_order(stored.kind, stored.crl_number.as_deref(), record);
                    if outcome != PutOutcome::Stored {
                        return Ok(outcome);
                    }
                }
            }
            let swapped = self
                .sources
                .compare_and_swap(key, current, Some(new.clone()))
                .map_err(backend("put"))?;
            if swapped.is_ok() {
                break;
            }
        }
        self.status
            .insert(key, codec::encode_status(&record.status())?)
            .map_err(backend("put"))?;
        self.flush()?;
        Ok(PutOutcome::Stored)
    }

    fn put_status(&self, url: &str, status: &SourceStatus) -> Result<bool, StoreError> {
        if !self
            .sources
            .contains_key(url)
            .map_err(backend("put_status"))?
        {
            return Ok(false);
        }
        self.status
            .insert(url, codec::encode_status(status)?)
            .map_err(backend("put_status"))?;
        Ok(true)
    }

    fn list(&self) -> Result<Vec<Result<SourceMeta, StoreError>>, StoreError> {
        let mut out = Vec::new();
        for item in self.sources.iter() {
            let (key, value) = item.map_err(backend("list"))?;
            let url = String::from_utf8_lossy(&key).into_owned();
            let entry = codec::decode_record(&url, &value)
                .and_then(|(header, _)| Ok(header.into_meta(self.status_of(&url)?)));
            out.push(entry);
        }
        Ok(out)
    }

    fn remove(&self, url: &str) -> Result<bool, StoreError> {
        let removed = self.sources.remove(url).map_err(backend("remove"))?;
        self.status.remove(url).map_err(backend("remove"))?;
        self.flush()?;
        Ok(removed.is_some())
    }

    fn put_revocation(&self, key: &RevocationKey, fact: &StoredFact) -> Result<(), StoreError> {
        let raw_key = codec::encode_revocation_key(key)?;
        let value = serde_json::to_vec(fact).map_err(|e| StoreError::Invalid {
            detail: format!("revocation fact: {e}"),
        })?;
        self.revocations
            .insert(raw_key, value)
            .map_err(backend("put_revocation"))?;
        self.flush()
    }

    fn revocations(
        &self,
    ) -> Result<Vec<Result<(RevocationKey, StoredFact), StoreError>>, StoreError> {
        let mut out = Vec::new();
        for item in self.revocations.iter() {
            let (raw_key, value) = item.map_err(backend("revocations"))?;
            out.push(decode_fact(&raw_key, &value));
        }
        Ok(out)
    }

    fn prune_revocations(&self, now: i64) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for item in self.revocations.iter() {
            let (raw_key, value) = item.map_err(backend("prune_revocations"))?;
            // Undecodable facts are kept: they may be evidence of a
            // revocation, and removing them would make it disappear.
            if let Ok((_, fact)) = decode_fact(&raw_key, &value) {
                if fact.expires_at < now {
                    // Only if unchanged since read: a fact refreshed
                    // meanwhile (new expiry) must stay.
                    let cas = self
                        .revocations
                        .compare_and_swap(&raw_key, Some(&value), None::<&[u8]>)
                        .map_err(backend("prune_revocations"))?;
                    if cas.is_ok() {
                        pruned += 1;
                    }
                }
            }
        }
        if pruned > 0 {
            self.flush()?;
        }
        Ok(pruned)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(backend("flush"))?;
        Ok(())
    }

    fn put_entry(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.table(table)
            .insert(key, value)
            .map_err(backend("put entry"))?;
        self.flush()
    }

    fn delete_entry(&self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        let had = self
            .table(table)
            .remove(key)
            .map_err(backend("delete entry"))?
            .is_some();
        if had {
            self.flush()?;
        }
        Ok(had)
    }

    fn apply_entries(
        &self,
        table: Table,
        ops: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        // One sled batch is atomic (all or none after a crash) and one
        // flush makes all of it durable.
        let mut batch = sled::Batch::default();
        for (key, value) in ops {
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
        self.table(table)
            .apply_batch(batch)
            .map_err(backend("apply entries"))?;
        self.flush()
    }

    fn entries(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.table(table)
            .iter()
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(backend("list entries"))
            })
            .collect()
    }
}

fn decode_fact(raw_key: &[u8], value: &[u8]) -> Result<(RevocationKey, StoredFact), StoreError> {
    let key = codec::decode_revocation_key(raw_key)?;
    let fact = serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: vigil_core::text::hex(raw_key),
        detail: format!("bad revocation fact: {e}"),
    })?;
    Ok((key, fact))
}

fn backend(operation: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        source: Box::new(e),
    }
}
