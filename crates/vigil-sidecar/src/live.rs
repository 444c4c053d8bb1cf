//! Connections this process holds itself (`vigil proxy`'s): tracked by the
//! same trackers as registered ones, listed by `GET /v1/connections` and
//! announced on `/v1/events` with their labels, but never stored and never
//! leased. Their owner is told when the peer must go and closes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::oneshot;
use vigil_core::{CertificateDer, TeardownEvent, Usage, Verdict};
use vigil_runtime::Engine;

use crate::connections::LiveRefused;
use crate::record::{ApiId, UsageKind};
use crate::AppState;

/// A handle on an [`app`](crate::app)'s connections for in-process owners
/// (see [`Sidecar::live`](crate::Sidecar::live)). Cheap to clone.
#[derive(Clone)]
pub struct Live {
    app: AppState,
}

/// Why [`Live::attach`] refused a connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refused {
    /// The peer's chain is not trusted now: its verdict.
    Rejected(Arc<Verdict>),
    /// The cap on connections ([`SidecarConfig::max_connections`](crate::SidecarConfig::max_connections)) is reached.
    TooMany(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rejected(v) => write!(f, "{} ({})", v.detail, v.reason),
            Self::TooMany(max) => write!(f, "at most {max} connections may be tracked"),
        }
    }
}

impl std::error::Error for Refused {}

impl Live {
    pub(crate) fn new(app: AppState) -> Self {
        Self { app }
    }

    /// The engine behind the app.
    pub fn engine(&self) -> &Engine {
        &self.app.engine
    }

    /// Verifies `chain` (leaf first) for `usage` against current data (a
    /// resumed TLS session skipped the verifier) and tracks it. The
    /// connection is listed until it is torn down (the event is published
    /// and [`LiveConnection::torn_down`] resolves) or dropped.
    pub async fn attach(
        &self,
        chain: Vec<CertificateDer<'static>>,
        usage: Usage,
        labels: BTreeMap<String, String>,
    ) -> Result<LiveConnection, Refused> {
        let usage = match usage {
            Usage::Client => UsageKind::Client,
            Usage::Server => UsageKind::Server,
            Usage::Any => UsageKind::Any,
        };
        match self.app.conns.register_live(chain, usage, labels).await {
            Ok((id, verdict, torn)) => {
                self.app.metrics.verified(&verdict, None);
                Ok(LiveConnection {
                    id,
                    app: Arc::clone(&self.app),
                    verdict,
                    torn,
                    done: false,
                })
            }
            Err(LiveRefused::Rejected(verdict)) => {
                self.app.metrics.verified(&verdict, None);
                Err(Refused::Rejected(verdict))
            }
            Err(LiveRefused::TooMany(max)) => Err(Refused::TooMany(max)),
        }
    }

    /// Connections tracked now (registered and live).
    pub fn count(&self) -> usize {
        self.app.conns.len()
    }
}

/// A tracked connection held by this process; dropping it forgets it
/// (nothing is announced).
pub struct LiveConnection {
    id: ApiId,
    app: AppState,
    verdict: Arc<Verdict>,
    torn: oneshot::Receiver<TeardownEvent>,
    done: bool,
}

impl LiveConnection {
    /// Its id in `/v1/connections` and in teardown events.
    pub fn id(&self) -> String {
        self.id.to_string()
    }

    /// The verdict it was tracked with.
    pub fn verdict(&self) -> &Arc<Verdict> {
        &self.verdict
    }

    /// Resolves once the peer must go (revoked, expired, unverifiable,
    /// untrusted, denied) with the event already published; pending
    /// forever after that, and if the app is gone.
    pub async fn torn_down(&mut self) -> TeardownEvent {
        if self.done {
            return std::future::pending().await;
        }
        match (&mut self.torn).await {
            Ok(event) => {
                self.done = true;
                event
            }
            Err(_) => {
                self.done = true;
                std::future::pending().await
            }
        }
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.app.conns.forget_live(self.id);
    }
}

impl std::fmt::Debug for LiveConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConnection")
            .field("id", &self.id.to_string())
            .finish_non_exhaustive()
    }
}
