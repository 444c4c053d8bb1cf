//! Fleet mode's side of the engine: the [`Exchange`] it consults before
//! asking a CA, and bodies other nodes fetched, pushed to it.

use super::*;
use crate::exchange::{Exchange, SharedBody};

tokio::task_local! {
    /// Set while an operator's refresh runs ([`Engine::asked`]).
    static ASKED: bool;
}

/// Whether the refresh running in this task was asked for by an operator.
pub(super) fn asked_now() -> bool {
    ASKED.try_with(|a| *a).unwrap_or(false)
}

/// Runs `f` with the caller's [`asked_now`] (for work spawned on other
/// tasks).
pub(super) async fn keep_asked<F: std::future::Future>(asked: bool, f: F) -> F::Output {
    ASKED.scope(asked, f).await
}

impl Engine {
    /// Runs `refresh` (a refresh of this engine's sources) as an
    /// operator's request: in fleet mode the CA is asked even within a
    /// refresh window in which another node already asked it. Scheduled
    /// refreshes and prefetches are not: the fleet asks once per window.
    pub async fn asked<F: std::future::Future>(refresh: F) -> F::Output {
        ASKED.scope(true, refresh).await
    }

    /// Shares revocation data with a fleet through `exchange` from now on;
    /// false when one was set already (it is set once).
    pub fn set_exchange(&self, exchange: Arc<dyn Exchange>) -> bool {
        self.inner.exchange.set(exchange).is_ok()
    }

    pub(super) fn exchange(&self) -> Option<Arc<dyn Exchange>> {
        self.inner.exchange.get().cloned()
    }

    /// The sources this engine tracks of `kind`, by key.
    pub fn tracks(&self, kind: SourceKind, key: &str) -> bool {
        self.tracked(key).is_some_and(|t| t.kind == Some(kind))
    }

    /// A body another node of the fleet fetched for `key`, offered as it
    /// arrives: checked like a fetched body and loaded when it is newer
    /// than what is held. `Ok(false)`: not newer, or not a source this
    /// engine tracks; `Err`: refused, and nothing changed.
    pub async fn take_shared(
        &self,
        kind: SourceKind,
        key: &str,
        body: SharedBody,
    ) -> Result<bool, String> {
        let started = unix(self.now());
        let Some(tracked) = self.tracked(key) else {
            return Ok(false);
        };
        match kind {
            SourceKind::Crl => self.load_crl(key, body, started).await,
            SourceKind::Ocsp => {
                let Some((_, cert, issuer)) = tracked.ocsp else {
                    return Ok(false);
                };
                self.load_ocsp(
                    key,
                    &cert,
                    &issuer,
                    body.bytes.to_vec(),
                    None,
                    started,
                    true,
                )
                .await
            }
        }
    }

    /// The fleet asked the CA within this refresh window and found nothing
    /// newer than what is held: a success without a fetch.
    pub(super) fn skipped(&self, key: &str, kind: SourceKind, started: i64) -> Refreshed {
        let now = unix(self.now());
        self.update(key, kind, |t| {
            t.timing.last_success = Some(now);
            t.timing.last_attempt = Some(started);
            t.timing.failures = 0;
            t.last_error = None;
        });
        Refreshed::NotModified
    }
}
