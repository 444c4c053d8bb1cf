//! A [`Store`] in memory, with the same rules as the sled one, for tests
//! and for running without a data directory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{
    check_order, PutOutcome, RevocationKey, SourceMeta, SourceRecord, SourceStatus, Store,
    StoreError, StoredFact, Table,
};

/// A [`Store`] that keeps everything in memory and loses it on drop.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sources: HashMap<String, SourceRecord>,
    revocations: BTreeMap<RevocationKey, StoredFact>,
    tables: BTreeMap<(Table, Vec<u8>), Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner.lock().map_err(|_| StoreError::Backend {
            operation: "lock",
            source: "memory store mutex poisoned".into(),
        })
    }
}

impl Store for MemoryStore {
    fn get(&self, url: &str) -> Result<Option<SourceRecord>, StoreError> {
        Ok(self.lock()?.sources.get(url).cloned())
    }

    fn put(&self, record: &SourceRecord) -> Result<PutOutcome, StoreError> {
        let mut inner = self.lock()?;
        if let Some(stored) = inner.sources.get(&record.url) {
            let outcome = check_order(stored.kind, stored.crl_number.as_deref(), record);
            if outcome != PutOutcome::Stored {
                return Ok(outcome);
            }
        }
        inner.sources.insert(record.url.clone(), record.clone());
        Ok(PutOutcome::Stored)
    }

    fn put_status(&self, url: &str, status: &SourceStatus) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let Some(record) = inner.sources.get_mut(url) else {
            return Ok(false);
        };
        record.set_status(status.clone());
        Ok(true)
    }

    fn list(&self) -> Result<Vec<Result<SourceMeta, StoreError>>, StoreError> {
        let inner = self.lock()?;
        let mut metas: Vec<SourceMeta> = inner.sources.values().map(SourceRecord::meta).collect();
        metas.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(metas.into_iter().map(Ok).collect())
    }

    fn remove(&self, url: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.sources.remove(url).is_some())
    }

    fn put_revocation(&self, key: &RevocationKey, fact: &StoredFact) -> Result<(), StoreError> {
        self.lock()?.revocations.insert(key.clone(), fact.clone());
        Ok(())
    }

    fn revocations(
        &self,
    ) -> Result<Vec<Result<(RevocationKey, StoredFact), StoreError>>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .revocations
            .iter()
            .map(|(k, f)| Ok((k.clone(), f.clone())))
            .collect())
    }

    fn prune_revocations(&self, now: i64) -> Result<usize, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.revocations.len();
        inner.revocations.retain(|_, fact| fact.expires_at >= now);
        Ok(before - inner.revocations.len())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn put_entry(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.lock()?
            .tables
            .insert((table, key.to_vec()), value.to_vec());
        Ok(())
    }

    fn delete_entry(&self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.lock()?.tables.remove(&(table, key.to_vec())).is_some())
    }

    fn entries(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        Ok(self
            .lock()?
            .tables
            .range((table, Vec::new())..)
            .take_while(|((t, _), _)| *t == table)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}
