//! What a tracked connection's owner holds and receives: the
//! [`TeardownSignal`] that fires once when it must go, the
//! [`TeardownEvent`] saying why, and [`DegradedNotice`]s.

use super::*;

/// Why a connection must go. The strings are the contract of the
/// `teardown` event (`revoked|expired|unverifiable|untrusted|denied`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TeardownReason {
    /// A certificate of the path is revoked.
    Revoked,
    /// A certificate of the path is past its notAfter (or before notBefore).
    Expired,
    /// The revocation status can no longer be determined, under `require`.
    Unverifiable,
    /// The path no longer ends at a trusted anchor, or no longer validates.
    Untrusted,
    /// A certificate of the path is on the operator's deny list.
    Denied,
}

impl TeardownReason {
    /// Every reason, in the order of [`TeardownReason::index`].
    pub const ALL: [Self; 5] = [
        Self::Revoked,
        Self::Expired,
        Self::Unverifiable,
        Self::Untrusted,
        Self::Denied,
    ];

    /// Its position in [`TeardownReason::ALL`] (e.g. for per-reason
    /// counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The contract string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Unverifiable => "unverifiable",
            Self::Untrusted => "untrusted",
            Self::Denied => "denied",
        }
    }

    /// The teardown reason for a verdict's reason code.
    pub fn from_code(code: ReasonCode) -> Self {
        match code {
            ReasonCode::Revoked => Self::Revoked,
            ReasonCode::Denied => Self::Denied,
            ReasonCode::Expired | ReasonCode::NotYetValid => Self::Expired,
            c if c.is_unknown_status() => Self::Unverifiable,
            _ => Self::Untrusted,
        }
    }
}

impl std::fmt::Display for TeardownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One connection torn down: the `teardown` event of the SSE stream, plus
/// the subject of the certificate concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TeardownEvent {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Why it must go: revoked, denied, expired, unverifiable (its
    /// revocation data lapsed and could not be renewed) or untrusted (its
    /// path no longer validates); the `reason` of the contract's event.
    pub reason: TeardownReason,
    /// Serial of the certificate concerned (INTEGER content octets);
    /// lowercase hex in JSON.
    #[serde(serialize_with = "crate::text::ser::hex")]
    pub serial: Vec<u8>,
    /// Subject DN of the certificate concerned.
    pub subject: String,
    /// One human-readable sentence.
    pub detail: String,
    /// When the registry decided, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "crate::text::ser::rfc3339")]
    pub at: i64,
}

/// A connection kept open although its revocation status could not be
/// determined: the verdict soft-failed under `prefer`. Reported once when a
/// connection becomes degraded (at tracking or at a re-check), so operators
/// see what `require` would have closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DegradedNotice {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Serial of the certificate whose status is unknown; lowercase hex in
    /// JSON.
    #[serde(serialize_with = "crate::text::ser::hex")]
    pub serial: Vec<u8>,
    /// Its subject DN.
    pub subject: String,
    /// The verdict's sentence.
    pub detail: String,
    /// When the registry decided, Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "crate::text::ser::rfc3339")]
    pub at: i64,
}

pub(super) type Callback = Box<dyn FnOnce(&TeardownEvent) + Send>;

#[derive(Default)]
pub(super) struct SignalState {
    /// Boxed: most signals never fire, and every tracked connection has one.
    pub(super) event: Option<Box<TeardownEvent>>,
    pub(super) callbacks: Vec<Callback>,
}

/// The teardown signal of one connection: fired at most once, with the
/// event that explains it. Clones share the state. The core never blocks
/// on it; the runtime bridges it with [`TeardownSignal::on_fire`] (e.g. to a
/// tokio oneshot) or polls [`TeardownSignal::is_fired`].
#[derive(Clone, Default)]
pub struct TeardownSignal {
    state: Arc<Mutex<SignalState>>,
}

impl TeardownSignal {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        // A callback that panicked must not stop the teardown of others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the connection must go.
    pub fn is_fired(&self) -> bool {
        self.lock().event.is_some()
    }

    /// The event, once fired.
    pub fn event(&self) -> Option<TeardownEvent> {
        self.lock().event.as_deref().cloned()
    }

    /// Runs `callback` once when the signal fires; at once (on this thread)
    /// if it already has.
    pub fn on_fire(&self, callback: Box<dyn FnOnce(&TeardownEvent) + Send>) {
        let mut state = self.lock();
        match state.event.clone() {
            Some(event) => {
                drop(state);
                callback(&event);
            }
            None => {
                // Usually the only one: no room for more.
                state.callbacks.reserve_exact(1);
                state.callbacks.push(callback);
            }
        }
    }

    /// Fires with `event` unless already fired; runs the callbacks outside
    /// the lock. Returns whether this call fired it.
    pub(super) fn fire(&self, event: &TeardownEvent) -> bool {
        let callbacks = {
            let mut state = self.lock();
            if state.event.is_some() {
                return false;
            }
            state.event = Some(Box::new(event.clone()));
            std::mem::take(&mut state.callbacks)
        };
        for callback in callbacks {
            callback(event);
        }
        true
    }
}

impl std::fmt::Debug for TeardownSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeardownSignal")
            .field("event", &self.event())
            .finish_non_exhaustive()
    }
}

/// Fires the signals outside the registry lock, so a callback may call back
/// into the registry.
pub(super) fn fire_all(fired: Vec<(TeardownSignal, TeardownEvent)>) -> Vec<TeardownEvent> {
    fired
        .into_iter()
        .filter_map(|(signal, event)| signal.fire(&event).then_some(event))
        .collect()
}
