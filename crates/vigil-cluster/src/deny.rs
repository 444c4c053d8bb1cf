//! Deny rules fleet-wide: every node watches the deny bucket and applies
//! what it holds; rules set or lifted on a node are written there.
//!
//! Each KV key holds the latest record for one rule ([`crate::record`]).
//! Of two records for one key the later (`at`) wins, on every node alike,
//! so the fleet converges whatever order records arrive in: a node that
//! holds something newer than the bucket writes it back (a rule set while
//! the node was cut off from NATS reaches the others when it reconnects),
//! and a node that holds something older takes the bucket's (a rule set
//! elsewhere while the node was away or down reaches it when it
//! reconnects, before it reports ready).
//!
//! Nothing from the bucket is applied before it is checked
//! ([`Record::open`]); a refused record is logged and counted and changes
//! nothing: what this node holds stays.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use vigil_core::{DenyKey, DenyRule};
use vigil_runtime::Engine;

use crate::record::{kv_key, Op, Record};
use crate::signing::{SigningKey, VerifyKey};
use crate::{now_ms, ClusterError, Shared};

/// Lifts remembered (so that an older record does not bring a rule back).
const MAX_TOMBSTONES: usize = 10_000;

/// What this node holds for one KV key.
#[derive(Clone, Debug)]
struct Known {
    at: i64,
    op: Op,
    key: DenyKey,
    /// The envelope to write back when the bucket holds something older;
    /// none for a rule that cannot be written (set before fleet mode, in a
    /// signed fleet, on a node without the signing key).
    sealed: Option<Bytes>,
}

/// The deny side of a node.
pub(crate) struct DenySync {
    pub(crate) fleet: String,
    pub(crate) node: String,
    signing: Option<Arc<SigningKey>>,
    verify: Vec<VerifyKey>,
    engine: Engine,
    max_rules: usize,
    known: Mutex<HashMap<String, Known>>,
    shared: Arc<Shared>,
}

/// What became of one bucket entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// This node now holds it.
    Taken,
    /// This node held it already.
    Same,
    /// This node holds something newer; that should be written back.
    Older,
    /// Refused (and counted).
    Refused,
}

impl DenySync {
    pub(crate) fn new(engine: Engine, config: &crate::ClusterConfig, shared: Arc<Shared>) -> Self {
        let verify = config.effective_verify_keys();
        let sync = Self {
            fleet: config.fleet.clone(),
            node: config.node_id.clone(),
            signing: config.signing_key.clone(),
            verify,
            engine,
            max_rules: config.max_rules,
            known: Mutex::new(HashMap::new()),
            shared,
        };
        // What the store kept: rules set on this node or learned from the
        // bus before. Written back when the bucket lacks them.
        let mut known = sync.lock();
        for rule in sync.engine.denials() {
            let at = rule.set_at.unwrap_or(0);
            let sealed = sync.seal(&Record::set(&sync.fleet, &sync.node, &rule, at));
            known.insert(
                kv_key(&rule.key),
                Known {
                    at,
                    op: Op::Set,
                    key: rule.key.clone(),
                    sealed,
                },
            );
        }
        drop(known);
        sync
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a verify key is configured.
    pub(crate) fn signed(&self) -> bool {
        !self.verify.is_empty()
    }

    /// The envelope for `record`, or none when this node may not write it
    /// (a signed fleet and no signing key here).
    fn seal(&self, record: &Record) -> Option<Bytes> {
        if self.signed() && self.signing.is_none() {
            return None;
        }
        Some(Bytes::from(record.seal(self.signing.as_deref())))
    }

    /// Sets `rule` on this node and returns whether the list changed, the
    /// rule as held (with who and when), and the KV key and envelope to
    /// write.
    pub(crate) async fn set_local(
        &self,
        mut rule: DenyRule,
    ) -> Result<(bool, DenyRule, String, Bytes), ClusterError> {
        let at = rule
            .set_at
            .unwrap_or_else(now_ms)
            .max(self.newest_at(&rule.key) + 1);
        rule.set_at = Some(at);
        let record = Record::set(&self.fleet, &self.node, &rule, at);
        let sealed = self.seal(&record).ok_or(ClusterError::CannotSign)?;
        let rule = record.rule().ok_or(ClusterError::CannotSign)?;
        let kv = kv_key(&rule.key);
        let changed = self.engine_deny(rule.clone()).await?;
        self.lock().insert(
            kv.clone(),
            Known {
                at,
                op: Op::Set,
                key: record.key,
                sealed: Some(sealed.clone()),
            },
        );
        Ok((changed, rule, kv, sealed))
    }

    /// Lifts `key` on this node and returns (whether a rule was lifted, the
    /// KV key and envelope to write; none when nothing is known of it).
    pub(crate) async fn lift_local(
        &self,
        key: &DenyKey,
    ) -> Result<(bool, Option<(String, Bytes)>), ClusterError> {
        let kv = kv_key(key);
        let at = now_ms().max(self.newest_at(key) + 1);
        let record = Record::lift(&self.fleet, &self.node, key, at);
        let sealed = self.seal(&record).ok_or(ClusterError::CannotSign)?;
        let lifted = self.engine_lift(key.clone()).await?;
        let was_set = self.lock().get(&kv).is_some_and(|k| k.op == Op::Set);
        if !lifted && !was_set {
            return Ok((false, None));
        }
        self.remember_lift(kv.clone(), key.clone(), at, Some(sealed.clone()));
        Ok((lifted, Some((kv, sealed))))
    }

    fn newest_at(&self, key: &DenyKey) -> i64 {
        self.lock().get(&kv_key(key)).map_or(i64::MIN + 1, |k| k.at)
    }

    fn remember_lift(&self, kv: String, key: DenyKey, at: i64, sealed: Option<Bytes>) {
        let mut known = self.lock();
        known.insert(
            kv,
            Known {
                at,
                op: Op::Lift,
                key,
                sealed,
            },
        );
        let lifts = known.values().filter(|k| k.op == Op::Lift).count();
        if lifts > MAX_TOMBSTONES {
            // The oldest lift is forgotten: at worst an older record for it
            // can set the rule again (failing closed).
            if let Some(oldest) = known
                .iter()
                .filter(|(_, k)| k.op == Op::Lift)
                .min_by_key(|(_, k)| k.at)
                .map(|(kv, _)| kv.clone())
            {
                known.remove(&oldest);
            }
        }
    }

    /// Applies one bucket entry (see the module comment).
    pub(crate) async fn apply(&self, entry: &kv::Entry) -> Applied {
        let (at, record, sealed) = match entry.operation {
            Operation::Put => {
                match Record::open(&entry.value, &entry.key, &self.fleet, &self.verify) {
                    Ok(r) => (r.at, Some(r), Some(entry.value.clone())),
                    Err(e) => {
                        self.refuse(&entry.key, &e.to_string());
                        return Applied::Refused;
                    }
                }
            }
            Operation::Delete | Operation::Purge => {
                if self.signed() {
                    // A bare delete carries no signature: it cannot lift a
                    // signed ban.
                    self.refuse(
                        &entry.key,
                        &crate::record::Refused::UnsignedDelete.to_string(),
                    );
                    return Applied::Refused;
                }
                let created = entry.created.unix_timestamp_nanos() / 1_000_000;
                (i64::try_from(created).unwrap_or(0), None, None)
            }
        };
        let held = self.lock().get(&entry.key).cloned();
        match held.as_ref().map(|h| h.at.cmp(&at)) {
            Some(std::cmp::Ordering::Equal) => return Applied::Same,
            Some(std::cmp::Ordering::Greater) => return Applied::Older,
            None | Some(std::cmp::Ordering::Less) => {}
        }
        let result = match &record {
            Some(r) if r.op == Op::Set => {
                let Some(rule) = r.rule() else {
                    return Applied::Refused;
                };
                let is_new = held.as_ref().is_none_or(|h| h.op == Op::Lift);
                if is_new && self.engine.denial_count() >= self.max_rules {
                    self.refuse(
                        &entry.key,
                        &format!("the deny list holds at most {} rules", self.max_rules),
                    );
                    return Applied::Refused;
                }
                let key = rule.key.clone();
                let done = self.engine_deny(rule).await;
                if done.is_ok() {
                    self.lock().insert(
                        entry.key.clone(),
                        Known {
                            at,
                            op: Op::Set,
                            key,
                            sealed,
                        },
                    );
                }
                done.map(|_| ())
            }
            Some(r) => {
                let done = self.engine_lift(r.key.clone()).await;
                if done.is_ok() {
                    self.remember_lift(entry.key.clone(), r.key.clone(), at, sealed);
                }
                done.map(|_| ())
            }
            // A bare delete: lifts the rule this node knows under that key.
            None => match held {
                Some(h) if h.op == Op::Set => {
                    let done = self.engine_lift(h.key.clone()).await;
                    if done.is_ok() {
                        self.remember_lift(entry.key.clone(), h.key, at, None);
                    }
                    done.map(|_| ())
                }
                _ => Ok(()),
            },
        };
        match result {
            Ok(()) => {
                self.shared.applied.fetch_add(1, Ordering::Relaxed);
                Applied::Taken
            }
            Err(e) => {
                tracing::error!(key = %entry.key, error = %e, "cannot apply a deny record from the bus");
                Applied::Refused
            }
        }
    }

    /// What this node should write back for `kv_key` (it holds something
    /// newer than the bucket, or the bucket lacks it).
    pub(crate) fn write_back(&self, kv_key: &str) -> Option<Bytes> {
        self.lock().get(kv_key).and_then(|k| k.sealed.clone())
    }

    /// KV keys of the rules this node holds that are not in `seen`: written
    /// back after a resync.
    pub(crate) fn unseen_rules(&self, seen: &std::collections::HashSet<String>) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(kv, k)| k.op == Op::Set && k.sealed.is_some() && !seen.contains(*kv))
            .map(|(kv, _)| kv.clone())
            .collect()
    }

    fn refuse(&self, kv_key: &str, why: &str) {
        self.shared.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(key = %kv_key, reason = %why, "deny record from the bus refused");
    }

    async fn engine_deny(&self, rule: DenyRule) -> Result<bool, ClusterError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.deny(rule))
            .await
            .map_err(|e| ClusterError::Store(e.to_string()))?
            .map_err(|e| ClusterError::Store(e.to_string()))
    }

    async fn engine_lift(&self, key: DenyKey) -> Result<bool, ClusterError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.lift(&key))
            .await
            .map_err(|e| ClusterError::Store(e.to_string()))?
            .map_err(|e| ClusterError::Store(e.to_string()))
    }
}
