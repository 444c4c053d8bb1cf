//! Revocation data shared by the fleet, with zero trust in the bus.
//!
//! - When a node fetched a CRL or an OCSP answer from the CA and it passed
//!   every check, it publishes the DER to the object store
//!   `<fleet>_revocation` under a name derived from the source's key, with
//!   the source, its validators, its thisUpdate and the fetch time in the
//!   object's description ([`Meta`]).
//! - The others take it from there: at once when it is published (a watch
//!   on the store: the fleet learns a revocation as soon as one node does),
//!   and before asking the CA themselves ([`Exchange::turn`]).
//! - One node at a time asks the CA for a source: a lease in the KV bucket
//!   `<fleet>_lease` (create-if-absent; taken over with a revision check
//!   once expired). While the holder fetches, the others wait for what it
//!   publishes; once it is done, the fleet does not ask again for the rest
//!   of the lease (the refresh window). A holder that dies leaves a lease
//!   that expires; the next node takes it.
//!
//! Nothing from the bus is trusted: the engine checks a shared body exactly
//! as a fetched one (signature, issuer, freshness, CRL number rollback,
//! OCSP answer order) before using it, and a body that fails is refused,
//! counted, and displaces nothing. The description is only a hint of
//! whether a body is worth reading; an object larger than the cap is never
//! read; a lease longer than the configured one counts as expired.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt as _;
use vigil_runtime::exchange::{BoxFuture, Exchange, SharedBody, Turn};
use vigil_runtime::{Engine, SourceKind};

use crate::{now_ms, Shared};

/// How often a node waiting on another's fetch looks again.
const POLL: Duration = Duration::from_millis(50);
/// Longest description read.
const MAX_META: usize = 4096;

/// What a published object says about itself (a hint, never trusted).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Meta {
    kind: SourceKind,
    key: String,
    node: String,
    /// thisUpdate of the body, Unix seconds.
    this_update: Option<i64>,
    etag: Option<String>,
    last_modified: Option<String>,
    /// When the node fetched it, Unix milliseconds.
    fetched_at: i64,
}

/// A fetch lease.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Lease {
    node: String,
    /// Unix milliseconds.
    until: i64,
    /// The holder asked the CA and published what it got.
    done: bool,
}

/// The handles of a connected node.
#[derive(Clone)]
pub(crate) struct Handles {
    objects: object_store::ObjectStore,
    leases: kv::Store,
}

/// The fleet's exchange of revocation data (see the module comment).
pub(crate) struct FleetExchange {
    node: String,
    lease: Duration,
    max_object: usize,
    handles: Mutex<Option<Handles>>,
    shared: Arc<Shared>,
}

impl FleetExchange {
    pub(crate) fn new(
        node: String,
        lease: Duration,
        max_object: usize,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            node,
            lease,
            max_object,
            handles: Mutex::new(None),
            shared,
        }
    }

    fn handles(&self) -> Option<Handles> {
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Opens (creating when missing) the object store and the lease bucket.
    pub(crate) async fn open(
        &self,
        js: &jetstream::Context,
        fleet: &str,
        replicas: usize,
    ) -> Result<Handles, String> {
        let bucket = format!("{fleet}_revocation");
        let objects = match js.get_object_store(&bucket).await {
            Ok(o) => o,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some("Vigil: CRLs and OCSP answers fetched by the fleet".into()),
                    max_bytes: 4 * 1024 * 1024 * 1024,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("revocation store {bucket}: {e}"))?,
        };
        let leases = crate::kv::bucket(js, &format!("{fleet}_lease"), 1, 1024, replicas).await?;
        let handles = Handles { objects, leases };
        *self.handles.lock().unwrap_or_else(PoisonError::into_inner) = Some(handles.clone());
        Ok(handles)
    }

    /// Forgets the handles (the connection is gone: fetch alone).
    pub(crate) fn disconnected(&self) {
        *self.handles.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn meta(&self, objects: &object_store::ObjectStore, name: &str) -> Option<(Meta, usize)> {
        let info = tokio::time::timeout(Duration::from_secs(2), objects.info(name))
            .await
            .ok()?
            .ok()?;
        let text = info.description.filter(|d| d.len() <= MAX_META)?;
        let meta: Meta = serde_json::from_str(&text).ok()?;
        Some((meta, info.size))
    }

    async fn read(
        &self,
        objects: &object_store::ObjectStore,
        name: &str,
        meta: &Meta,
        size: usize,
    ) -> Option<SharedBody> {
        if size > self.max_object {
            self.shared.shared_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = %meta.key, size, "shared revocation object over the size cap; not read");
            return None;
        }
        let read = async {
            let object = objects.get(name).await.ok()?;
            let mut bytes = Vec::with_capacity(size.min(self.max_object));
            let cap = u64::try_from(self.max_object).unwrap_or(u64::MAX) + 1;
            object.take(cap).read_to_end(&mut bytes).await.ok()?;
            (bytes.len() <= self.max_object).then_some(bytes)
        };
        let bytes = tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .ok()??;
        Some(SharedBody {
            bytes: Bytes::from(bytes),
            etag: meta.etag.clone(),
            last_modified: meta.last_modified.clone(),
        })
    }

    /// Takes the lease of `key` when it is free or expired (or done, when
    /// an operator asked for this refresh: `force`).
    /// `Ok(true)`: taken; `Ok(false)`: try again; `Err(Some(lease))`: held
    /// by another node; `Err(None)`: the lease could not be read.
    async fn try_lease(
        &self,
        leases: &kv::Store,
        key: &str,
        force: bool,
    ) -> Result<bool, Option<Lease>> {
        let now = now_ms();
        let mine = Lease {
            node: self.node.clone(),
            until: now + i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX),
            done: false,
        };
        let value = Bytes::from(serde_json::to_vec(&mine).unwrap_or_default());
        let wait = Duration::from_secs(2);
        if let Ok(Ok(_)) = tokio::time::timeout(wait, leases.create(key, value.clone())).await {
            return Ok(true);
        }
        let entry = match tokio::time::timeout(wait, leases.entry(key)).await {
            Ok(Ok(Some(entry))) => entry,
            // Gone between the create and the read: try again.
            Ok(Ok(None)) => return Ok(false),
            // Unreadable (NATS slow or in trouble): the caller retries a
            // few times, then fetches alone rather than wait on nothing.
            _ => return Err(None),
        };
        let held: Option<Lease> = (entry.operation == kv::Operation::Put)
            .then(|| serde_json::from_slice(&entry.value).ok())
            .flatten();
        let longest = now + 2 * i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 4);
        match held {
            // Ours: the create went through though its answer was late.
            Some(l) if l.node == self.node && !l.done && l.until > now => Ok(true),
            // Live, and no longer than a lease can be; a finished one does
            // not hold back an operator's refresh.
            Some(l) if l.until > now && l.until <= longest && !(force && l.done) => Err(Some(l)),
            // Expired, deleted or bogus: taken over, unless another node
            // did so first.
            _ => Ok(matches!(
                tokio::time::timeout(wait, leases.update(key, value, entry.revision)).await,
                Ok(Ok(_))
            )),
        }
    }

    fn publish(
        &self,
        kind: SourceKind,
        key: &str,
        this_update: Option<i64>,
        body: Option<SharedBody>,
    ) {
        let Some(handles) = self.handles() else {
            return;
        };
        let node = self.node.clone();
        let key = key.to_owned();
        let lease = self.lease;
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            if let Some(body) = body {
                let meta = Meta {
                    kind,
                    key: key.clone(),
                    node: node.clone(),
                    this_update,
                    etag: body.etag,
                    last_modified: body.last_modified,
                    fetched_at: now_ms(),
                };
                let metadata = object_store::ObjectMetadata {
                    name: object_name(kind, &key),
                    description: serde_json::to_string(&meta).ok(),
                    ..Default::default()
                };
                let mut reader: &[u8] = &body.bytes;
                match tokio::time::timeout(
                    Duration::from_secs(30),
                    handles.objects.put(metadata, &mut reader),
                )
                .await
                {
                    Ok(Ok(_)) => {
                        shared.shared_published.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => shared.error(format!("publishing {key}: {e}")),
                    Err(_) => shared.error(format!("publishing {key}: timed out")),
                }
            }
            let done = Lease {
                node,
                until: now_ms() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
                done: true,
            };
            let value = Bytes::from(serde_json::to_vec(&done).unwrap_or_default());
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                handles.leases.put(lease_key(kind, &key), value),
            )
            .await;
        });
    }

    /// Follows what other nodes publish and offers each body to `engine`
    /// at once (until the connection's handles change).
    pub(crate) async fn follow(
        self: Arc<Self>,
        engine: Engine,
        handles: Handles,
    ) -> Result<(), String> {
        let mut watch = handles
            .objects
            .watch()
            .await
            .map_err(|e| format!("watching the revocation store: {e}"))?;
        while let Some(info) = watch.next().await {
            let info = info.map_err(|e| format!("watching the revocation store: {e}"))?;
            let Some(meta) = info
                .description
                .as_deref()
                .filter(|d| d.len() <= MAX_META)
                .and_then(|d| serde_json::from_str::<Meta>(d).ok())
            else {
                continue;
            };
            if meta.node == self.node || !engine.tracks(meta.kind, &meta.key) {
                continue;
            }
            // The name must be the one this source's key gives: a body
            // published under another source's name is not considered.
            if info.name != object_name(meta.kind, &meta.key) {
                self.refused(
                    meta.kind,
                    &meta.key,
                    "published under another source's name",
                );
                continue;
            }
            let Some(body) = self
                .read(&handles.objects, &info.name, &meta, info.size)
                .await
            else {
                continue;
            };
            match engine.take_shared(meta.kind, &meta.key, body).await {
                Ok(true) => self.taken(meta.kind, &meta.key),
                Ok(false) => {}
                Err(why) => self.refused(meta.kind, &meta.key, &why),
            }
        }
        Err("the revocation store's watch ended".into())
    }
}

impl Exchange for FleetExchange {
    fn turn<'a>(
        &'a self,
        kind: SourceKind,
        key: &'a str,
        held: Option<i64>,
        asked: bool,
    ) -> BoxFuture<'a, Turn> {
        Box::pin(async move {
            let Some(handles) = self.handles() else {
                return Turn::Fetch;
            };
            let name = object_name(kind, key);
            let lease_key = lease_key(kind, key);
            let give_up = tokio::time::Instant::now() + self.lease * 2;
            let mut unreadable = 0;
            loop {
                // Whether this node holds what the bus holds (then a done
                // lease means nothing is left to ask the CA for).
                let mut current = false;
                if let Some((meta, size)) = self.meta(&handles.objects, &name).await {
                    let newer = meta.this_update.is_some_and(|t| held.is_none_or(|h| t > h));
                    current = !newer && held.is_some();
                    if newer && meta.key == key && meta.kind == kind {
                        if let Some(body) = self.read(&handles.objects, &name, &meta, size).await {
                            return Turn::Take(body);
                        }
                    }
                }
                match self.try_lease(&handles.leases, &lease_key, asked).await {
                    Ok(true) => {
                        tracing::info!(source = %key, "fetch lease taken");
                        self.shared.leases_taken.fetch_add(1, Ordering::Relaxed);
                        return Turn::Fetch;
                    }
                    Ok(false) => {}
                    // Another node asked the CA in this window, and what it
                    // published is not newer than what is held.
                    Err(Some(lease)) if lease.done && current => {
                        self.shared.fetches_saved.fetch_add(1, Ordering::Relaxed);
                        return Turn::Skip;
                    }
                    // Done, but this node holds nothing as current: the
                    // copy may have landed since it was looked for (look
                    // again), or it cannot be read (a JetStream outage) or
                    // there is none: then ask the CA rather than go without.
                    Err(Some(lease)) if lease.done => {
                        unreadable += 1;
                        if unreadable >= 3 {
                            return Turn::Fetch;
                        }
                        continue;
                    }
                    Err(Some(_)) => unreadable = 0,
                    Err(None) => {
                        unreadable += 1;
                        if unreadable >= 3 {
                            return Turn::Fetch;
                        }
                    }
                }
                if tokio::time::Instant::now() >= give_up {
                    return Turn::Fetch;
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }

    fn fetched(
        &self,
        kind: SourceKind,
        key: &str,
        this_update: Option<i64>,
        body: Option<SharedBody>,
    ) {
        self.publish(kind, key, this_update, body);
    }

    fn fetch_failed(&self, kind: SourceKind, key: &str) {
        let Some(handles) = self.handles() else {
            return;
        };
        let key = lease_key(kind, key);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), handles.leases.delete(key)).await;
        });
    }

    fn taken(&self, kind: SourceKind, key: &str) {
        self.shared.shared_taken.fetch_add(1, Ordering::Relaxed);
        tracing::info!(kind = ?kind, source = %key, "revocation data taken from the fleet");
    }

    fn refused(&self, kind: SourceKind, key: &str, why: &str) {
        self.shared.shared_refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(kind = ?kind, source = %key, reason = %why, "revocation data from the fleet refused");
    }
}

/// The object name of a source: its kind and the SHA-256 of its key.
fn object_name(kind: SourceKind, key: &str) -> String {
    let kind = match kind {
        SourceKind::Crl => "crl",
        SourceKind::Ocsp => "ocsp",
    };
    format!(
        "{kind}.{}",
        vigil_core::text::hex(&vigil_core::sha256(key.as_bytes()))
    )
}

/// The lease key of a source (KV keys allow `[-/_=.a-zA-Z0-9]`).
fn lease_key(kind: SourceKind, key: &str) -> String {
    object_name(kind, key)
}
