//! Fleet mode's side of the engine: the [`Exchange`] it consults before
//! asking a CA, and bodies other nodes fetched, pushed to it.

use super::*;
use crate::exchange::{Exchange, SharedBody};

impl Engine {
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
