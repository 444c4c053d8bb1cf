//! The way out: teardowns announced on `/v1/events` (with a tombstone kept
//! for `GET /v1/connections/{id}`), degraded notices relayed, and leases
//! that ran out.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use vigil_core::{ConnectionId, TeardownEvent, Verdict};

use super::{Connections, Lease, PeerKey, Reg, TOMBSTONES};
use crate::record::{lease_key, rfc3339_ms, ApiId, ConnectionView, TeardownOut, UsageKind};

impl Connections {
    pub(super) fn on_teardown(&self, key: PeerKey, conn: ConnectionId, event: &TeardownEvent) {
        let gone: Vec<(ApiId, Gone)> = {
            let mut maps = self.write();
            // A peer of the same chain tracked since is another one.
            if maps.peers.get(&key).is_none_or(|p| p.conn != conn) {
                return;
            }
            let Some(peer) = maps.peers.remove(&key) else {
                return;
            };
            maps.by_conn.remove(&(key.0, conn.0));
            peer.members
                .iter()
                .filter_map(|id| {
                    let reg = maps.active.remove(&id)?;
                    if let Some(l) = reg.lease {
                        maps.leases.remove(&(l.expires_ms, id));
                    }
                    Some((id, Gone::from(reg)))
                })
                .collect()
        };
        for (id, reg) in gone {
            self.announce(id, reg, event);
        }
    }

    /// Publishes the teardown of `id`, keeps a tombstone and forgets the
    /// registration in the store (after the event is out, so a crash in
    /// between announces it again after the restart rather than never).
    pub(super) fn announce(&self, id: ApiId, mut reg: Gone, event: &TeardownEvent) {
        let reg_lease_key = reg.lease_key;
        let live = reg.live.take();
        let durable = live.is_none();
        if let Some(owner) = live {
            // The owner closes its connection first; the event follows.
            let _ = owner.send(event.clone());
        }
        let out = TeardownOut::new(id, event, &reg.labels);
        self.counters.teardowns[event.reason.index()].fetch_add(1, Ordering::Relaxed);
        self.hub
            .publish("teardown", serde_json::to_string(&out).unwrap_or_default());
        tracing::info!(
            connection = %id,
            reason = %event.reason,
            serial = %vigil_core::text::hex(&event.serial),
            "teardown announced"
        );
        let view = ConnectionView {
            id: id.to_string(),
            state: "torn_down",
            usage: reg.usage,
            registered_at: rfc3339_ms(reg.registered_at),
            lease_secs: reg.lease.map(|l| l.secs),
            lease_expires_at: reg.lease.map(|l| rfc3339_ms(l.expires_ms)),
            valid_until: None,
            subject: event.subject.clone(),
            serial: event.serial.clone(),
            labels: reg.labels,
            teardown: Some(out),
        };
        {
            let mut maps = self.write();
            if maps.tomb_order.len() >= TOMBSTONES {
                if let Some(old) = maps.tomb_order.pop_front() {
                    maps.tombstones.remove(&old);
                }
            }
            maps.tomb_order.push_back(id);
            maps.tombstones.insert(id, view);
        }
        if !durable {
            return;
        }
        if reg_lease_key {
            self.writer.delete_soon(lease_key(id));
        }
        self.writer.delete_soon(id.key());
    }

    pub(super) fn on_degraded(&self, usage: usize, notice: vigil_core::DegradedNotice) {
        let members: Vec<(ApiId, BTreeMap<String, String>)> = {
            let maps = self.read();
            let Some(key) = maps.by_conn.get(&(usage, notice.connection_id.0)) else {
                return;
            };
            maps.peers
                .get(key)
                .map(|p| {
                    p.members
                        .iter()
                        .map(|id| {
                            let labels = maps.active.get(&id).map(|r| r.labels.clone());
                            (id, labels.unwrap_or_default())
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        for (id, labels) in members {
            let data = serde_json::json!({
                "connection_id": id.to_string(),
                "serial": vigil_core::text::hex(&notice.serial),
                "subject": notice.subject,
                "detail": notice.detail,
                "at": vigil_core::text::rfc3339(notice.at),
                "labels": labels,
            });
            self.hub.publish("degraded", data.to_string());
        }
    }

    pub(super) fn expire_leases(&self, now: i64) {
        let expired: Vec<(ApiId, Reg, (String, Vec<u8>))> = {
            let mut maps = self.write();
            let due: Vec<(i64, ApiId)> = maps
                .leases
                .range(..(now, ApiId(u128::MAX)))
                .copied()
                .collect();
            let mut out = Vec::new();
            for (at, id) in due {
                maps.leases.remove(&(at, id));
                if let Some(reg) = maps.active.remove(&id) {
                    let leaf = maps
                        .peers
                        .get(&reg.peer)
                        .and_then(|p| self.trackers[reg.peer.0].registry().leaf(p.conn))
                        .unwrap_or_default();
                    self.detach(&mut maps, id, &reg);
                    out.push((id, reg, leaf));
                }
            }
            out
        };
        for (id, reg, (subject, serial)) in expired {
            self.counters.lease_expired.fetch_add(1, Ordering::Relaxed);
            if reg.lease_key {
                self.writer.delete_soon(lease_key(id));
            }
            self.writer.delete_soon(id.key());
            let data = serde_json::json!({
                "connection_id": id.to_string(),
                "serial": vigil_core::text::hex(&serial),
                "subject": subject,
                "at": rfc3339_ms(now),
                "labels": reg.labels,
            });
            self.hub.publish("lease_expired", data.to_string());
            tracing::info!(connection = %id, "lease expired; connection forgotten");
        }
    }
}

/// A registration on its way out.
pub(super) struct Gone {
    pub(super) usage: UsageKind,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) registered_at: i64,
    pub(super) lease: Option<Lease>,
    pub(super) lease_key: bool,
    pub(super) live: Option<tokio::sync::oneshot::Sender<TeardownEvent>>,
}

impl From<Reg> for Gone {
    fn from(reg: Reg) -> Self {
        Self {
            usage: UsageKind::ALL[reg.peer.0],
            labels: reg.labels,
            registered_at: reg.registered_at,
            lease: reg.lease,
            lease_key: reg.lease_key,
            live: reg.live,
        }
    }
}

/// The leaf's subject and serial, from the verdict's path (empty when no
/// path was found).
pub(super) fn leaf_names(verdict: &Verdict) -> (String, Vec<u8>) {
    verdict
        .chain
        .first()
        .map(|c| (c.subject.clone(), c.serial.clone()))
        .unwrap_or_default()
}
