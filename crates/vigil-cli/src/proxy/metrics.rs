//! The proxy's own counters, appended to the admin API's `/metrics`
//! (`vigil_proxy_*`), one label set per listener.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// How an accepted TCP connection fared before its bytes flowed.
#[derive(Clone, Copy)]
pub(crate) enum Outcome {
    /// Verified, tracked and spliced to the target.
    Spliced = 0,
    HandshakeFailed = 1,
    HandshakeTimeout = 2,
    NotAllowed = 3,
    Untrusted = 4,
    TargetUnreachable = 5,
}

const OUTCOMES: [&str; 6] = [
    "spliced",
    "handshake_failed",
    "handshake_timeout",
    "not_allowed",
    "untrusted",
    "target_unreachable",
];

/// Why a spliced connection ended.
#[derive(Clone, Copy)]
pub(crate) enum Closed {
    /// One side closed it (or an I/O error).
    Ended = 0,
    /// Its peer stopped being trusted (revoked, expired, ...).
    TornDown = 1,
    NotAllowed = 2,
    Idle = 3,
    Shutdown = 4,
}

const CLOSED: [&str; 5] = ["ended", "torn_down", "not_allowed", "idle", "shutdown"];

/// One listener's counters.
#[derive(Default)]
pub(crate) struct RouteCounters {
    listen: String,
    outcomes: [AtomicU64; 6],
    closed: [AtomicU64; 5],
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl RouteCounters {
    pub(crate) fn outcome(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, why: Closed) {
        self.closed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes from the accepting side to the target, and back.
    pub(crate) fn bytes(&self, up: u64, down: u64) {
        self.bytes_up.fetch_add(up, Ordering::Relaxed);
        self.bytes_down.fetch_add(down, Ordering::Relaxed);
    }
}

/// Every listener's counters, and the proxy's.
#[derive(Default)]
pub(crate) struct ProxyMetrics {
    routes: Mutex<Vec<Arc<RouteCounters>>>,
    pub(crate) at_limit: AtomicU64,
    pub(crate) open: AtomicI64,
}

impl ProxyMetrics {
    /// The counters of the listener bound at `listen`.
    pub(crate) fn route(&self, listen: String) -> Arc<RouteCounters> {
        let counters = Arc::new(RouteCounters {
            listen,
            ..RouteCounters::default()
        });
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&counters));
        counters
    }

    /// Prometheus exposition text.
    pub(crate) fn render(&self, out: &mut String) {
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP vigil_proxy_connections_total Accepted connections by how they fared before \
             their bytes flowed.\n# TYPE vigil_proxy_connections_total counter"
        );
        for r in &routes {
            for (name, n) in OUTCOMES.iter().zip(&r.outcomes) {
                let _ = writeln!(
                    out,
                    "vigil_proxy_connections_total{{listen=\"{}\",outcome=\"{name}\"}} {}",
                    r.listen,
                    get(n)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP vigil_proxy_closed_total Spliced connections closed, by why.\n# TYPE \
             vigil_proxy_closed_total counter"
        );
        for r in &routes {
            for (name, n) in CLOSED.iter().zip(&r.closed) {
                let _ = writeln!(
                    out,
                    "vigil_proxy_closed_total{{listen=\"{}\",why=\"{name}\"}} {}",
                    r.listen,
                    get(n)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP vigil_proxy_bytes_total Bytes moved by ended connections (up: toward the \
             target).\n# TYPE vigil_proxy_bytes_total counter"
        );
        for r in &routes {
            let _ = writeln!(
                out,
                "vigil_proxy_bytes_total{{listen=\"{}\",direction=\"up\"}} {}\n\
                 vigil_proxy_bytes_total{{listen=\"{}\",direction=\"down\"}} {}",
                r.listen,
                get(&r.bytes_up),
                r.listen,
                get(&r.bytes_down)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vigil_proxy_open_connections Connections open now (handshakes included).\n\
             # TYPE vigil_proxy_open_connections gauge\nvigil_proxy_open_connections {}",
            self.open.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(
            out,
            "# HELP vigil_proxy_refused_at_limit_total Connections closed at accept: \
             --max-connections reached.\n# TYPE vigil_proxy_refused_at_limit_total counter\n\
             vigil_proxy_refused_at_limit_total {}",
            get(&self.at_limit)
        );
    }
}
