//! Fleet mode's side of the engine: the [`Exchange`] it consults before
//! asking a CA, and bodies other nodes fetched, pushed to it.

use super::*;
use crate::exchange::{Exchange, SharedBody, Turn};

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

    /// Before this node asks the CA for `key`: what the fleet says.
    /// `Some`: the refresh is done (a body from the fleet passed `load`
    /// and was newer, or the fleet asked the CA in this window); `None`:
    /// ask the CA. Without a fleet, `None`.
    pub(super) async fn ask_fleet<F, Fut>(
        &self,
        kind: SourceKind,
        key: &str,
        started: i64,
        load: F,
    ) -> Option<Refreshed>
    where
        F: FnOnce(SharedBody) -> Fut,
        Fut: std::future::Future<Output = Result<bool, String>>,
    {
        let x = self.exchange()?;
        let held = self.tracked(key).and_then(|t| t.timing.this_update);
        let asked = asked_now();
        match x.turn(kind, key, held, asked).await {
            Turn::Fetch => None,
            Turn::Skip => Some(self.skipped(key, kind, started)),
            Turn::Take(body) => match load(body).await {
                Ok(true) => {
                    x.taken(kind, key);
                    Some(Refreshed::Updated)
                }
                // What the fleet holds is held here already (the push
                // took it meanwhile): as current as the fleet's; only an
                // operator's refresh goes on to the CA.
                Ok(false) if !asked => Some(self.skipped(key, kind, started)),
                Ok(false) => None,
                Err(why) => {
                    x.refused(kind, key, &why);
                    None
                }
            },
        }
    }

    /// What this node asked the CA for `key` passed every check: the
    /// fleet is told (and given `body`).
    pub(super) fn fleet_fetched(&self, kind: SourceKind, key: &str, body: Option<SharedBody>) {
        if let Some(x) = self.exchange() {
            let held = self.tracked(key).and_then(|t| t.timing.this_update);
            x.fetched(kind, key, held, body);
        }
    }

    /// Asking the CA for `key` failed: the fleet's lease is given up.
    pub(super) fn fleet_fetch_failed(&self, kind: SourceKind, key: &str) {
        if let Some(x) = self.exchange() {
            x.fetch_failed(kind, key);
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
