//! Restoring persisted registrations at start: each is verified again
//! against current data; those no longer trusted are announced as
//! teardowns and forgotten.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vigil_core::{ConnectionId, TeardownEvent, TeardownReason};
use vigil_runtime::{Store, Table};

use super::teardown::{leaf_names, Gone};
use super::{Connections, Lease, NewReg};
use crate::record::{ca_key, lease_key, now_ms, parse_ca_key, parse_lease_key, ApiId, Record};

impl Connections {
    /// Tracks every persisted registration again: each is verified against
    /// current data (fetching what is missing or stale); those no longer
    /// trusted are announced as teardowns and forgotten. CA certificates no
    /// registration refers to any more are removed. Returns (restored,
    /// refused).
    pub(crate) async fn restore(self: &Arc<Self>, store: Arc<dyn Store>) -> (u64, u64) {
        let entries = tokio::task::spawn_blocking(move || store.entries(Table::Connections))
            .await
            .unwrap_or_else(|e| {
                Err(vigil_runtime::StoreError::Invalid {
                    detail: e.to_string(),
                })
            });
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                self.problem(format!("cannot read the persisted connections: {e}"));
                return (0, 0);
            }
        };
        let mut cas = HashMap::new();
        let mut records = Vec::new();
        let mut leases: HashMap<ApiId, u32> = HashMap::new();
        let mut ids: HashSet<ApiId> = HashSet::new();
        for (key, value) in entries {
            if let Some(digest) = parse_ca_key(&key) {
                cas.insert(digest, value);
            } else if let Some(id) = parse_lease_key(&key) {
                match <[u8; 4]>::try_from(value.as_slice()) {
                    Ok(secs) if u32::from_be_bytes(secs) > 0 => {
                        leases.insert(id, u32::from_be_bytes(secs));
                    }
                    // The record's own length applies meanwhile.
                    _ => self.problem(format!("connection {id}: stored lease length is malformed")),
                }
            } else if let Some(id) = ApiId::from_key(&key) {
                ids.insert(id);
                match Record::decode(&value) {
                    Ok(r) => records.push((id, r)),
                    // Kept on disk for inspection rather than dropped.
                    Err(e) => self.problem(format!("connection {id}: cannot be decoded: {e}")),
                }
            } else {
                self.problem(format!(
                    "a stored connection entry has a malformed key ({} bytes); left in place",
                    key.len()
                ));
            }
        }
        let used: HashSet<[u8; 32]> = records.iter().flat_map(|(_, r)| r.rest.clone()).collect();
        // Renewed lengths win over the records' own.
        let records: Vec<(ApiId, Record, bool)> = records
            .into_iter()
            .map(|(id, mut record)| {
                let renewed = leases.get(&id).copied();
                record.lease_secs = renewed.or(record.lease_secs);
                (id, record, renewed.is_some())
            })
            .collect();
        {
            let mut maps = self.write();
            for id in leases.keys().filter(|id| !ids.contains(id)) {
                self.writer.delete_soon(lease_key(*id));
            }
            for digest in cas.keys() {
                if used.contains(digest) {
                    maps.stored_cas.insert(*digest);
                } else {
                    self.writer.delete_soon(ca_key(digest));
                }
            }
        }
        let cas = Arc::new(cas);
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(1);
        let chunk = records.len().div_ceil(workers).max(1);
        let mut jobs = tokio::task::JoinSet::new();
        let mut records = records.into_iter();
        loop {
            let part: Vec<(ApiId, Record, bool)> = records.by_ref().take(chunk).collect();
            if part.is_empty() {
                break;
            }
            let this = Arc::clone(self);
            let cas = Arc::clone(&cas);
            jobs.spawn(async move {
                for (id, record, renewed) in part {
                    this.restore_one(id, record, renewed, &cas).await;
                }
            });
        }
        while jobs.join_next().await.is_some() {}
        (
            self.counters.restored.load(Ordering::Relaxed),
            self.counters.restore_refused.load(Ordering::Relaxed),
        )
    }

    /// `lease_key`: a renewed length is stored for it (and is the record's
    /// `lease_secs` by now).
    async fn restore_one(
        &self,
        id: ApiId,
        record: Record,
        lease_key: bool,
        cas: &HashMap<[u8; 32], Vec<u8>>,
    ) {
        let chain = match record.chain(cas) {
            Ok(c) => c,
            Err(e) => {
                self.problem(format!("connection {id}: unusable chain: {e}"));
                return;
            }
        };
        let usage = record.usage;
        let tracker = &self.trackers[usage.index()];
        let verdict = crate::verify_chain(&self.engine, &chain, tracker.options()).await;
        let now = now_ms();
        let lease = record.lease_secs.map(|secs| Lease {
            secs,
            expires_ms: now.saturating_add(i64::from(secs) * 1000),
        });
        let refused = if verdict.is_accepted() {
            let mut maps = self.write();
            let reg = NewReg {
                id,
                usage,
                labels: record.labels.clone(),
                registered_at: record.registered_at.saturating_mul(1000),
                lease,
                lease_key,
                live: None,
            };
            self.attach(&mut maps, chain, reg).err()
        } else {
            Some(verdict)
        };
        let Some(verdict) = refused else {
            self.counters.restored.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // Became untrusted while the sidecar was down.
        self.counters
            .restore_refused
            .fetch_add(1, Ordering::Relaxed);
        let (subject, serial) = leaf_names(&verdict);
        let event = TeardownEvent {
            connection_id: ConnectionId(0),
            reason: TeardownReason::from_code(verdict.reason),
            serial,
            subject,
            detail: verdict.detail.clone(),
            at: now.div_euclid(1000),
        };
        let gone = Gone {
            usage,
            labels: record.labels,
            registered_at: record.registered_at.saturating_mul(1000),
            lease,
            lease_key,
            live: None,
        };
        self.announce(id, gone, &event);
    }
}
